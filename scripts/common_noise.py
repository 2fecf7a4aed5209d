"""Population-aware equilibria of MFGLinearQuadratic-v0 under a random population, measured.

    OMP_NUM_THREADS=1 python scripts/common_noise.py [--particles 2000] [--replicates 40] [--figure-dir DIR]

Prints, at the tracking defaults with ``common_noise=0.5, init_mean_std=1`` (and the systemic-risk preset):

1. ``J*`` of the exact equilibrium against a simulation of the env (``--episodes`` episodes of the population);
2. the exact gap of the policy of time alone (closed form) against the simulated Nash gap (common random numbers);
3. the numerical best response of ``mfg_envs.common_noise`` against the exact one, on affine policies handed over
   as plain callables (the exact method cannot see that they are affine): the difference of the best responses'
   simulated returns on the same replicates, its error;
4. on a policy nonlinear in the population (the equilibrium plus ``0.1 tanh(m - 2)``): the numerical best
   response's return at three resolutions (the middle one is the default).

and draws ``mean_paths.png`` in ``--figure-dir`` (default docs/figures/population_aware): the population mean
under the same common shocks when everybody plays the exact feedback equilibrium and when everybody plays the
equilibrium of the fixed law written as a function of time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.common_noise import mean_feedback_best_response, mean_paths
from mfg_envs.equilibrium import solve_equilibrium
from mfg_envs.game import Game, frozen_flows_returns, rollout
from mfg_envs.nash_gap import exact_nash_gap

RANDOM = {"common_noise": 0.5, "init_mean_std": 1.0}
SYSTEMIC_RISK = {
    "mean_reversion": 1,
    "cross_cost": 0.8,
    "kappa": 1,
    "kappa_terminal": 1,
    "init_mean": 1,
    "init_var": 0.5,
}


def time_only(model, fixed_kwargs):
    return dataclasses.replace(solve_equilibrium(gym.make("MFGLinearQuadratic-v0", **fixed_kwargs)).policy, model=model)


def pushed(policy):
    def play(obs):
        return np.clip(policy(obs) + 0.1 * np.tanh(policy.population_means(obs["population"]) - 2.0), -1.0, 1.0)

    return play


def exact_rows(name: str, fixed: dict, particles: int, replicates: int, episodes: int) -> None:
    env = gym.make("MFGLinearQuadratic-v0", **fixed, **RANDOM)
    model, equilibrium = env.unwrapped.model, solve_equilibrium(env)
    returns = np.array([rollout(Game(model, particles), equilibrium.policy, s)[1][0].mean() for s in range(episodes)])
    error = returns.std(ddof=1) / np.sqrt(episodes)
    print(f"{name}: J* = {-equilibrium.expected_return:.6f}, simulated {-returns.mean():.4f} +- {error:.4f}")
    policy = time_only(model, fixed)
    exact = model.policy_cost(policy) + model.feedback_best_response(policy).expected_return
    estimate = exact_nash_gap(policy, env, n_particles=particles, relative=False, n_replicates=replicates)
    print(f"  time-only: exact gap {exact:.6f}; simulated {estimate.gap:.4f} +- {estimate.standard_error:.4f}")
    for label, affine in (("time-only", policy), ("equilibrium", equilibrium.policy)):
        started = time.perf_counter()
        numerical = exact_nash_gap(
            lambda obs, p=affine: p(obs), env, particles, relative=False, n_replicates=replicates
        )
        seconds = time.perf_counter() - started
        reference = exact_nash_gap(affine, env, particles, relative=False, n_replicates=replicates)
        shortfall = reference.best_response_return - numerical.best_response_return
        print(f"  {label}: numerical best response's return {numerical.best_response_return:.5f}, exact's")
        tail = f"short by {shortfall:.2e} (gap {numerical.gap:.4f}), {seconds:.1f} s"
        print(f"    {reference.best_response_return:.5f}: {tail}")


def nonlinear_rows(particles: int) -> None:
    env = gym.make("MFGLinearQuadratic-v0", **RANDOM)
    game, policy = env.unwrapped.game, pushed(solve_equilibrium(env).policy)
    flows = rollout(game.clone(particles), policy, 5)[0]
    for episodes, fit_particles, points in ((16, 500, 101), (32, 1000, 401), (256, 2000, 1601)):
        response = mean_feedback_best_response(game, policy, 11, episodes, fit_particles, points)
        best = frozen_flows_returns(game, flows, 0, response, particles, 5).mean()
        setting = f"{episodes} episodes of {fit_particles} particles, {points} grid points"
        print(f"  pushed equilibrium, {setting}: best response's return {best:.5f}")


def draw_mean_paths(figure_dir: Path, particles: int, n_paths: int = 20) -> Path:
    env = gym.make("MFGLinearQuadratic-v0", **RANDOM)
    model, equilibrium = env.unwrapped.model, solve_equilibrium(env)
    game = Game(model, particles)
    times = np.arange(model.n_steps + 1) * model.dt
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for axis, (title, policy) in zip(axes, (("exact feedback a = -K x - C m", equilibrium.policy),
                                             ("time only a = -K x - C m*(t)", time_only(model, {})))):  # fmt: skip
        means, _ = mean_paths(game, policy, n_paths, seed=0)
        axis.plot(times, means.T, color="tab:blue", alpha=0.5, linewidth=1)
        axis.plot(
            times, [mf["mean"] for mf in equilibrium.mean_fields], "k--", label="nominal path (M0 = m_0, no shock)"
        )
        axis.set_title(title)
        axis.set_xlabel("t")
    axes[0].set_ylabel("population mean m_t")
    axes[0].legend(loc="upper right", fontsize=8)
    figure.suptitle(f"{n_paths} episodes, same seeds: init_mean_std = 1, common_noise = 0.5, {particles} particles")
    figure.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    path = figure_dir / "mean_paths.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=2000, help="episodes of the J* simulation")
    parser.add_argument("--figure-dir", type=Path, default=Path("docs/figures/population_aware"))
    args = parser.parse_args()
    exact_rows("tracking defaults", {}, args.particles, args.replicates, args.episodes)
    exact_rows("systemic risk", SYSTEMIC_RISK, args.particles, args.replicates, args.episodes)
    nonlinear_rows(args.particles)
    print(f"wrote {draw_mean_paths(args.figure_dir, args.particles)}")


if __name__ == "__main__":
    main()
