"""How a trained agent reads the population, against the exact population-aware equilibrium (MFGLinearQuadratic-v0).

    OMP_NUM_THREADS=1 python scripts/learned_feedback.py RUN_DIR [RUN_DIR ...] [--figure PATH] [--replicates 16]

For each finished run of ``python -m sb3_meanfield.train --env MFGLinearQuadratic-v0`` (any ``env_kwargs``, e.g. a
random population ``init_mean_std=1`` or ``common_noise=0.5``) prints its Nash gap by the exact method (under
common noise the numerical best response of ``mfg_envs.common_noise``) and the mean absolute error of its learned
coefficients. Draws, for the first run, the learned policy's coefficients along the nominal path against the exact
equilibrium's, ``a = -K_n x - C_n m_n``: ``-d a / d x`` against ``K_n`` and ``-d a / d m`` against ``C_n``
(central differences of the actor; the population entry is the exact law on the env's grid, shifted by ``m``, in
the run's representation), and the population mean of 20 episodes (same seeds) under the learned policy and under
the exact equilibrium.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch as th
import yaml

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.common_noise import mean_paths
from mfg_envs.core import histogram_moments
from mfg_envs.equilibrium import gaussian_histogram, represent, solve_equilibrium
from mfg_envs.game import game_of
from sb3_meanfield import MFDDPG, MFSAC, MFTD3, ModelPolicy, nash_gap

ALGORITHMS = {"td3": MFTD3, "ddpg": MFDDPG, "sac": MFSAC}
STEP = 0.25  # half-width of the central differences, in units of x and m


def load(run_dir: Path):
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    env = gym.make(config["env"], **config["env_kwargs"])
    return env, ALGORITHMS[config["algo"]].load(run_dir / "model.zip")


def coefficients(env, policy) -> tuple[np.ndarray, np.ndarray]:
    """``(K, C)`` of ``policy`` along the nominal equilibrium path: ``-d a / d x`` and ``-d a / d m`` (physical)."""
    model, population = env.unwrapped.model, game_of(env).members[0]
    equilibrium = solve_equilibrium(env)
    _, variances = histogram_moments(equilibrium.histograms, model.histogram_bounds, model.n_bins)
    K, C = np.empty(model.n_steps), np.empty(model.n_steps)
    for n in range(model.n_steps):  # a loop over time steps; one batched call each
        m, std = equilibrium.mean_fields[n]["mean"], float(np.sqrt(variances[n, 0]))
        laws = [gaussian_histogram(m + d, std, model.histogram_bounds, model.n_bins) for d in (-STEP, 0.0, STEP)]
        features = represent(np.stack(laws), population)
        obs = {
            "state": np.array([[m - STEP], [m + STEP], [m], [m]], np.float32),
            "population": features[[1, 1, 0, 2]],
            "time": np.full((4, 1), n / model.n_steps, np.float32),
        }
        actions = model.action_bound * policy(obs)[:, 0]
        K[n] = -(actions[1] - actions[0]) / (2 * STEP)
        C[n] = -(actions[3] - actions[2]) / (2 * STEP)
    return K, C


def exact_coefficients(env) -> tuple[np.ndarray, np.ndarray]:
    """``(K_n, C_n)`` of the exact equilibrium (the gains of the sweep on ``(x, m, 1)``)."""
    gains = env.unwrapped.model.augmented_values()[1]
    return gains[:, 0], gains[:, 1]


def draw(path: Path, env, policy, learned: tuple[np.ndarray, np.ndarray], exact: tuple[np.ndarray, np.ndarray]) -> None:
    model = env.unwrapped.model
    times = np.arange(model.n_steps) * model.dt
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for axis, name, mine, truth in zip(axes[:2], ("K_n (own state)", "C_n (population mean)"), learned, exact):
        axis.plot(times, truth, "k--", label="exact equilibrium")
        axis.plot(times, mine, color="tab:orange", label="learned (central differences)")
        axis.set_title(f"coefficient {name}")
        axis.set_xlabel("t")
        axis.legend(fontsize=8)
    game = game_of(env).clone(2000)
    equilibrium = solve_equilibrium(env).policy
    for label, played, colour in (("exact feedback", equilibrium, "k"), ("learned", policy, "tab:orange")):
        paths, _ = mean_paths(game, played, 20, seed=0)
        axes[2].plot(np.arange(model.n_steps + 1) * model.dt, paths.T, color=colour, alpha=0.4, linewidth=1)
        axes[2].plot([], [], color=colour, label=label)
    axes[2].set_title("population mean, 20 episodes (same seeds)")
    axes[2].set_xlabel("t")
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/population_aware/learned_feedback.png"))
    parser.add_argument("--replicates", type=int, default=16)
    args = parser.parse_args()
    th.set_num_threads(1)
    for index, run_dir in enumerate(args.runs):
        env, agent = load(run_dir)
        policy = ModelPolicy(agent)
        gap = nash_gap(agent, env, n_particles=2000, n_replicates=args.replicates)
        learned = coefficients(env, policy)
        exact = exact_coefficients(env)
        errors = [float(np.abs(mine - truth).mean()) for mine, truth in zip(learned, exact)]
        print(
            f"{run_dir.name}: gap {gap.gap:.4f} +- {gap.standard_error:.4f} (relative {gap.relative_gap:.4f});"
            f" mean |K - K*| {errors[0]:.3f}, mean |C - C*| {errors[1]:.3f}"
        )
        if index == 0:
            draw(args.figure, env, policy, learned, exact)
            print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
