"""Training throughput of MF-TD3 at the shipped network sizes beside plain SB3 TD3 of the same parameter count.

    OMP_NUM_THREADS=1 python scripts/bench_training.py [--env MFGLinearQuadratic-v0] [--repeats 5] [--population]
        [--design]

MF-TD3 is the model ``python -m sb3_meanfield.train --env ENV --algo td3`` builds (the shipped self-play
configuration: its networks, batch, buffer, learning-rate schedule, ``gradient_steps`` per env step, ``n_learners``
learning particles of ``n_particles``). Plain TD3 is SB3's ``TD3("MultiInputPolicy")`` on ``gym.make(ENV)`` (one
learning agent) with the same keywords, the shipped activation and Gaussian exploration of the config's initial
standard deviation; its hidden widths (actor ``[a]``, critics ``[w, w]``) are the integers whose actor and critics
have the parameter counts closest to MF-TD3's (printed). Two
ratios, MF-TD3 time over plain TD3 time, from ``--repeats`` alternating blocks (median, and the spread: smallest and
largest block ratio):

1. ``train()``: seconds per gradient step of ``model.train(--block, batch_size)`` on a filled replay buffer
   (issue 16's target: at most 1.1);
2. ``learn()``: a whole self-play ``learn`` against plain TD3's ``learn`` on one env, at equal gradient steps
   (``--learn-steps`` env steps each, after ``learning_starts``; target: at most 1.3).

Both are measured in wall-clock and in process CPU time (``time.process_time``; on a machine shared with other jobs
the CPU time is the steadier figure). ``--population`` adds the population's forward pass (the context computed
once per call): the exact Nash gap of the MF-TD3 model against that of the closed-form equilibrium policy at
``N = 10^4`` (target: at most 1.5), and a self-play ``learn`` env step at ``N = 10^5`` against one at ``N = 10^3``
(target: at most 2). ``--design`` adds the former comparison: MF-TD3 with the design's networks (``MeanFieldPolicy``
defaults, 750k parameters) against a plain TD3 of similar size, ``learn`` on one env.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.equilibrium import solve_equilibrium
from sb3_meanfield import MFTD3, nash_gap
from sb3_meanfield.config import build, resolve_config, schedule
from sb3_meanfield.train import build_parser

#: The former benchmark's plain TD3 beside the design-size MF-TD3 (``--design``).
DESIGN_PLAIN_NET_ARCH = {"pi": [256, 192, 128], "qf": [384, 256, 128]}
#: Env steps before the timed blocks (replay buffers filled past ``learning_starts``).
WARMUP_STEPS = 40
#: ``learning_starts`` of both models, in env steps.
START_STEPS = 20


def shipped_config(env_id: str) -> dict[str, Any]:
    """The resolved configuration of ``python -m sb3_meanfield.train --env ENV --algo td3``, without callbacks and
    with learning starting after :data:`START_STEPS` env steps."""
    config = resolve_config(build_parser().parse_args(["--env", env_id, "--algo", "td3"]))
    config["callback"] = []
    config["algo_kwargs"]["learning_starts"] = START_STEPS * config["n_learners"]
    return config


def role_parameters(model: BaseAlgorithm) -> tuple[int, int]:
    """Parameters of the actor and of the critics (targets not counted)."""
    policy = model.policy
    return sum(p.numel() for p in policy.actor.parameters()), sum(p.numel() for p in policy.critic.parameters())


def plain_widths(observation_dim: int, action_dim: int, actor: int, critics: int) -> dict[str, list[int]]:
    """The plain TD3 ``net_arch`` (actor ``[a]``, two critics ``[w, w]``) whose parameter counts are closest to
    ``actor`` and ``critics``."""
    a = min(range(1, 4096), key=lambda h: abs(h * (observation_dim + action_dim + 1) + action_dim - actor))
    q_input = observation_dim + action_dim
    w = min(range(1, 4096), key=lambda h: abs(2 * (h * q_input + h * h + 3 * h + 1) - critics))
    return {"pi": [a], "qf": [w, w]}


def plain_td3(config: dict[str, Any], mf_model: BaseAlgorithm) -> TD3:
    """Plain TD3 on one agent of ``config``'s env with MF-TD3's keywords and parameter counts."""
    env = gym.make(config["env"], n_particles=config["n_particles"], **config["env_kwargs"])
    kwargs = dict(config["algo_kwargs"])
    policy_kwargs = kwargs.pop("policy_kwargs")
    kwargs.update(learning_rate=schedule(kwargs["learning_rate"]), learning_starts=START_STEPS)
    observation_dim = sum(int(np.prod(space.shape)) for space in env.observation_space.spaces.values())
    action_dim = env.action_space.shape[0]
    net_arch = plain_widths(observation_dim, action_dim, *role_parameters(mf_model))
    noise = NormalActionNoise(np.zeros(action_dim), np.full(action_dim, config["noise"]["std"]))
    policy_kwargs = {"net_arch": net_arch, "activation_fn": policy_kwargs["activation_fn"]}
    return TD3("MultiInputPolicy", env, policy_kwargs=policy_kwargs, action_noise=noise, seed=0, **kwargs)


def alternate(blocks: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Run the blocks in turn ``repeats`` times: ``{name: {"wall": seconds, "cpu": seconds}}`` per block."""
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in blocks}
    for _ in range(repeats):
        for name, block in blocks.items():
            wall, cpu = time.perf_counter(), time.process_time()
            block()
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def ratio_line(label: str, times: dict[str, dict[str, list[float]]], per: int, unit: str) -> str:
    """One table row: the median times per ``unit`` of the first and second entry of ``times`` and the ratio
    first / second, median and spread of the block ratios, wall and CPU."""
    first, second = times.values()
    cells = [label]
    for clock in ("wall", "cpu"):
        ratios = [a / b for a, b in zip(first[clock], second[clock])]
        a, b = (1e3 * statistics.median(entry[clock]) / per for entry in (first, second))
        cells += [
            f"{a:.2f} / {b:.2f} ms per {unit}",
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
        ]
    return "| " + " | ".join(cells) + " |"


def shipped_ratios(args: argparse.Namespace) -> None:
    """The two ratios at the shipped sizes: ``train()`` per gradient step and ``learn()`` per env step."""
    config = shipped_config(args.env)
    _, mf_model, _ = build(config)
    plain = plain_td3(config, mf_model)
    n_learners = config["n_learners"]
    mf_model.learn(WARMUP_STEPS * n_learners)
    plain.learn(WARMUP_STEPS)
    batch, gradient_steps = config["algo_kwargs"]["batch_size"], config["algo_kwargs"]["gradient_steps"]
    models = {"MF-TD3": (mf_model, n_learners), "TD3": (plain, 1)}
    train_times = alternate(
        {name: lambda m=m: m.train(args.block, batch) for name, (m, _) in models.items()}, args.repeats
    )
    learn_times = alternate(
        {
            name: lambda m=m, n=n: m.learn(args.learn_steps * n, reset_num_timesteps=False)
            for name, (m, n) in models.items()
        },
        args.repeats,
    )
    for name, (model, _) in models.items():
        actor, critics = role_parameters(model)
        print(f"{name}: actor {actor} + critics {critics} = {actor + critics} parameters (x2 with the targets)")
    print(f"plain TD3 net_arch: {plain.policy_kwargs['net_arch']}")
    print(f"\n{args.env}, shipped self-play configuration: {n_learners} learners of {config['n_particles']} particles,")
    print(f"batch {batch}, {gradient_steps} gradient steps per env step; {args.repeats} alternating blocks\n")
    print("| measure | wall: MF-TD3 / TD3 | wall ratio (spread) | CPU: MF-TD3 / TD3 | CPU ratio (spread) |")
    print("|---|---|---|---|---|")
    print(ratio_line(f"`train()`, blocks of {args.block} gradient steps", train_times, args.block, "gradient step"))
    learn_label = (
        f"`learn()`, blocks of {args.learn_steps} env steps ({args.learn_steps * gradient_steps} gradient steps)"
    )
    print(ratio_line(learn_label, learn_times, args.learn_steps, "env step"))


def population_ratios(args: argparse.Namespace) -> None:
    """Exact Nash gap of the model against the closed-form policy's (``N = 10^4``), and a self-play env step at
    ``N = 10^5`` against ``N = 10^3``, both with the shipped model."""
    config = shipped_config(args.env)
    _, model, _ = build(config)
    env = gym.make(args.env, **config["env_kwargs"])
    closed_form = solve_equilibrium(env).policy
    gaps = {
        "model": lambda: nash_gap(model, env, n_particles=10_000),
        "closed form": lambda: nash_gap(closed_form, env),
    }
    gaps["model"]()  # the neutral gap, cached, and the first call's allocations out of the timed blocks
    gap_times = alternate(gaps, args.repeats)
    sizes = {}
    for name, n_particles in (("N = 10^5", 100_000), ("N = 10^3", 1000)):
        sized = {**config, "n_particles": n_particles}
        _, sized_model, _ = build(sized)
        sized_model.learn(WARMUP_STEPS * config["n_learners"])
        sizes[name] = lambda m=sized_model: m.learn(args.learn_steps * config["n_learners"], reset_num_timesteps=False)
    step_times = alternate(sizes, args.repeats)
    print(f"\npopulation's forward pass, {args.env}, {args.repeats} alternating blocks\n")
    print("| measure (A / B) | wall: A / B | wall ratio (spread) | CPU: A / B | CPU ratio (spread) |")
    print("|---|---|---|---|---|")
    print(ratio_line("exact Nash gap, N = 10^4: MF-TD3 / closed-form policy", gap_times, 1, "gap"))
    print(ratio_line("self-play `learn()` env step: N = 10^5 / N = 10^3", step_times, args.learn_steps, "env step"))


def design_ratio(args: argparse.Namespace) -> None:
    """The former figure: design-size MF-TD3 against plain TD3 of similar size, ``learn`` on one env."""
    common = {"batch_size": 256, "learning_starts": 500, "train_freq": 1, "gradient_steps": 1, "seed": 0}
    mf = MFTD3("MeanFieldPolicy", gym.make(args.env), **common)
    plain = TD3("MultiInputPolicy", gym.make(args.env), policy_kwargs={"net_arch": DESIGN_PLAIN_NET_ARCH}, **common)
    for model in (mf, plain):
        model.learn(600)
    models = {"MF-TD3": mf, "TD3": plain}
    steps = args.learn_steps
    times = alternate(
        {name: lambda m=m: m.learn(steps, reset_num_timesteps=False) for name, m in models.items()}, args.repeats
    )
    sizes = {name: sum(p.numel() for p in m.policy.parameters()) for name, m in models.items()}
    print(f"\ndesign sizes: MF-TD3 {sizes['MF-TD3']} parameters, plain TD3 {sizes['TD3']} (targets included)\n")
    print("| measure | wall: MF-TD3 / TD3 | wall ratio (spread) | CPU: MF-TD3 / TD3 | CPU ratio (spread) |")
    print("|---|---|---|---|---|")
    print(ratio_line(f"`learn()` on one env, blocks of {steps} env steps", times, steps, "env step"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MFGLinearQuadratic-v0")
    parser.add_argument("--repeats", type=int, default=5, help="alternating blocks per model (default 5)")
    parser.add_argument("--block", type=int, default=200, help="gradient steps per train() block (default 200)")
    parser.add_argument("--learn-steps", type=int, default=100, help="env steps per learn() block (default 100)")
    parser.add_argument("--population", action="store_true", help="also the population's forward pass ratios")
    parser.add_argument("--design", action="store_true", help="also the design-size learn() comparison")
    args = parser.parse_args()
    th.set_num_threads(1)
    shipped_ratios(args)
    if args.population:
        population_ratios(args)
    if args.design:
        design_ratio(args)


if __name__ == "__main__":
    main()
