"""The result of a sweep: one row per trial (:func:`trial_rows`), written as a Markdown table, a CSV file and a
figure (:func:`write_results`: ``results`` with the suffixes ``.md``, ``.csv`` and ``.png`` in the sweep's folder).

A row holds the trial (env id, algorithm, seed, hyperparameters, its train command), its status (:data:`STATUSES`),
its last reported Nash gap (the final evaluation's for a ``done`` or ``reused`` trial, the last check's otherwise),
the training time, where it ran (Ray node id and host) and its run folder, or the error of a failed trial.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from sb3_meanfield.sweep.runner import Sweep
from sb3_meanfield.sweep.space import Trial

#: A trial's status: trained to its final evaluation; a finished run scored again (``reuse``); stopped by ASHA
#: after a check; failed (``error`` says why); or interrupted with the sweep (resuming it continues the trial).
STATUSES = ("done", "reused", "stopped early", "failed", "interrupted")
#: The CSV's columns (a row's other entries, the final evaluation and the reports, are in the JSON of a run folder).
COLUMNS = (
    "env",
    "algo",
    "seed",
    "hyperparams",
    "status",
    "relative_gap",
    "gap",
    "gap_se",
    "method",
    "reports",
    "n_timesteps",
    "train_seconds",
    "node_id",
    "host",
    "trial_id",
    "run_dir",
    "error",
    "command",
)
#: The last line of an exception's traceback: ``module.Class: message``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")


def error_line(error: BaseException) -> str:
    """The line of a failed trial's error that says what went wrong (Tune's error holds the whole traceback)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), lines[-1] if lines else repr(error))


def status_of(metrics: dict[str, Any], tune_status: str | None, failed: bool) -> str:
    """A trial's :data:`STATUSES` entry from its last result and Tune's status of it."""
    if failed:
        return "failed"
    if metrics.get("final"):
        return "reused" if metrics.get("reused") else "done"
    return "stopped early" if tune_status == "TERMINATED" else "interrupted"


def history_of(result: Any) -> list[tuple[float, float, bool]]:
    """A trial's reports: ``(timesteps, relative gap, final)`` each, in order."""
    frame = result.metrics_dataframe
    if frame is None or "relative_gap" not in frame.columns:
        return []
    records = frame[["timesteps", "relative_gap", "final"]].to_dict("records")
    return [(float(r["timesteps"]), float(r["relative_gap"]), bool(r["final"])) for r in records]


def trial_row(result: Any, tune_status: str | None, log_folder: str) -> dict[str, Any]:
    """The row of one Tune result (``ray.tune.Result``) of a sweep whose log folder is ``log_folder``."""
    config, metrics = result.config, result.metrics or {}
    trial = Trial.from_dict(config["trial"]).with_values(config.get("search", {}))
    nan = math.nan
    return {
        "env": trial.env,
        "algo": trial.algo,
        "seed": trial.seed,
        "hyperparams": " ".join(trial.hyperparams),
        "status": status_of(metrics, tune_status, result.error is not None),
        **{key: metrics.get(key, nan) for key in ("relative_gap", "gap", "gap_se")},
        "method": metrics.get("method", ""),
        "reports": metrics.get("training_iteration", 0),
        "n_timesteps": metrics.get("n_timesteps", ""),
        "train_seconds": metrics.get("train_seconds", nan),
        "node_id": metrics.get("node_id", ""),
        "host": metrics.get("hostname", ""),
        "trial_id": metrics.get("trial_id", Path(result.path).name),
        "run_dir": metrics.get("run_dir", ""),
        "error": "" if result.error is None else error_line(result.error),
        "command": trial.command(log_folder),
        "evaluation": metrics.get("evaluation"),
        "history": history_of(result),
        "trial": trial,
    }


def trial_rows(grid: Any, sweep: Sweep) -> list[dict[str, Any]]:
    """The rows of a finished (or interrupted) sweep's ``ray.tune.ResultGrid``: a grid's in the order of its
    trials, a search's from the smallest relative gap (failed trials last)."""
    from ray.tune import ExperimentAnalysis

    statuses = {trial.path: trial.status for trial in ExperimentAnalysis(grid.experiment_path).trials}
    log_folder = str(Path(sweep.log_folder).resolve())
    # a search interrupted before its searcher filled a pending trial's config leaves that trial empty: it never ran
    started = [result for result in grid if result.config is not None]
    rows = [trial_row(result, statuses.get(result.path), log_folder) for result in started]
    if sweep.search:
        return sorted(rows, key=lambda row: (math.isnan(row["relative_gap"]), row["relative_gap"]))
    order = {trial: index for index, trial in enumerate(sweep.trials)}
    return sorted(rows, key=lambda row: order[row["trial"]])


def number(value: Any, spec: str) -> str:
    """``value`` formatted by ``spec``, or empty where there is none (NaN, missing)."""
    return "" if value in ("", None) or math.isnan(value) else format(value, spec)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (the run folders relative to the current directory where they are below it)."""
    lines = [
        "| env id | algo | seed | hyperparameters | status | relative Nash gap | Nash gap +- se | reports "
        "| train time (s) | node | run folder |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        status = f"failed: {row['error']}" if row["status"] == "failed" else row["status"]
        gap = number(row["gap"], ".3g") and f"{number(row['gap'], '.3g')} +- {number(row['gap_se'], '.1g')}"
        run_dir = row["run_dir"] and Path(row["run_dir"])
        shown = run_dir.relative_to(Path.cwd()) if run_dir and run_dir.is_relative_to(Path.cwd()) else run_dir
        lines.append(
            f"| {row['env']} | {row['algo']} | {row['seed']} | {row['hyperparams']} | {status} | "
            f"{number(row['relative_gap'], '.4g')} | {gap} | {row['reports']} | {number(row['train_seconds'], '.0f')} "
            f"| {row['node_id'][:8]} {row['host']} | {shown} |"
        )
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """The rows' :data:`COLUMNS` as a CSV file."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> None:
    """Every trial's reported relative Nash gap against the transitions collected (log scale), its final
    evaluation a dot, a stopped or interrupted trial's last check a cross."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for index, row in enumerate(rows):
        if not row["history"]:
            continue
        steps, gaps, finals = zip(*row["history"])
        label = f"{row['env'].removeprefix('MFG')} {row['algo']} {row['seed']} {row['hyperparams']}".strip()
        (line,) = axes.plot(steps, gaps, linewidth=1.0, label=label if index < 12 else None)
        marker = "o" if finals[-1] else "x"
        axes.plot(steps[-1], gaps[-1], marker, color=line.get_color())
    axes.set_yscale("log")
    axes.set_xlabel("transitions collected")
    axes.set_ylabel("relative Nash gap")
    axes.set_title(f"{len(rows)} trials (dot: final evaluation; cross: last check of a trial that did not finish)")
    if any(row["history"] for row in rows):
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_results(rows: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """Write the table (Markdown), the CSV file and the figure into ``folder``; return their paths by suffix."""
    paths = {suffix: folder / f"results.{suffix}" for suffix in ("md", "csv", "png")}
    paths["md"].write_text(markdown_table(rows) + "\n")
    write_csv(rows, paths["csv"])
    plot_sweep(rows, paths["png"])
    return paths
