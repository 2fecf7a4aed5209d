"""Can a run's actor hold the walled crowd's reference equilibrium, and does its RL training keep it there?

    OMP_NUM_THREADS=1 python scripts/clone_reference.py RUN_DIR [--rounds 3] [--steps 4000] [--resume-copy COPY]
    OMP_NUM_THREADS=1 python -m sb3_meanfield.train --resume COPY -n N       # then: training on from the clone

``RUN_DIR`` is a finished ``python -m sb3_meanfield.train --env MFGCrowd-v0`` run of MF-TD3 or MF-DDPG (one
population, with its checkpoint). Its actor, the network and the observation it was trained with, is fitted to the
reference equilibrium's policy (``solve_equilibrium(env)``: the numerical reference, read from the cache or solved) by
DAgger (Ross, Gordon and Bagnell, 2011): round 0 collects the observations of the run's ``n_particles`` particles
playing the reference policy (``--episodes`` episodes), every later round those of the particles playing the clone,
all labelled with the reference's actions; each round takes ``--steps`` Adam steps (batches of 1,024, learning rate
``--lr``) on the mean squared error over everything collected. After each round it prints the clone's relative dp
Nash gap as the train CLI's final evaluation measures it (10,000 particles, common random numbers), so a clone below
the target says the actor can represent an equilibrium that close, whatever its training reached.

``--resume-copy COPY`` copies ``RUN_DIR`` to ``COPY`` with the final clone as actor and target actor in its
checkpoint (critics, replay buffer, optimizers and schedules as the run left them): ``--resume COPY -n N`` then
trains ``N`` minus the run's transitions more from the clone, with the learning rate and the action barrier where
the longer schedule puts them, and its final evaluation says where the algorithm's own updates take the equilibrium.
Until then the copy's ``model.zip``, ``metrics.json`` and figures are the run's.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch as th  # imported after the thread setting above
import yaml

import mfg_envs  # noqa: F401  (registers the env ids)
from mfg_envs.core import PopulationPolicy
from mfg_envs.equilibrium import Equilibrium, solve_equilibrium
from mfg_envs.game import Game, game_of, population_rngs
from sb3_meanfield import ModelPolicy
from sb3_meanfield.common.checkpoint import CHECKPOINT_DIR, STATE_FILE, load_checkpoint, unwrapped_vec_env
from sb3_meanfield.run import evaluate

#: Regression batch size.
BATCH_SIZE = 1024


def observations_and_labels(
    game: Game, behaviour: PopulationPolicy, teacher: PopulationPolicy, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One episode of ``game``'s particles playing ``behaviour`` (generators of ``seed``): every step's observations,
    stacked, and the ``teacher``'s normalized actions on them."""
    rngs = population_rngs(seed, 1)
    game.reset(rngs)
    model = game.members[0].model
    observations: list[dict[str, np.ndarray]] = []
    labels = []
    while not game.done:  # a loop over time steps
        observation = game.observation(0)
        observations.append({key: np.array(value, dtype=np.float32) for key, value in observation.items()})
        labels.append(teacher(observation))
        actions = behaviour(observation)
        game.step([actions], [model.noise(len(actions), rngs[0])])
    stacked = {key: np.concatenate([row[key] for row in observations]) for key in observations[0]}
    return stacked, np.concatenate(labels).astype(np.float32)


def regress(
    actor: th.nn.Module, observations: dict[str, np.ndarray], labels: np.ndarray, steps: int, lr: float, seed: int
) -> float:
    """``steps`` Adam steps on ``mean ||actor(o) - label||^2`` over random batches; the last batch's loss."""
    generator = th.Generator().manual_seed(seed)
    inputs = {key: th.as_tensor(value) for key, value in observations.items()}
    targets = th.as_tensor(labels)
    optimizer = th.optim.Adam(actor.parameters(), lr=lr)
    loss = th.zeros(())
    for _ in range(steps):
        rows = th.randint(0, len(targets), (BATCH_SIZE,), generator=generator)
        loss = ((actor({key: value[rows] for key, value in inputs.items()}) - targets[rows]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def clone(
    model: Any, game: Game, teacher: PopulationPolicy, rounds: int, episodes: int, steps: int, lr: float, seed: int = 1
) -> Iterator[tuple[int, float]]:
    """Fit ``model``'s actor (and target actor) to ``teacher`` by DAgger on ``game``'s particles, one round per
    iteration: yields the samples collected so far and the round's last batch loss, the clone in place."""
    collected: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    for round_ in range(rounds):
        behaviour = teacher if round_ == 0 else ModelPolicy(model)
        seeds = range(seed + 1000 * round_, seed + 1000 * round_ + episodes)
        collected += [observations_and_labels(game, behaviour, teacher, s) for s in seeds]
        observations = {key: np.concatenate([o[key] for o, _ in collected]) for key in collected[0][0]}
        labels = np.concatenate([label for _, label in collected])
        model.policy.set_training_mode(True)
        loss = regress(model.actor, observations, labels, steps, lr, seed + round_)
        model.policy.set_training_mode(False)
        model.actor_target.load_state_dict(model.actor.state_dict())
        yield len(labels), loss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished MFGCrowd-v0 run folder of MF-TD3 or MF-DDPG")
    parser.add_argument("--rounds", type=int, default=3, help="DAgger rounds (default 3)")
    parser.add_argument("--episodes", type=int, default=4, help="episodes collected per round (default 4)")
    parser.add_argument("--steps", type=int, default=4000, help="Adam steps per round (default 4000)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    parser.add_argument("--eval-particles", type=int, default=10_000, help="particles of each dp gap (default 10000)")
    parser.add_argument("--resume-copy", type=Path, help="write a copy of RUN_DIR whose checkpoint holds the clone")
    args = parser.parse_args(argv)
    for name in ("rounds", "episodes", "steps", "eval_particles"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if args.resume_copy is not None and args.resume_copy.exists():
        parser.error(f"--resume-copy {args.resume_copy} exists; name a new folder")
    state_path = args.run_dir / CHECKPOINT_DIR / STATE_FILE
    if not (args.run_dir / "metrics.json").is_file() or not state_path.is_file():
        parser.error(f"{args.run_dir} is not a finished run folder with a checkpoint")
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    if config["env"] != "MFGCrowd-v0" or config["algo"] not in ("td3", "ddpg"):
        parser.error(
            f"{args.run_dir} is a {config['algo']} run of {config['env']}, not MF-TD3 or MF-DDPG on MFGCrowd-v0"
        )
    th.set_num_threads(1)
    state = load_checkpoint(args.run_dir)
    model = state["model"]
    env = gym.make(config["env"], **config.get("env_kwargs", {}))
    teacher = cast(Equilibrium, solve_equilibrium(env)).policy  # MFGCrowd-v0: one population
    game = game_of(env).clone(config["n_particles"])
    print("| round | samples | last batch loss | relative dp gap of the clone |")
    print("|---|---|---|---|")
    before = evaluate([model], game_of(env), args.eval_particles, config["seed"])
    print(f"| the run's actor | - | - | {before['relative_gap']:.4f} |")
    rounds = clone(model, game, teacher, args.rounds, args.episodes, args.steps, args.lr)
    for round_, (samples, loss) in enumerate(rounds):
        result = evaluate([model], game_of(env), args.eval_particles, config["seed"])
        print(f"| {round_} | {samples} | {loss:.4f} | {result['relative_gap']:.4f} |", flush=True)
    if args.resume_copy is not None:
        shutil.copytree(args.run_dir, args.resume_copy)
        model.env, state["env_wrappers"] = unwrapped_vec_env(model.env)  # saved as the checkpoint saves it
        th.save(state, args.resume_copy / CHECKPOINT_DIR / STATE_FILE)
        print(f"wrote {args.resume_copy}: python -m sb3_meanfield.train --resume {args.resume_copy} -n N")


if __name__ == "__main__":
    main()
