"""How close the learned deterministic policies of run folders play to the action bound.

    OMP_NUM_THREADS=1 python scripts/action_saturation.py RUN_DIR [RUN_DIR ...] [--n-particles 1000] [--seed 0]

For each run folder (``python -m sb3_meanfield.train`` or ``python -m sb3_meanfield.train_multi`` output) one
episode of ``--n-particles`` particles (per population) follows the saved policies; over every particle and
step it prints the mean ``|a_j|`` of the normalized actions and the fraction of action components within 0.02 of
the bound ``|a_j| = 1``. A tanh actor stuck at the bound (the failure the action barrier prevents) shows a
fraction near 1.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch as th  # imported after the thread setting above
import yaml

from mfg_envs.core import PopulationPolicy
from mfg_envs.game import rollout
from sb3_meanfield import ModelPolicy
from sb3_meanfield.plotting import load_agents

#: Distance to the bound under which an action component counts as saturated.
SATURATION_MARGIN = 0.02


class RecordedPolicy:
    """``policy``, keeping every batch of normalized actions it returns."""

    def __init__(self, policy: PopulationPolicy) -> None:
        self.policy, self.actions = policy, []

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        actions = self.policy(obs)
        self.actions.append(np.asarray(actions))
        return actions


def played_actions(run_dir: Path, n_particles: int, seed: int) -> np.ndarray:
    """Every normalized action the run's policies play in one episode (all populations), one row per action."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    policies = [RecordedPolicy(ModelPolicy(model)) for model in load_agents(run_dir, config)]
    env = gym.make(config["env"], **config["env_kwargs"]).unwrapped
    rollout(env.game.clone(n_particles), policies, seed)
    return np.concatenate([np.concatenate(policy.actions) for policy in policies])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished run folders")
    parser.add_argument("--n-particles", type=int, default=1000, help="particles per population (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episode (default 0)")
    args = parser.parse_args(argv)
    if args.n_particles < 1:
        parser.error(f"--n-particles must be an integer >= 1, got {args.n_particles}")
    th.set_num_threads(1)
    print("| run | mean abs action | fraction at the bound |")
    print("|---|---|---|")
    for run_dir in args.run_dirs:
        if not (run_dir / "metrics.json").is_file():
            parser.error(f"{run_dir} is not a finished run folder: no metrics.json")
        magnitudes = np.abs(played_actions(run_dir, args.n_particles, args.seed))
        saturated = float((magnitudes > 1.0 - SATURATION_MARGIN).mean())
        print(f"| {run_dir.name} | {magnitudes.mean():.3f} | {saturated:.3f} |")


if __name__ == "__main__":
    main()
