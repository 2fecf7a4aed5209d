"""Where a walled-crowd run's dp Nash gap comes from: its policy and the dp best response to its flow, step by step.

    OMP_NUM_THREADS=1 python scripts/crowd_gap_by_step.py RUN_DIR [--n-particles 5000] [--seed 0] [--every 2]

``RUN_DIR`` is a finished ``python -m sb3_meanfield.train --env MFGCrowd-v0`` run. One episode of ``--n-particles``
particles following the run's policy makes the flow (seed ``--seed``); the dp best response to that flow (default grid,
``mfg_envs.crowd_dp``) and the policy itself then each play ``--n-particles`` agents against the frozen flow, with the
same initial states and noise (seed ``--seed + 1``, common random numbers). Every ``--every`` steps (and the last) it
prints the two groups' mean rewards, their difference and its sum so far (the gap accumulated up to that step; the
last is the gap on these agents), and where each group stands: mean position, its spread (standard deviation per
axis), and the crowd cost ``l2 m(p)`` it pays.

``--actions-at STEP ...`` also compares, at those steps, the actions of the policy and of the best response on the
SAME states (those of the policy's agents), by distance ``r = ||p - g||`` from the goal: the mean acceleration
``||a||``, its braking component ``a . (-v / ||v||)``, and the share of agents that do not accelerate (``||a|| < 0.1``:
the effort cost ``l1 ||a||`` is a cone, so the best response plays exactly 0 wherever a small push is not worth
its cost).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch as th  # imported after the thread setting above
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from mfg_envs.core import PopulationFlow, PopulationPolicy
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPResolution, dp_best_response
from mfg_envs.game import Game, game_of, ghost_game, population_rngs, rollout
from sb3_meanfield import ModelPolicy
from sb3_meanfield.evaluation import fit_resolution
from sb3_meanfield.plotting import load_agents


@dataclass(frozen=True)
class GroupSteps:
    """Per step, a group of agents against a frozen flow: mean reward, mean position, its spread, mean crowd cost."""

    rewards: np.ndarray  # (n_steps,)
    positions: np.ndarray  # (n_steps, 2), before the step's action
    spreads: np.ndarray  # (n_steps, 2)
    crowd_costs: np.ndarray  # (n_steps,)


#: ``watch(step, states, observation, actions)``, called by :func:`play_against` before every step.
Watcher = Callable[[int, np.ndarray, dict[str, np.ndarray], np.ndarray], None]
#: Distance bins from the goal of the action comparison.
DISTANCE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.5, np.inf)
#: Below this norm an acceleration counts as none.
AT_REST = 0.1


def play_against(
    game: Game, flow: PopulationFlow, policy: PopulationPolicy, n_agents: int, seed: int, watch: Watcher | None = None
) -> GroupSteps:
    """``n_agents`` agents following ``policy`` against the frozen ``flow`` (generators of ``seed``, as
    :func:`mfg_envs.game.frozen_flows_returns`), step by step; ``watch`` sees every step's states and actions."""
    model = game.model.populations[0]
    ghost = ghost_game(game, 0, n_agents, (flow,))
    rngs = population_rngs(seed, 1)
    ghost.reset(rngs)
    rewards, positions, spreads, crowd_costs = [], [], [], []
    for step in range(model.n_steps):  # a loop over time steps
        states = ghost.members[0].states.copy()
        places = states[:, :2]
        observation = ghost.observation(0)
        actions = policy(observation)
        if watch is not None:
            watch(step, states, observation, actions)
        rewards.append(ghost.step([actions], [model.noise(n_agents, rngs[0])])[0].mean())
        crowd_costs.append(model.crowding(states, flow.mean_fields[step]).mean())
        positions.append(places.mean(axis=0))
        spreads.append(places.std(axis=0))
    return GroupSteps(*(np.array(values) for values in (rewards, positions, spreads, crowd_costs)))


def action_rows(model: CrowdModel, step: int, states: np.ndarray, own: np.ndarray, best: np.ndarray) -> list[str]:
    """Markdown rows comparing the policy's actions ``own`` and the best response's ``best`` on the same ``states``,
    per distance bin from the goal (:data:`DISTANCE_EDGES`)."""
    distance = np.linalg.norm(states[:, :2] - model.goal, axis=1)
    speed = np.linalg.norm(states[:, 2:4], axis=1)
    braking = -states[:, 2:4] / np.maximum(speed, 1e-12)[:, None]
    rows = []
    for low, high in pairwise(DISTANCE_EDGES):
        inside = (distance >= low) & (distance < high)
        if not inside.any():
            continue
        cells = []
        for actions in (own, best):
            acceleration = model.physical_action(states[inside], actions[inside])
            norms = np.linalg.norm(acceleration, axis=1)
            brake = (acceleration * braking[inside]).sum(axis=1).mean()
            cells.append(f"{norms.mean():.2f} / {brake:+.2f} / {np.mean(norms < AT_REST):.2f}")
        where = f"| {step} | [{low:g}, {high:g}) | {inside.sum()} | {speed[inside].mean():.2f}"
        rows.append(f"{where} | {' | '.join(cells)} |")
    return rows


def gap_by_step(
    game: Game,
    policy: PopulationPolicy,
    n_particles: int,
    seed: int,
    resolution: DPResolution = DEFAULT_RESOLUTION,
    actions_at: tuple[int, ...] = (),
) -> tuple[GroupSteps, GroupSteps, list[str]]:
    """The policy's and the dp best response's :class:`GroupSteps` against the policy's own flow (module docstring;
    ``resolution`` fitted to the model's time step, :func:`sb3_meanfield.evaluation.fit_resolution`), and the
    :func:`action_rows` of the steps ``actions_at``."""
    model = game.model.populations[0]
    if len(game.names) != 1 or not isinstance(model, CrowdModel):
        raise ValueError(f"the run must be of the walled crowd MFGCrowd-v0, got a game of {game.names}: {model!r}")
    if any(not 0 <= step < model.n_steps for step in actions_at):
        raise ValueError(f"actions_at must be steps in [0, {model.n_steps - 1}], got {list(actions_at)}")
    flows, _ = rollout(game.clone(n_particles), policy, seed)
    initial = model.initial_states(n_particles, population_rngs(seed + 1, 1)[0])
    best_response = dp_best_response(model, flows[0].mean_fields, initial, fit_resolution(resolution, model))
    rows: list[str] = []

    def compare(step: int, states: np.ndarray, observation: dict[str, np.ndarray], actions: np.ndarray) -> None:
        if step in actions_at:
            rows.extend(action_rows(model, step, states, actions, best_response(observation)))

    own = play_against(game, flows[0], policy, n_particles, seed + 1, compare)
    return own, play_against(game, flows[0], best_response, n_particles, seed + 1), rows


def table(own: GroupSteps, best: GroupSteps, every: int) -> list[str]:
    """Markdown rows of :func:`gap_by_step`'s result, every ``every`` steps and the last."""
    rows = [
        "| step | policy reward | best response reward | difference | gap so far | policy position (spread) | "
        "best response position (spread) | crowd cost: policy / best response |",
        "|---|---|---|---|---|---|---|---|",
    ]
    differences = best.rewards - own.rewards
    accumulated = np.cumsum(differences)
    last = len(differences) - 1
    for step in [*range(0, last, every), last]:
        places = [
            f"({group.positions[step, 0]:.2f}, {group.positions[step, 1]:.2f}) "
            f"({group.spreads[step, 0]:.2f}, {group.spreads[step, 1]:.2f})"
            for group in (own, best)
        ]
        rows.append(
            f"| {step} | {own.rewards[step]:.3f} | {best.rewards[step]:.3f} | {differences[step]:+.3f} | "
            f"{accumulated[step]:+.2f} | {places[0]} | {places[1]} | "
            f"{own.crowd_costs[step]:.3f} / {best.crowd_costs[step]:.3f} |"
        )
    return rows


def load_crowd_run(
    parser: argparse.ArgumentParser, args: argparse.Namespace, positive: tuple[str, ...]
) -> tuple[BaseAlgorithm, Game]:
    """The agent and the game of the finished run ``args.run_dir`` (one torch thread), after checking that the
    integer flags ``positive`` are at least 1 (``parser.error`` otherwise, as for a folder that is no finished run)."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(args, name)}")
    if not (args.run_dir / "metrics.json").is_file():
        parser.error(f"{args.run_dir} is not a finished run folder: no metrics.json")
    th.set_num_threads(1)
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    (agent,) = load_agents(args.run_dir, config)
    return agent, game_of(gym.make(config["env"], **config["env_kwargs"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished MFGCrowd-v0 run folder")
    parser.add_argument("--n-particles", type=int, default=5000, help="particles of the flow and of each group")
    parser.add_argument("--seed", type=int, default=0, help="seed of the flow (the groups: seed + 1)")
    parser.add_argument("--every", type=int, default=2, help="print every EVERY steps (default 2)")
    parser.add_argument("--actions-at", nargs="*", type=int, default=[], help="steps to compare the actions at")
    args = parser.parse_args(argv)
    model, game = load_crowd_run(parser, args, ("n_particles", "every"))
    try:
        own, best, rows = gap_by_step(
            game, ModelPolicy(model), args.n_particles, args.seed, actions_at=tuple(args.actions_at)
        )
    except ValueError as error:
        parser.error(str(error))
    print("\n".join(table(own, best, args.every)))
    print(f"policy return {own.rewards.sum():.3f}, best response return {best.rewards.sum():.3f}")
    if rows:
        print(
            "\n| step | distance from the goal | agents | speed | policy: mean norm / braking / at rest | "
            "best response: mean norm / braking / at rest |"
        )
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
