"""Figures of population flows and equilibria (matplotlib, object-oriented API with the Agg canvas).

Every plot function takes plain arrays, writes one PNG (or GIF) and returns its path, so it runs
without a trained agent and without pyplot's global state. :func:`record_population` produces the
arrays from a simulation: the states and histograms of every step of one episode.

- :func:`plot_population_flow`: the 1-D histogram ``m_n`` as a heat map against time, beside the
  exact equilibrium flow when there is one;
- :func:`plot_crowd_snapshots`: 2-D position densities and particles at a few times;
- :func:`plot_moment_flows`: mean and variance of the histogrammed quantity against time, vs exact;
- :func:`plot_policy_slices`: action against one state coordinate at a few times, learned vs exact;
- :func:`animate_crowd`: a GIF of the particles walking to the goal (matplotlib's ``PillowWriter``);
- :func:`write_population_figures`: all of the above for one policy on one env, reference overlays included
  (:func:`reference_equilibrium`: the exact equilibrium, or the walled crowd's cached numerical reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure

from mfg_envs.core import MeanFieldModel, Population, PopulationPolicy, histogram_moments
from mfg_envs.crowd_equilibrium import NumericalEquilibrium, cached_reference, has_reference
from mfg_envs.equilibrium import Equilibrium
from mfg_envs.game import Game, rollout
from mfg_envs.rendering import exact_equilibrium

#: Axis labels of each env: (state coordinates, action coordinates, histogrammed quantity).
LABELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "MFGLinearQuadratic-v0": (("state x",), ("control a",), "state x"),
    "MFGCrowdLQ-v0": (("x", "y", "vx", "vy"), ("acceleration u_x", "acceleration u_y"), "position"),
    "MFGCrowd-v0": (("x", "y", "vx", "vy"), ("acceleration a_x", "acceleration a_y"), "position"),
    "MFGPrice-v0": (("inventory x", "cash w", "signal d"), ("posted price a",), "posted price"),
    "MFGResource-v0": (("demand theta", "capacity c", "t/T"), ("allocation a",), "allocation"),
}
EXACT_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.5}


@dataclass(frozen=True)
class PopulationRecord:
    """One simulated episode: ``states`` ``(N+1, M, d_s)``, ``histograms`` ``(N+1, n_bins**d_h)`` (the raw
    histogram ``m_n``), ``features`` ``(N, k)`` (the population entry the policy saw at steps ``0..N-1``),
    ``actions`` ``(N, M, d_a)`` (normalized) and each particle's return ``(M,)``."""

    states: np.ndarray
    histograms: np.ndarray
    features: np.ndarray
    actions: np.ndarray
    returns: np.ndarray


def record_population(population: Population, policy: PopulationPolicy, seed: int = 0) -> PopulationRecord:
    """Play one episode of ``population`` with every particle following ``policy`` and keep every step.

    It runs :func:`mfg_envs.game.rollout` (same seed, same random numbers, so the same flow as the Nash-gap
    evaluation) with a policy wrapper that copies the population before each decision. ``population`` must
    simulate its own flow (not be frozen to a recorded one).
    """
    if population.flow is not None:
        raise ValueError("population must not be frozen to a flow: record_population simulates the flow itself")
    states, histograms, features, actions = [], [], [], []

    def recording_policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        states.append(population.states.copy())
        histograms.append(population.hist.copy())
        features.append(np.array(obs["population"][0]))
        chosen = np.asarray(policy(obs), dtype=float)
        actions.append(chosen.copy())
        return chosen

    returns = rollout(Game.of(population), recording_policy, seed)[1][0]
    states.append(population.states.copy())
    histograms.append(population.hist.copy())
    return PopulationRecord(np.stack(states), np.stack(histograms), np.stack(features), np.stack(actions), returns)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def plot_population_flow(
    histograms: np.ndarray,
    bounds: tuple[float, float],
    path: str | Path,
    exact: np.ndarray | None = None,
    horizon: float = 1.0,
    label: str = "state",
    title: str = "population flow",
) -> Path:
    """Heat map of a 1-D flow ``m_n`` (``(N+1, n_bins)``) against time ``t_n = n T / N``, and of the exact flow.

    Both panels share one colour scale (mass per bin); the exact panel is drawn only when ``exact`` is given.
    """
    panels = [("simulated", np.asarray(histograms, dtype=float))]
    if exact is not None:
        panels.append(("exact equilibrium", np.asarray(exact, dtype=float)))
    peak = max(float(flow.max()) for _, flow in panels)
    figure = Figure(figsize=(5.0 * len(panels) + 1.0, 3.6), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    extent = (0.0, horizon, bounds[0], bounds[1])
    for ax, (name, flow) in zip(axes, panels):
        image = ax.imshow(flow.T, origin="lower", aspect="auto", extent=extent, cmap="Blues", vmin=0.0, vmax=peak)
        ax.set(xlabel="time t", ylabel=label, title=name)
    figure.colorbar(image, ax=list(axes), label="mass per bin")
    figure.suptitle(title)
    return _save(figure, path)


def plot_crowd_snapshots(
    histograms: np.ndarray,
    bounds: np.ndarray,
    path: str | Path,
    positions: np.ndarray | None = None,
    goal: Sequence[float] | None = None,
    n_snapshots: int = 5,
    exact_ellipses: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    title: str = "crowd density",
    max_particles: int = 300,
) -> Path:
    """2-D position histograms ``(N+1, n_bins**2)`` (C order, ``x`` slowest) at ``n_snapshots`` evenly spaced
    steps, with the first ``max_particles`` particles (``positions`` ``(N+1, M, 2)``), the goal (green star) and,
    per step, the exact law's ``mean +- 2 std`` ellipse (``exact_ellipses[n] = (mean, std)``).

    Each panel's colour scale runs from 0 to its own largest cell mass (the crowd spreads, so a shared
    scale would leave the later panels blank); the panel title gives that mass.
    """
    histograms = np.asarray(histograms, dtype=float)
    n_bins = math.isqrt(histograms.shape[1])
    steps = np.unique(np.linspace(0, len(histograms) - 1, n_snapshots).round().astype(int))
    figure = Figure(figsize=(3.0 * len(steps), 3.5), layout="constrained")
    axes = figure.subplots(1, len(steps), squeeze=False)[0]
    extent = (bounds[0, 0], bounds[0, 1], bounds[1, 0], bounds[1, 1])
    angle = np.linspace(0.0, 2.0 * np.pi, 200)
    for ax, n in zip(axes, steps):
        grid = histograms[n].reshape(n_bins, n_bins).T  # rows: y
        ax.imshow(grid, origin="lower", extent=extent, cmap="Blues", vmin=0.0, vmax=max(grid.max(), 1e-12))
        if positions is not None:
            ax.scatter(positions[n, :max_particles, 0], positions[n, :max_particles, 1], s=0.8, color="0.1")
        if exact_ellipses is not None:
            mean, std = exact_ellipses[n]
            ax.plot(mean[0] + 2 * std[0] * np.cos(angle), mean[1] + 2 * std[1] * np.sin(angle), color="tab:orange")
        if goal is not None:
            ax.plot(*goal, marker="*", markersize=12, color="tab:green", markeredgecolor="black")
        ax.set(xlim=extent[:2], ylim=extent[2:], title=f"step {n} (peak cell {grid.max():.2f})", xlabel="x")
    axes[0].set_ylabel("y")
    figure.suptitle(title)
    return _save(figure, path)


def plot_moment_flows(
    times: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    path: str | Path,
    exact_means: np.ndarray | None = None,
    exact_variances: np.ndarray | None = None,
    axis_names: Sequence[str] = ("",),
    title: str = "mean and variance flows",
    reference_label: str = "exact",
) -> Path:
    """Mean and variance ``(T, d)`` against ``times`` (``(T,)``), simulated (solid) and of the reference (dashed,
    labelled ``reference_label``: the exact equilibrium, or a numerical reference), per axis."""
    means, variances = np.atleast_2d(means.T).T, np.atleast_2d(variances.T).T
    figure = Figure(figsize=(10.0, 3.6), layout="constrained")
    mean_ax, var_ax = figure.subplots(1, 2)
    for axis, name in enumerate(axis_names):
        suffix = f" ({name})" if name else ""
        mean_ax.plot(times, means[:, axis], marker=".", label=f"simulated{suffix}")
        var_ax.plot(times, variances[:, axis], marker=".", label=f"simulated{suffix}")
        if exact_means is not None:
            assert exact_variances is not None, "exact_means and exact_variances go together"
            style = {**EXACT_STYLE, "color": mean_ax.lines[-1].get_color()} if len(axis_names) > 1 else EXACT_STYLE
            mean_ax.plot(times, np.atleast_2d(exact_means.T).T[:, axis], **style, label=f"{reference_label}{suffix}")
            var_ax.plot(times, np.atleast_2d(exact_variances.T).T[:, axis], **style, label=f"{reference_label}{suffix}")
    mean_ax.set(xlabel="time t", title="mean")
    var_ax.set(xlabel="time t", title="variance")
    for ax in (mean_ax, var_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)


def plot_policy_slices(
    grid: np.ndarray,
    learned: np.ndarray,
    path: str | Path,
    times: Sequence[float] | np.ndarray,
    exact: np.ndarray | None = None,
    xlabel: str = "state",
    ylabel: str = "action",
    title: str = "policy",
    label: str = "learned",
    reference_label: str = "exact",
) -> Path:
    """Actions ``(S, G)`` along a state coordinate ``grid`` (``(G,)`` or ``(S, G)``) at times ``times`` (``(S,)``):
    the policy named ``label`` (solid) and the reference one named ``reference_label`` (dashed, same colour)."""
    grid = np.broadcast_to(grid, np.shape(learned))
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = figure.subplots()
    for s, t in enumerate(times):
        ax.plot(grid[s], learned[s], label=f"{label}, t = {t:.2f}")
        if exact is not None:
            style = {**EXACT_STYLE, "color": ax.lines[-1].get_color()}
            ax.plot(grid[s], exact[s], **style, label=f"{reference_label}, t = {t:.2f}")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return _save(figure, path)


def animate_crowd(
    positions: np.ndarray,
    bounds: np.ndarray,
    path: str | Path,
    goal: Sequence[float] | None = None,
    walls: bool = False,
    fps: int = 8,
    max_particles: int = 1000,
    title: str = "crowd",
) -> Path:
    """A GIF of particle positions ``(N+1, M, 2)`` step by step (matplotlib ``PillowWriter``), goal as a star."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(4.0, 4.0), layout="constrained")
    ax = figure.subplots()
    ax.set(xlim=tuple(bounds[0]), ylim=tuple(bounds[1]), aspect="equal", xlabel="x", ylabel="y")
    if walls:
        for side in ax.spines.values():
            side.set_linewidth(4)
    if goal is not None:
        ax.plot(*goal, marker="*", markersize=14, color="tab:green", markeredgecolor="black")
    dots = ax.scatter(positions[0, :max_particles, 0], positions[0, :max_particles, 1], s=2.0, color="tab:blue")
    writer = PillowWriter(fps=fps)
    with writer.saving(figure, str(path), dpi=80):
        for n, frame in enumerate(positions):
            dots.set_offsets(frame[:max_particles])
            ax.set_title(f"{title}: step {n} / {len(positions) - 1}")
            writer.grab_frame()
    return path


def policy_slices(
    population: Population,
    record: PopulationRecord,
    policies: Sequence[PopulationPolicy],
    steps: Sequence[int] | np.ndarray,
    n_points: int = 60,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Physical action 0 of each policy along state coordinate 0 at the given steps.

    At step ``n`` the other coordinates sit at the particles' mean state, coordinate 0 spans the particles'
    1%-99% range (widened by 10%), and the population entry is the one the recorded policy saw at ``n``.
    Returns the grid ``(S, G)`` and one ``(S, G)`` array of actions per policy.
    """
    model = population.model
    grids: list[np.ndarray] = []
    actions: list[list[np.ndarray]] = [[] for _ in policies]
    for n in steps:
        low, high = np.quantile(record.states[n][:, 0], [0.01, 0.99])
        pad = 0.1 * (high - low) + 1e-3
        grid = np.linspace(low - pad, high + pad, n_points)
        states = np.repeat(record.states[n].mean(axis=0, keepdims=True), n_points, axis=0)
        states[:, 0] = grid
        obs = {
            "state": states.astype(np.float32),
            "population": np.repeat(record.features[n][None, :], n_points, axis=0),
            "time": np.full((n_points, 1), n / model.n_steps, dtype=np.float32),
        }
        grids.append(grid)
        for rows, policy in zip(actions, policies):
            rows.append(model.physical_action(states, np.clip(policy(obs), -1.0, 1.0))[:, 0])
    return np.stack(grids), [np.stack(rows) for rows in actions]


def reference_equilibrium(model: MeanFieldModel) -> Equilibrium | None:
    """What the figures compare against: the exact equilibrium (:func:`mfg_envs.rendering.exact_equilibrium`), else
    the walled crowd's numerical reference when the disk cache holds it (its policy recomputed by one dp solve;
    never solved here, as that takes minutes: ``mfg_envs.solve_equilibrium(env)`` solves and caches it), else
    ``None``."""
    equilibrium = exact_equilibrium(model)
    if equilibrium is None and has_reference(model):
        reference = cached_reference(model)
        return reference if isinstance(reference, NumericalEquilibrium) else None
    return equilibrium


def position_ellipses(equilibrium: Equilibrium, model: MeanFieldModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per step, the per-axis mean and std of the equilibrium positions: the exact law's (its mean fields), or
    the binned moments of a numerical reference's histograms (its mean fields are densities per cell)."""
    if equilibrium.numerical:
        means, variances = histogram_moments(equilibrium.histograms, model.histogram_bounds, model.n_bins)
        return list(zip(means, np.sqrt(variances)))
    return [(mf["mean"], np.sqrt(mf["var"])) for mf in equilibrium.mean_fields]


def density_figures(
    env_id: str,
    model: MeanFieldModel,
    record: PopulationRecord,
    equilibrium: Equilibrium | None,
    out_dir: Path,
    first: int,
    name: str,
    reference: str,
    animate: bool,
) -> list[Path]:
    """The population's density over one recorded episode: ``population_flow.png`` (1-D models, beside the
    reference's flow, which the legends call ``reference``) or ``crowd_snapshots.png`` and, with ``animate``,
    ``crowd.gif`` (the crowds)."""
    quantity = LABELS.get(env_id, (None, None, "population"))[2]
    exact_histograms = None if equilibrium is None else equilibrium.histograms
    bounds = model.histogram_bounds
    if bounds.shape[0] == 1:
        return [
            plot_population_flow(
                record.histograms[first:],
                tuple(bounds[0]),
                out_dir / "population_flow.png",
                None if exact_histograms is None else exact_histograms[first:],
                horizon=model.horizon,
                label=quantity,
                title=f"{env_id}: {quantity} distribution over time ({name})",
            )
        ]
    ellipses = None if equilibrium is None else position_ellipses(equilibrium, model)
    goal = getattr(model, "goal", None)
    paths = [
        plot_crowd_snapshots(
            record.histograms,
            bounds,
            out_dir / "crowd_snapshots.png",
            record.states[:, :, :2],
            goal,
            exact_ellipses=ellipses,
            title=f"{env_id}: crowd density ({name}; orange: {reference} equilibrium mean +- 2 std)",
        )
    ]
    if animate:
        walls = bool(np.isfinite(model.state_low[:2]).all())
        paths.append(animate_crowd(record.states[:, :, :2], bounds, out_dir / "crowd.gif", goal, walls, title=env_id))
    return paths


def write_population_figures(
    env_id: str,
    population: Population,
    policy: PopulationPolicy,
    out_dir: str | Path,
    seed: int = 0,
    name: str = "policy",
    animate: bool = True,
) -> list[Path]:
    """Simulate ``policy`` on ``population`` for one episode and write its figures into ``out_dir``.

    Files: ``population_flow.png`` (1-D models: histogram against time beside the exact flow) or
    ``crowd_snapshots.png`` and ``crowd.gif`` (the crowds), ``moment_flows.png`` (mean and variance vs the
    reference) and ``policy.png`` (action along state coordinate 0, vs the reference equilibrium policy).
    The reference is :func:`reference_equilibrium`'s: the exact equilibrium when the model has one, else the walled
    crowd's numerical reference when the disk cache holds it (labelled "numerical reference"), else none.
    """
    out_dir = Path(out_dir)
    model = population.model
    state_labels, action_labels, quantity = LABELS.get(env_id, (("state 0",), ("action 0",), "population"))
    record = record_population(population, policy, seed)
    equilibrium = reference_equilibrium(model)
    reference = "numerical reference" if equilibrium is not None and equilibrium.numerical else "exact"
    exact_histograms = None if equilibrium is None else equilibrium.histograms
    bounds, n_bins = model.histogram_bounds, model.n_bins
    # action histograms (price, resource) exist from step 1 on; step 0 shows a placeholder
    first = 1 if model.histogram_values(record.states[0][:1], None) is None else 0
    # the histogram of step n >= first; with action histograms it holds the actions taken at step n - 1
    times = (np.arange(first, model.n_steps + 1) - first) * model.dt
    paths = density_figures(env_id, model, record, equilibrium, out_dir, first, name, reference, animate)
    means, variances = histogram_moments(record.histograms[first:], bounds, n_bins)
    exact_moments: tuple[np.ndarray | None, np.ndarray | None] = (
        (None, None) if exact_histograms is None else histogram_moments(exact_histograms[first:], bounds, n_bins)
    )
    paths.append(
        plot_moment_flows(
            times,
            means,
            variances,
            out_dir / "moment_flows.png",
            exact_moments[0],
            exact_moments[1],
            axis_names=("x", "y") if bounds.shape[0] == 2 else ("",),
            title=f"{env_id}: moments of the {quantity} histogram ({name})",
            reference_label=reference,
        )
    )
    slice_steps = np.unique(np.linspace(0, model.n_steps - 1, 4).round().astype(int))
    policies: list[PopulationPolicy] = [policy] if equilibrium is None else [policy, equilibrium.policy]
    grid, actions = policy_slices(population, record, policies, slice_steps)
    paths.append(
        plot_policy_slices(
            grid,
            actions[0],
            out_dir / "policy.png",
            slice_steps * model.dt,
            None if equilibrium is None else actions[1],
            xlabel=f"{state_labels[0]} (other coordinates at the population mean)",
            ylabel=action_labels[0],
            title=f"{env_id}: {name}" + ("" if equilibrium is None else f" vs {reference} equilibrium (dashed)"),
            label=name,
            reference_label=reference,
        )
    )
    return paths
