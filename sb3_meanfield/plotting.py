"""Figures of a training run: learning curves, and the learned policy's population against the exact equilibrium.

- :func:`plot_learning_curves`: returns, Nash gap (labelled by its method: exact, dp or RL) and relative Nash gap
  (log scale) and the convergence monitors against environment steps, from the logger's metrics table;
- :func:`write_run_figures`: every figure of a run folder written by ``python -m sb3_meanfield.train``
  (``scripts/plot_run.py`` is its command line).

The population figures themselves (flows, moments, policies, crowd animation) are in
:mod:`mfg_envs.plotting`; they take arrays and need no trained agent.
"""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

import mfg_envs  # noqa: F401  (registers the env ids)
from mfg_envs.core import population_of
from mfg_envs.plotting import EXACT_STYLE, write_population_figures
from mfg_envs.rendering import exact_equilibrium
from sb3_meanfield.evaluation import ModelPolicy, check_defaults

STEPS = "time/total_timesteps"
RETURN_KEYS = {
    "rollout/ep_rew_mean": "training episodes (exploration noise on)",
    "mfg/policy_return": "deterministic policy in its own flow",
    "mfg/population_return": "population return (monitor)",
    "mfg/br_return": "{method} best response to that flow",
}
MONITOR_KEYS = ("mfg/policy_change", "mfg/q_change", "mfg/population_change")
LEGEND = {
    **RETURN_KEYS,
    "mfg/relative_nash_gap": "relative Nash gap",
    "mfg/policy_change": "RMS action change on probe states",
    "mfg/q_change": "RMS Q-value change on probe pairs",
    "mfg/population_change": "largest W1 change of the flow (histogram ranges)",
}
#: How the Nash gap's best-response method (:data:`sb3_meanfield.evaluation.METHODS`) is named in the figure.
METHOD_NAMES = {"exact": "exact", "dp": "dp", "rl": "RL"}


def load_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The logger's ``metrics.csv`` as columns of floats (empty cells: NaN)."""
    with Path(path).open() as file:
        rows = list(csv.DictReader(file))
    keys = rows[0].keys() if rows else ()
    return {key: np.array([float(row[key]) if row[key] else np.nan for row in rows]) for key in keys}


def _series(
    metrics: Mapping[str, Sequence[float] | np.ndarray], key: str, positive: bool = False
) -> tuple[np.ndarray, ...]:
    """Steps and values of ``key`` where both are logged (and the value is > 0 for log axes)."""
    if key not in metrics or STEPS not in metrics:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    steps, values = np.asarray(metrics[STEPS], dtype=float), np.asarray(metrics[key], dtype=float)
    keep = np.isfinite(steps) & np.isfinite(values) & ((values > 0) if positive else True)
    order = np.argsort(steps[keep], kind="stable")
    return steps[keep][order], values[keep][order], np.flatnonzero(keep)[order]


#: How the final evaluation is marked on the learning curves, apart from the checks during training.
FINAL_STYLE = {"fmt": "*", "color": "crimson", "markersize": 13, "capsize": 3, "zorder": 5}


def _final_values(final: Mapping[str, Any]) -> dict[str, tuple[float, float | None]]:
    """``panel key -> (value, standard error)`` of a final evaluation (``metrics.json``'s ``evaluation``; several
    populations: the largest gap)."""
    values: dict[str, tuple[float, float | None]] = {}
    gap = final.get("gap", final.get("max_gap"))
    if gap is not None:
        values["mfg/nash_gap"] = (float(gap), final.get("standard_error"))
    relative = final.get("relative_gap", final.get("max_relative_gap"))
    if relative is not None:
        values["mfg/relative_nash_gap"] = (float(relative), None)
    policy_return = final.get("policy_return", final.get("mean_return"))
    if policy_return is not None:
        values["return"] = (float(policy_return), None if "gap" in final else final.get("standard_error"))
    return values


def learning_curves_figure(
    metrics: Mapping[str, Sequence[float] | np.ndarray],
    title: str = "learning curves",
    equilibrium_return: float | None = None,
    final: Mapping[str, Any] | None = None,
    check_particles: int | None = None,
    method: str | None = None,
) -> Figure:
    """The figure of :func:`plot_learning_curves` (same arguments, without the path)."""
    method_name = METHOD_NAMES[method or (final or {}).get("method", "exact")]
    final_values = {} if final is None else _final_values(final)
    final_step = None if final is None else final.get("timesteps")
    if final_step is None and STEPS in metrics and len(metrics[STEPS]):
        final_step = float(np.nanmax(np.asarray(metrics[STEPS], dtype=float)))
    if final_step is None:
        final_values = {}
    final_label = "final evaluation" + (
        f" ({final['n_particles']:,} particles)" if final and "n_particles" in final else ""
    )
    checks = f"{method_name} Nash gap checks during training" + (
        f" ({check_particles:,} particles)" if check_particles else ""
    )

    def shown(key: str, log_scale: bool) -> bool:
        value = final_values.get(key)
        return bool(_series(metrics, key, positive=log_scale)[0].size) or (
            value is not None and (value[0] > 0 or not log_scale)
        )

    panels = [("return", [key for key in RETURN_KEYS if _series(metrics, key)[0].size], False)]
    if shown("mfg/nash_gap", True):
        panels.append(("Nash gap (return units)", ["mfg/nash_gap"], True))
    if shown("mfg/relative_nash_gap", True):
        panels.append(("relative Nash gap (1 = neutral policy)", ["mfg/relative_nash_gap"], True))
    monitors = [key for key in MONITOR_KEYS if _series(metrics, key, positive=True)[0].size]
    if monitors:
        panels.append(("change between checks", monitors, True))
    figure = Figure(figsize=(4.6 * len(panels), 3.8), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, keys, log_scale) in zip(axes, panels):
        for key in keys:
            steps, values, rows = _series(metrics, key, positive=log_scale)
            if not steps.size:
                continue
            label = checks if key == "mfg/nash_gap" else LEGEND.get(key, key).format(method=method_name)
            # a single point gets a marker that shows (a one-point line with the small "." would not)
            style = {"marker": "."} if steps.size > 1 else {"marker": "o", "linestyle": "none"}
            ax.plot(steps, values, label=label, **style)
            if key == "mfg/nash_gap" and "mfg/nash_gap_se" in metrics:
                error = np.asarray(metrics["mfg/nash_gap_se"], dtype=float)[rows]
                low = np.where(values - error > 0, values - error, values / 10)
                ax.fill_between(steps, low, values + error, alpha=0.25, label="+- standard error")
        marked = final_values.get("return" if name == "return" else keys[0])
        if marked is not None and (marked[0] > 0 or not log_scale):
            value, error = marked
            below = error if error is None or not log_scale or value - error > 0 else 0.9 * value  # log axes: > 0
            ax.errorbar(
                [final_step],
                [value],
                yerr=None if error is None else [[below], [error]],
                label=f"{final_label}: policy return" if name == "return" else final_label,
                **FINAL_STYLE,
            )
        if name == "return" and equilibrium_return is not None:
            ax.axhline(equilibrium_return, **EXACT_STYLE, label="exact equilibrium return -J*")
        ax.set(xlabel="environment steps", title=name, yscale="log" if log_scale else "linear")
        ax.xaxis.set_major_formatter(EngFormatter())  # 20k, 1M: step counts stay readable
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def plot_learning_curves(
    metrics: Mapping[str, Sequence[float] | np.ndarray],
    path: str | Path,
    title: str = "learning curves",
    equilibrium_return: float | None = None,
    final: Mapping[str, Any] | None = None,
    check_particles: int | None = None,
    method: str | None = None,
) -> Path:
    """Learning curves from a metrics table (columns keyed like SB3's logger: ``time/total_timesteps``, ...).

    Panels (each only when its columns hold data): returns (with the exact equilibrium return ``-J*``
    dashed when given); the Nash gap ``mfg/nash_gap`` with its standard error, log scale (a gap <= 0, Monte
    Carlo noise around a gap below its error, cannot be shown and is left out); the relative Nash gap; the
    convergence monitors ``mfg/*_change``. A series of one point is drawn as a marker.

    ``final``: the run's final evaluation (``metrics.json``'s ``evaluation``, with ``timesteps``, where to mark it,
    default the last step, and ``n_particles``): its gap (with its standard error), relative gap and policy (or
    mean) return are marked as a red star apart from the checks during training, which use
    ``check_particles`` particles (named in the legend when given) and so differ from it by their Monte Carlo error.
    ``method``: the checks' best-response method, a key of :data:`METHOD_NAMES` that labels the gap and the best
    response (default: ``final``'s ``method``, else exact).
    """
    figure = learning_curves_figure(metrics, title, equilibrium_return, final, check_particles, method)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def gap_checks(config: Mapping[str, Any]) -> tuple[str, int] | None:
    """Method and particles of the Nash-gap checks during training in a resolved config (``None``: no such
    callback; particles left unset: the callback's default, :func:`~sb3_meanfield.evaluation.check_defaults`)."""
    for entry in config.get("callback") or []:
        name = entry if isinstance(entry, str) else next(iter(entry))
        if name.rpartition(".")[2] in ("NashGapCallback", "StopTrainingOnNashGap"):
            kwargs = {} if isinstance(entry, str) else entry[name] or {}
            method = kwargs.get("method", "exact")
            return method, int(kwargs.get("n_particles", check_defaults(method)["n_particles"]))
    return None


def load_agents(run_dir: str | Path, config: Mapping[str, Any]) -> list[Any]:
    """The trained SB3 models of a run folder (algorithm class from ``config["algo_class"]``): ``[model.zip]``, or
    ``model_<population>.zip`` per population of ``config["populations"]`` (runs of several populations), in order."""
    module, _, name = config["algo_class"].rpartition(".")
    algorithm = getattr(importlib.import_module(module), name)
    names = [f"model_{population}" for population in config["populations"]] if "populations" in config else ["model"]
    return [algorithm.load(Path(run_dir) / f"{name}.zip", device="cpu") for name in names]


def write_run_figures(run_dir: str | Path, n_particles: int = 1000, seed: int = 0, animate: bool = True) -> list[Path]:
    """Write every figure of a training run into ``<run_dir>/figures/`` and return their paths.

    Reads ``config.yaml`` (``env``, ``env_kwargs``, ``algo``, ``algo_class``, ``mode``), ``metrics.csv``,
    ``metrics.json`` (the final evaluation, when written) and ``model.zip``, as ``python -m sb3_meanfield.train``
    writes them. Writes ``learning_curves.png`` (the final evaluation marked apart from the checks) and, for the
    learned deterministic policy played by ``n_particles`` particles (seed ``seed``), the figures of
    :func:`mfg_envs.plotting.write_population_figures`: ``population_flow.png`` (1-D models) or
    ``crowd_snapshots.png`` and ``crowd.gif`` (crowds; ``animate=False`` skips the GIF), ``moment_flows.png``
    and ``policy.png``, each against the exact equilibrium when the model has one.
    """
    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    env_id, algo = config["env"], config["algo"]
    env = gym.make(env_id, **{**(config.get("env_kwargs") or {}), "n_particles": n_particles})
    population = population_of(env)
    equilibrium = exact_equilibrium(population.model)
    out_dir = run_dir / "figures"
    final = None
    if (run_dir / "metrics.json").is_file():  # the final evaluation, marked apart from the checks during training
        final = json.loads((run_dir / "metrics.json").read_text())["evaluation"]
        final = {**final, "timesteps": config.get("n_timesteps")}
        eval_particles = (config.get("arguments") or {}).get("eval_particles")
        if eval_particles:
            final["n_particles"] = eval_particles
    method, check_particles = gap_checks(config) or (None, None)
    paths = [
        plot_learning_curves(
            load_metrics(run_dir / "metrics.csv"),
            out_dir / "learning_curves.png",
            f"{algo} on {env_id} ({config.get('mode', 'self-play')})",
            None if equilibrium is None else equilibrium.expected_return,
            final,
            check_particles,
            method,
        )
    ]
    policy = ModelPolicy(load_agents(run_dir, config)[0])
    paths += write_population_figures(env_id, population, policy, out_dir, seed, f"learned {algo}", animate)
    return paths
