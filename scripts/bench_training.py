"""Training throughput of MF-TD3 (population encoders, action-encoding critic) beside plain SB3 TD3.

    OMP_NUM_THREADS=1 python scripts/bench_training.py [--env MFGLinearQuadratic-v0] [--steps 3000] [--repeats 3]

Both learn on the same single-agent env with the same settings (batch 256, one gradient step per
env step, one torch thread). MF-TD3 uses the design's network sizes (``MeanFieldPolicy`` defaults);
plain TD3 uses ``MultiInputPolicy`` with hidden layers chosen to have a similar parameter count
(printed). Runs alternate, median of ``--repeats``; the ratio is the figure of merit (goal <= 1.2).
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch as th
from stable_baselines3 import TD3

import mfg_envs  # noqa: F401  (registers the ids)
from sb3_meanfield import MFTD3

PLAIN_NET_ARCH = {"pi": [256, 192, 128], "qf": [384, 256, 128]}


def make(kind: str, env_id: str, learning_starts: int):
    env = gym.make(env_id)
    common = {"batch_size": 256, "learning_starts": learning_starts, "train_freq": 1, "gradient_steps": 1, "seed": 0}
    if kind == "MF-TD3":
        return MFTD3("MeanFieldPolicy", env, **common)
    return TD3("MultiInputPolicy", env, policy_kwargs={"net_arch": PLAIN_NET_ARCH}, **common)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.policy.parameters())


def timed_learn(kind: str, env_id: str, steps: int, learning_starts: int) -> float:
    model = make(kind, env_id, learning_starts)
    start = time.perf_counter()
    model.learn(steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MFGLinearQuadratic-v0")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    th.set_num_threads(1)
    kinds = ("MF-TD3", "TD3 MultiInputPolicy")
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.repeats):
        for kind in kinds:
            seconds[kind].append(timed_learn(kind, args.env, args.steps, args.learning_starts))
    gradient_steps = args.steps - args.learning_starts
    print("| agent | parameters (actor, critics, targets) | env steps/s | gradient steps/s | time / MF-TD3 time |")
    print("|---|---|---|---|---|")
    reference = statistics.median(seconds["MF-TD3"])
    for kind in kinds:
        median = statistics.median(seconds[kind])
        params = n_parameters(make(kind, args.env, args.learning_starts))
        print(
            f"| {kind} | {params} | {args.steps / median:.0f} | {gradient_steps / median:.0f} | "
            f"{median / reference:.2f} |"
        )
    print(f"\nMF-TD3 overhead: {reference / statistics.median(seconds['TD3 MultiInputPolicy']):.2f}x")


if __name__ == "__main__":
    main()
