"""Soak test of every env: long runs under random and extreme actions, checked for finiteness, mass and memory.

    OMP_NUM_THREADS=1 python scripts/soak.py [--env-ids ID ...] [--single-steps 1000000] [--particles 10]
                                             [--agents 100000] [--batched-steps 200] [--seed 0]

For every env id it runs

- ``single``: ``--single-steps`` steps of ``gym.make(env_id, n_particles=--particles)``, resetting when an
  episode ends. The learner's action cycles through three kinds, one per step: uniform on ``[-1, 1]``, a
  random corner of the box (every entry ``+-1``) and ``+-1e6`` per entry (far outside the box: the env
  clips it). The other particles draw from the same mix through the population policy.
- ``batched``: ``--batched-steps`` steps of ``gym.make_vec(env_id, num_envs=--agents)`` (autoreset), every
  agent drawing its own action kind from the same mix at every step.

Every step checks that every observation entry and reward is finite and that the population histogram has
mass 1 within 1e-9. Memory: the resident set size (``VmRSS``) after a warm-up of 10% of the steps and at
the end of each run (flat: no growth beyond ``--max-growth-mb``), and the process's peak RSS (``VmHWM``).
It prints a Markdown table and exits with status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import mfg_envs

MASS_TOLERANCE = 1e-9
FAR_OUT = 1e6
N_ACTION_KINDS = 3  # uniform in the box, a corner of the box, far outside the box


def memory_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process in MB (``/proc/self/status``; else ``getrusage``)."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return peak, peak


def action_mix(rng: np.random.Generator, kinds: np.ndarray, dim: int) -> np.ndarray:
    """Normalized actions, one row per entry of ``kinds``: 0 uniform in ``[-1, 1]``, 1 a corner, 2 ``+-1e6``."""
    uniform = rng.uniform(-1.0, 1.0, (kinds.size, dim))
    signs = np.where(uniform >= 0.0, 1.0, -1.0)
    kinds = kinds[:, None]
    return np.where(kinds == 0, uniform, np.where(kinds == 1, signs, FAR_OUT * signs))


@dataclass
class SoakResult:
    env_id: str
    front_end: str
    steps: int
    agents: int
    episodes: int
    non_finite: int
    max_mass_error: float
    rss_warm_mb: float
    rss_end_mb: float
    peak_rss_mb: float
    seconds: float

    def failed(self, max_growth_mb: float) -> bool:
        growth = self.rss_end_mb - self.rss_warm_mb
        return self.non_finite > 0 or self.max_mass_error > MASS_TOLERANCE or growth > max_growth_mb

    def row(self, max_growth_mb: float) -> str:
        verdict = "FAIL" if self.failed(max_growth_mb) else "ok"
        return (
            f"| {self.env_id} | {self.front_end} | {self.steps:,} | {self.agents:,} | {self.steps * self.agents:,} "
            f"| {self.episodes:,} | {self.non_finite} | {self.max_mass_error:.1e} | {self.rss_warm_mb:.1f} "
            f"| {self.rss_end_mb:.1f} | {self.rss_end_mb - self.rss_warm_mb:+.1f} | {self.peak_rss_mb:.1f} "
            f"| {self.seconds:.0f} | {verdict} |"
        )


HEADER = (
    "| env | front end | steps | agents | agent-steps | episodes | non-finite | max abs(mass - 1) "
    "| RSS after warm-up (MB) | RSS at end (MB) | growth (MB) | process peak RSS so far (MB) | time (s) | result |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def finite_observation(obs: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(value).all() for value in obs.values())


def soak_single(env_id: str, n_steps: int, n_particles: int, seed: int) -> SoakResult:
    """``n_steps`` single-agent steps; the learner's action kind cycles with the step, the others' is drawn."""
    rng = np.random.default_rng(seed)
    env = gym.make(env_id, n_particles=n_particles)
    population = env.unwrapped.population
    dim = env.action_space.shape[0]

    def population_policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        return action_mix(rng, rng.integers(0, N_ACTION_KINDS, obs["state"].shape[0]), dim)

    env.unwrapped.set_population_policy(population_policy)
    block = 10_000  # learner actions drawn in blocks: one generator call per step would dominate small steps
    warm_up = max(n_steps // 10, 1)
    non_finite, mass_error, episodes = 0, 0.0, 1
    obs, _ = env.reset(seed=seed)
    rss_warm, start = memory_mb()[0], time.perf_counter()
    for first in range(0, n_steps, block):
        count = min(block, n_steps - first)
        actions = action_mix(rng, (np.arange(first, first + count) % N_ACTION_KINDS), dim)
        for i in range(count):
            obs, reward, terminated, _, _ = env.step(actions[i])
            non_finite += (not math.isfinite(reward)) + (not finite_observation(obs))
            mass_error = max(mass_error, abs(population.hist.sum() - 1.0))
            if terminated:
                obs, _ = env.reset()
                episodes += 1
                non_finite += not finite_observation(obs)
            if first + i + 1 == warm_up:
                rss_warm = memory_mb()[0]
    rss_end, peak = memory_mb()
    seconds = time.perf_counter() - start
    return SoakResult(env_id, "single", n_steps, 1, episodes, non_finite, mass_error, rss_warm, rss_end, peak, seconds)


def soak_batched(env_id: str, n_steps: int, n_agents: int, seed: int) -> SoakResult:
    """``n_steps`` steps of the ``n_agents``-agent batched env; every agent draws its action kind every step."""
    rng = np.random.default_rng(seed)
    venv = gym.make_vec(env_id, num_envs=n_agents)
    population = venv.unwrapped.population
    dim = venv.single_action_space.shape[0]
    warm_up = max(n_steps // 10, 1)
    non_finite, mass_error, episodes = 0, 0.0, 1
    obs, _ = venv.reset(seed=seed)
    rss_warm, start = memory_mb()[0], time.perf_counter()
    for step in range(n_steps):
        obs, rewards, terminated, _, _ = venv.step(action_mix(rng, rng.integers(0, N_ACTION_KINDS, n_agents), dim))
        non_finite += int(not np.isfinite(rewards).all()) + (not finite_observation(obs))
        mass_error = max(mass_error, abs(population.hist.sum() - 1.0))
        episodes += bool(terminated[0])
        if step + 1 == warm_up:
            rss_warm = memory_mb()[0]
    rss_end, peak = memory_mb()
    seconds = time.perf_counter() - start
    return SoakResult(
        env_id, "batched", n_steps, n_agents, episodes, non_finite, mass_error, rss_warm, rss_end, peak, seconds
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-ids", nargs="+", default=list(mfg_envs.ENV_IDS), choices=mfg_envs.ENV_IDS)
    parser.add_argument("--single-steps", type=int, default=1_000_000, help="single-agent steps per env")
    parser.add_argument("--particles", type=int, default=10, help="particles of the single-agent env")
    parser.add_argument("--agents", type=int, default=100_000, help="agents of the batched env")
    parser.add_argument("--batched-steps", type=int, default=200, help="steps of the batched env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-growth-mb", type=float, default=10.0, help="RSS growth counted as a leak")
    args = parser.parse_args(argv)
    for name in ("single_steps", "particles", "agents", "batched_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    rss, peak = memory_mb()
    print(f"start: RSS {rss:.1f} MB, peak RSS {peak:.1f} MB", file=sys.stderr)
    results = []
    for env_id in args.env_ids:
        for result in (
            soak_single(env_id, args.single_steps, args.particles, args.seed),
            soak_batched(env_id, args.batched_steps, args.agents, args.seed),
        ):
            print(result.row(args.max_growth_mb), file=sys.stderr, flush=True)
            results.append(result)
    rss, peak = memory_mb()
    print(HEADER)
    for result in results:
        print(result.row(args.max_growth_mb))
    print(f"\nProcess RSS at the end: {rss:.1f} MB; peak RSS: {peak:.1f} MB.")
    return int(any(result.failed(args.max_growth_mb) for result in results))


if __name__ == "__main__":
    sys.exit(main())
