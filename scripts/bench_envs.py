"""Throughput of the N-agent batched envs beside a bare numpy kernel, a per-agent Python loop and MAgent2.

    OMP_NUM_THREADS=1 python scripts/bench_envs.py [--sizes 1000 10000 100000 1000000] [--steps 40]

For every model and population size N it times, side by side in one process (alternating, median of
``--repeats``), agent-steps per second of

- ``env``: ``gym.make_vec(env_id, num_envs=N)`` stepping with fixed random actions (validation,
  clipping, mean field, reward, dynamics, histogram and batched observations included);
- ``kernel``: the same arithmetic written as bare numpy (noise, action scaling, mean field, reward,
  dynamics, histogram), the practical limit;
- ``loop``: the same dynamics with a Python loop over agents (small N only);
- MAgent2 ``battle_v4`` with random actions, if ``magent2`` is installed.

It prints a Markdown table; ``env / kernel`` is the figure of merit (goal: >= 0.5 at N = 10^5).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import mfg_envs

Kernel = Callable[[np.ndarray], None]


def histogram_counts(values: np.ndarray, low: float, high: float, n_bins: int) -> np.ndarray:
    cells = np.clip(((values - low) * (n_bins / (high - low))).astype(np.intp), 0, n_bins - 1)
    return np.bincount(cells, minlength=n_bins) / len(values)


def lq_kernel(n: int, rng: np.random.Generator) -> Kernel:
    dt, sigma, beta, q, eps, kappa = 1 / 50, 1.0, 0.0, 0.0, 2.0, 0.5
    x = 2.0 + 0.5 * rng.standard_normal(n)

    def step(action: np.ndarray) -> None:
        nonlocal x
        a = 5.0 * action[:, 0]
        m = x.mean()
        gap = x - kappa * m
        reward = -dt * (0.5 * a**2 + q * a * gap + 0.5 * eps * gap**2)
        x = x + dt * (beta * (m - x) + a) + sigma * math.sqrt(dt) * rng.standard_normal(n)
        histogram_counts(x, -3.0, 5.0, 40)
        del reward

    return step


def crowd_lq_kernel(n: int, rng: np.random.Generator) -> Kernel:
    """Per-axis 1-D arrays (the fastest numpy layout for 2-column data)."""
    dt, sigma, r, q, c_c, h = 0.1, 0.3, 1.0, 0.25, 0.2, 0.5
    goal = (1.0, 0.0)
    draws = rng.standard_normal((4, n))
    p = [-1.0 + math.sqrt(0.02) * draws[0], 0.5 + math.sqrt(0.02) * draws[1]]
    v = [0.1 * draws[2], 0.1 * draws[3]]

    def step(action: np.ndarray) -> None:
        noise = rng.standard_normal((2, n))
        reward = np.zeros(n)
        for axis in range(2):
            u = 2.0 * action[:, axis]
            m, s = p[axis].mean(), p[axis].var() + h**2
            log_density = -0.5 * math.log(2 * math.pi * s) - (p[axis] - m) ** 2 / (2 * s)
            reward -= dt * (0.5 * r * u**2 + 0.5 * q * (p[axis] - goal[axis]) ** 2 + c_c * log_density)
            v[axis] = v[axis] + dt * u + sigma * math.sqrt(dt) * noise[axis]
            p[axis] = p[axis] + dt * v[axis]
        cx = np.clip(((p[0] + 2.0) * 5.0).astype(np.intp), 0, 19)
        cy = np.clip(((p[1] + 2.0) * 5.0).astype(np.intp), 0, 19)
        np.bincount(cx * 20 + cy, minlength=400)

    return step


def crowd_kernel(n: int, rng: np.random.Generator) -> Kernel:
    """Per-axis 1-D arrays; walls stop particles and zero the velocity into the wall."""
    dt, sigma, l1, l2 = 0.1, 0.3, 0.1, 0.1
    goal = (1.0, 0.0)
    draws = rng.standard_normal((4, n))
    p = [-1.0 + math.sqrt(0.02) * draws[0], 0.5 + math.sqrt(0.02) * draws[1]]
    v = [0.1 * draws[2], 0.1 * draws[3]]

    def step(action: np.ndarray) -> None:
        cx = np.clip(((p[0] + 2.0) * 5.0).astype(np.intp), 0, 19)
        cy = np.clip(((p[1] + 2.0) * 5.0).astype(np.intp), 0, 19)
        flat = cx * 20 + cy
        density = np.bincount(flat, minlength=400) / (n * 0.04)
        u = 2.0 * action
        distance = np.sqrt((p[0] - goal[0]) ** 2 + (p[1] - goal[1]) ** 2 + v[0] ** 2 + v[1] ** 2)
        reward = -distance - l1 * np.sqrt(u[:, 0] ** 2 + u[:, 1] ** 2) - l2 * density[flat]
        noise = rng.standard_normal((2, n))
        for axis in range(2):
            v[axis] = v[axis] + dt * u[:, axis] + sigma * math.sqrt(dt) * noise[axis]
            new_p = p[axis] + dt * v[axis]
            np.minimum(v[axis], 0.0, out=v[axis], where=new_p > 2.0)
            np.maximum(v[axis], 0.0, out=v[axis], where=new_p < -2.0)
            p[axis] = np.clip(new_p, -2.0, 2.0)
        del reward

    return step


def price_kernel(n: int, rng: np.random.Generator) -> Kernel:
    dt, beta, gamma, lam, kappa, rho, h, sigma = 1 / 50, 1.0, 0.5, 0.5, 0.5, 1.2, 1.0, 0.3
    x = 0.5 + 0.2 * rng.standard_normal(n)
    w = np.zeros(n)
    clock = [0]

    def step(action: np.ndarray) -> None:
        nonlocal x, w
        d = 2.0 + 0.5 * math.sin(2 * math.pi * clock[0] * dt)
        a = 1.5 + 1.5 * action[:, 0]
        pbar = a.mean()
        sales = d - beta * a + gamma * pbar
        reward = dt * (a * sales - kappa * rho - 0.5 * h * x**2 - 0.5 * lam * (a - pbar) ** 2)
        x = x + dt * (rho - sales) + sigma * math.sqrt(dt) * rng.standard_normal(n)
        w = w + dt * (a * sales - kappa * rho)
        histogram_counts(a, 0.0, 3.0, 30)
        clock[0] = (clock[0] + 1) % 50
        del reward

    return step


def resource_kernel(n: int, rng: np.random.Generator) -> Kernel:
    thbar, phi, s, kappa = 1.0, 0.8, 0.3, 1.0
    theta = thbar + s / math.sqrt(1 - phi**2) * rng.standard_normal(n)
    capacity = rng.uniform(0.5, 1.5, n)

    def step(action: np.ndarray) -> None:
        nonlocal theta
        a = 0.5 * capacity * (action[:, 0] + 1.0)
        abar = a.mean()
        reward = theta * a - 0.5 * a**2 - kappa * abar * a
        theta = thbar + phi * (theta - thbar) + s * rng.standard_normal(n)
        histogram_counts(a, 0.0, 1.5, 30)
        del reward

    return step


def lq_python_loop(n: int, rng: np.random.Generator) -> Kernel:
    """The LQ dynamics one agent at a time, as a per-agent simulator would do it."""
    dt, sigma, eps, kappa = 1 / 50, 1.0, 2.0, 0.5
    xs = [2.0 + 0.5 * rng.standard_normal() for _ in range(n)]

    def step(action: np.ndarray) -> None:
        m = sum(xs) / n
        counts = [0] * 40
        for i in range(n):
            a = 5.0 * float(action[i, 0])
            gap = xs[i] - kappa * m
            _ = -dt * (0.5 * a * a + 0.5 * eps * gap * gap)
            xs[i] += dt * a + sigma * math.sqrt(dt) * rng.standard_normal()
            counts[min(max(int((xs[i] + 3.0) * 5.0), 0), 39)] += 1

    return step


KERNELS = {
    "MFGLinearQuadratic-v0": lq_kernel,
    "MFGCrowdLQ-v0": crowd_lq_kernel,
    "MFGCrowd-v0": crowd_kernel,
    "MFGPrice-v0": price_kernel,
    "MFGResource-v0": resource_kernel,
}


def time_steps(step: Callable[[np.ndarray], object], actions: np.ndarray, n_steps: int) -> float:
    start = time.perf_counter()
    for _ in range(n_steps):
        step(actions)
    return time.perf_counter() - start


def bench_model(env_id: str, n: int, n_steps: int, repeats: int, loop_max: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    venv = gym.make_vec(env_id, num_envs=n, autoreset_mode="same_step")
    venv.reset(seed=0)
    actions = rng.uniform(-1, 1, (n, venv.single_action_space.shape[0]))
    kernel = KERNELS[env_id](n, rng)
    env_times, kernel_times = [], []
    for _ in range(repeats):  # alternate so both see the same machine load
        env_times.append(time_steps(venv.step, actions, n_steps))
        kernel_times.append(time_steps(kernel, actions, n_steps))
    row = {
        "env": n * n_steps / statistics.median(env_times),
        "kernel": n * n_steps / statistics.median(kernel_times),
    }
    if env_id == "MFGLinearQuadratic-v0" and n <= loop_max:
        loop = lq_python_loop(n, rng)
        row["loop"] = n * n_steps / statistics.median(time_steps(loop, actions, n_steps) for _ in range(repeats))
    return row


def bench_magent(n_steps: int, map_size: int) -> tuple[int, float] | None:
    try:
        from magent2.environments import battle_v4
    except ImportError:
        return None
    env = battle_v4.parallel_env(map_size=map_size)
    env.reset(seed=0)
    n_agents, agent_steps, start = len(env.agents), 0, time.perf_counter()
    for _ in range(n_steps):
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        agent_steps += len(actions)
        env.step(actions)
    return n_agents, agent_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=40, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-max", type=int, default=10_000, help="largest N for the Python-loop baseline")
    parser.add_argument("--ids", nargs="+", default=list(mfg_envs.ENV_IDS))
    parser.add_argument("--magent-map-size", type=int, default=80)
    args = parser.parse_args()

    print("| env id | N | env agent-steps/s | bare kernel agent-steps/s | env / kernel | Python loop agent-steps/s |")
    print("|---|---|---|---|---|---|")
    for env_id in args.ids:
        for n in args.sizes:
            steps = max(3, min(args.steps, int(4e7 // n)))
            row = bench_model(env_id, n, steps, args.repeats, args.loop_max)
            loop = f"{row['loop']:.3g}" if "loop" in row else "-"
            print(
                f"| {env_id} | {n:.0e} | {row['env']:.3g} | {row['kernel']:.3g} | "
                f"{row['env'] / row['kernel']:.2f} | {loop} |",
                flush=True,
            )
    magent = bench_magent(args.steps, args.magent_map_size)
    if magent is None:
        print("\nMAgent2 battle_v4: not installed (pip install magent2)")
    else:
        print(
            f"\nMAgent2 battle_v4 (map {args.magent_map_size}, {magent[0]} agents, random actions): "
            f"{magent[1]:.3g} agent-steps/s"
        )


if __name__ == "__main__":
    main()
