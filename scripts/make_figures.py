"""Write the documentation figures (docs/figures/) from the exact solvers and env simulations, and print
the measured results each env page quotes.

    OMP_NUM_THREADS=1 python scripts/make_figures.py                        # every env, ~2 min with a cached reference
    OMP_NUM_THREADS=1 python scripts/make_figures.py --env MFGPrice-v0      # one env

For each env, into ``docs/figures/<env id>/``: ``frame.png`` (``render_mode="rgb_array"`` at mid-episode)
and the figures of :func:`mfg_envs.plotting.write_population_figures` for the exact equilibrium policy
(``MFGCrowd-v0``, which has none: its numerical reference policy, :mod:`mfg_envs.crowd_equilibrium`, read from the
cache or solved first, tens of minutes), simulated with 1000 particles, seed 0. ``docs/figures/overview.png`` (the
README figure) puts the five frames side by side.

The printed tables (markdown) are the numbers of the docs: the exact equilibrium return ``-J*`` and exact
Nash gaps (``mfg_envs.exact_nash_gap``: 4 replicates of ``--particles`` particles, seeds 0-3,
common random numbers) of the equilibrium policy, of the equilibrium shifted by +0.1 in every physical
action, and of the neutral policy (normalized action 0); for ``MFGCrowd-v0`` the reference's Monte Carlo return
and dp Nash gaps (as solved: 10,000 particles) and the mean returns of a PD baseline and of the neutral policy.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

import mfg_envs
from mfg_envs.core import ConstantPolicy, MeanFieldModel, Population, PopulationPolicy
from mfg_envs.crowd_equilibrium import DEFAULT_SETTINGS, NumericalEquilibrium, solve_reference
from mfg_envs.equilibrium import AffinePolicy, Equilibrium
from mfg_envs.game import Game, rollout
from mfg_envs.nash_gap import exact_nash_gap
from mfg_envs.plotting import write_population_figures
from mfg_envs.rendering import exact_equilibrium

ROOT = Path(__file__).resolve().parent.parent
FIGURE_PARTICLES = 1000


@dataclass(frozen=True)
class GoalSeekingPolicy:
    """A PD baseline for the crowds (not an equilibrium): ``u = gain (g - p) - damping v``, normalized and clipped.

    ``gain = 1``, ``damping = 2`` is the critically damped choice for the double integrator.
    """

    model: MeanFieldModel
    gain: float = 1.0
    damping: float = 2.0

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs["state"], dtype=float)
        physical = self.gain * (self.model.goal - states[:, :2]) - self.damping * states[:, 2:]
        return np.clip(self.model.normalized_action(states, physical), -1.0, 1.0)


def figure_equilibrium(model: MeanFieldModel) -> Equilibrium:
    """The exact equilibrium, or the walled crowd's numerical reference (solved and cached when missing)."""
    equilibrium = exact_equilibrium(model)
    if equilibrium is None:
        reference = solve_reference(model)
        assert isinstance(reference, NumericalEquilibrium), "a single-population model"
        return reference
    return equilibrium


def figure_policy(model: MeanFieldModel) -> tuple[PopulationPolicy, str]:
    equilibrium = figure_equilibrium(model)
    return equilibrium.policy, "numerical reference policy" if equilibrium.numerical else "exact equilibrium policy"


def save_frame(env_id: str, policy: PopulationPolicy, path: Path) -> np.ndarray:
    """The ``rgb_array`` frame at step ``N/2`` with every particle (the learner too) following ``policy``."""
    env = gym.make(env_id, n_particles=FIGURE_PARTICLES, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.unwrapped.set_population_policy(policy)
    batch = {key: value[None, :] for key, value in obs.items()}
    for _ in range(env.unwrapped.model.n_steps // 2):
        obs, *_ = env.step(policy(batch)[0].astype(np.float32))
        batch = {key: value[None, :] for key, value in obs.items()}
    frame = env.render()
    Image.fromarray(frame).save(path)
    return frame


def shifted(policy: AffinePolicy, shift: float) -> AffinePolicy:
    """``a_n(s) + shift`` in every physical action coordinate (before the clip to the action box)."""
    return AffinePolicy(policy.model, policy.gains, policy.offsets - shift)


def results_table(env_id: str, n_particles: int) -> list[str]:
    """Markdown rows of the measured results of ``env_id``."""
    env = gym.make(env_id)
    model = env.unwrapped.model
    neutral = ConstantPolicy(np.zeros(model.action_dim))
    equilibrium = figure_equilibrium(model)
    rows = ["| quantity | value |", "|---|---|"]
    if isinstance(equilibrium, NumericalEquilibrium):
        gap, solved = equilibrium.report.gap, DEFAULT_SETTINGS.n_particles
        rows.append(
            f"| reference equilibrium return (Monte Carlo), N = {solved} | {equilibrium.expected_return:.4f} +- "
            f"{equilibrium.standard_error:.2g} |"
        )
        rows.append(
            f"| dp Nash gap, reference policy, N = {solved} | {gap.gap:.4g} +- {gap.standard_error:.2g} "
            f"(relative {gap.relative_gap:.3g}) |"
        )
        neutral_gap = max(equilibrium.report.neutral_gaps.values())
        rows.append(f"| dp Nash gap, neutral policy, N = {solved} | {neutral_gap:.4g} |")
        for name, policy in (
            ("PD baseline (gain 1, damping 2)", GoalSeekingPolicy(model)),
            ("neutral policy", neutral),
        ):
            returns = rollout(Game(model, n_particles), policy, 0)[1][0]
            se = returns.std(ddof=1) / np.sqrt(n_particles)
            rows.append(f"| mean return, {name}, N = {n_particles} | {returns.mean():.4f} +- {se:.2g} |")
        return rows
    rows.append(f"| exact equilibrium return -J* | {equilibrium.expected_return:.10f} |")
    neutral_gap = exact_nash_gap(neutral, env, n_particles, relative=False)
    for name, policy in (
        ("exact equilibrium policy (finite-N floor)", equilibrium.policy),
        ("equilibrium + 0.1 in every action", shifted(equilibrium.policy, 0.1)),
        ("neutral policy (normalized action 0)", neutral),
    ):
        gap = neutral_gap if policy is neutral else exact_nash_gap(policy, env, n_particles, relative=False)
        relative = gap.gap / neutral_gap.gap
        rows.append(
            f"| Nash gap, {name}, N = {n_particles} | {gap.gap:.4g} +- {gap.standard_error:.2g} "
            f"(relative {relative:.3g}) |"
        )
    return rows


def overview(frames: dict[str, np.ndarray], path: Path) -> None:
    figure = Figure(figsize=(3.2 * len(frames), 3.2), layout="constrained")
    axes = figure.subplots(1, len(frames), squeeze=False)[0]
    for ax, (env_id, frame) in zip(axes, frames.items()):
        ax.imshow(frame)
        ax.set_title(env_id, fontsize=11)
        ax.set_axis_off()
    figure.suptitle(
        "render_mode='rgb_array' at mid-episode, 1000 particles on the exact equilibrium policy (MFGCrowd-v0: its"
        " numerical reference); black line / orange ellipse: the equilibrium law",
        fontsize=10,
    )
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", choices=mfg_envs.ENV_IDS, default=list(mfg_envs.ENV_IDS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="figure folder")
    parser.add_argument("--particles", type=int, default=10_000, help="particles of the Nash-gap estimates")
    parser.add_argument("--no-animation", action="store_true", help="skip the crowd GIFs")
    args = parser.parse_args(argv)
    frames = {}
    for env_id in args.env:
        model = gym.make(env_id).unwrapped.model
        policy, name = figure_policy(model)
        out_dir = args.out / env_id
        out_dir.mkdir(parents=True, exist_ok=True)
        frames[env_id] = save_frame(env_id, policy, out_dir / "frame.png")
        population = Population(model, FIGURE_PARTICLES)
        write_population_figures(env_id, population, policy, out_dir, seed=0, name=name, animate=not args.no_animation)
        print(f"\n## {env_id}\n")
        print("\n".join(results_table(env_id, args.particles)))
    if len(frames) == len(mfg_envs.ENV_IDS):
        overview(frames, args.out / "overview.png")


if __name__ == "__main__":
    main()
