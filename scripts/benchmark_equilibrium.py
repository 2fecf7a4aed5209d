"""How close do MF-DDPG, MF-TD3 and MF-SAC get to the exact equilibria? (the headline table)

    OMP_NUM_THREADS=1 python scripts/benchmark_equilibrium.py [--algos ddpg td3 sac] [--seeds 0 1 2]
        [--envs MFGLinearQuadratic-v0 ...] [--workers 2 | --address ADDR] [-f runs/benchmark] [--markdown table.md]
        [--hyperparams KEY:VALUE ...] [--reuse]

Every run is ``python -m sb3_meanfield.train --algo A --env E --seed S`` with the shipped
hyperparameters (``sb3_meanfield.hyperparams``; ``--hyperparams`` overrides them in every run, for
tuning), one trial of a sweep (:mod:`sb3_meanfield.sweep`, Ray Tune: one CPU and one torch thread per run,
``--workers`` runs at a time on this machine, or on the Ray cluster at ``--address``). The sweep's folder in the log
folder is named after its grid, so the same command resumes an interrupted benchmark. With ``--reuse`` a finished
run in the log folder whose saved configuration and package versions match is scored instead of trained again (runs
are deterministic for a configuration and seed).
Each run's FINAL policy is scored by the exact Nash gap (10,000 particles, 4 replicates with common
random numbers; no checkpoint selection). The script prints a Markdown table (relative gap, gap
and its standard error, the critic's overestimation of the initial value (``critic_overestimation``),
wall time, steps) and the per-env targets: relative gap <= 0.05 on
MFGLinearQuadratic-v0 with a median <= 0.02, <= 0.1 on the other exactly solvable models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from sb3_meanfield.flags import UsageError
from sb3_meanfield.sweep import Sweep, Trial, grid_trials, run_sweep, write_results
from sb3_meanfield.sweep.trial import configuration_digest

EXACT_ENVS = ("MFGLinearQuadratic-v0", "MFGCrowdLQ-v0", "MFGPrice-v0", "MFGResource-v0")
TARGETS = {"MFGLinearQuadratic-v0": 0.05}
DEFAULT_TARGET = 0.1
MEDIAN_TARGETS = {"MFGLinearQuadratic-v0": 0.02}


def sweep_name(script: str, trials: Sequence[Trial], reuse: bool) -> str:
    """The sweep's folder name: the script's and a digest of its settings and of what its trials resolve to now
    (the same command on the same code resumes the same sweep; another command, or the same one after a change of
    the code or the shipped hyperparameters, starts its own)."""
    digest = hashlib.sha1(repr((tuple(trials), reuse, configuration_digest(trials))).encode()).hexdigest()[:10]
    return f"{script}_{digest}"


def result_of(row: dict) -> dict:
    """A sweep row (:func:`sb3_meanfield.sweep.run_sweep`) as a result of the tables: the run folder, its steps,
    training time and final evaluation, or the error."""
    base = {"algo": row["algo"], "env": row["env"], "seed": row["seed"]}
    if row["status"] not in ("done", "reused"):
        return {**base, "error": row["error"] or row["status"]}
    result = {**base, "run_dir": row["run_dir"], "steps": row["n_timesteps"], "seconds": row["train_seconds"]}
    return {**result, **row["evaluation"]}


def run_trials(
    trials: Sequence[Trial], log_folder: Path, script: str, workers: int | None, address: str | None, reuse: bool
) -> list[dict]:
    """Train ``trials`` as one sweep into ``log_folder`` (``workers`` CPUs on this machine, default 2, or the Ray
    cluster at ``address``), write its results beside its state, and return one result (:func:`result_of`) per
    trial, in order."""
    if workers is not None and address is not None:
        raise SystemExit("error: --workers counts CPUs of this machine; a cluster (--address) has those of its nodes")
    try:
        sweep = Sweep(tuple(trials), log_folder=str(log_folder), name=sweep_name(script, trials, reuse), reuse=reuse)
        rows = run_sweep(sweep, address, None if address else workers or 2)
    except UsageError as error:
        raise SystemExit(f"error: {error}") from None
    write_results(rows, sweep.path)
    return [result_of(row) for row in rows]


def summarize(results: list[dict]) -> str:
    lines = [
        "| env id | algo | seed | relative Nash gap | Nash gap +- se | critic - realized return "
        "| train wall time (s) | env steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['env']} | {r['algo']} | {r['seed']} | failed: {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['env']} | {r['algo']} | {r['seed']} | {r['relative_gap']:.4f} | "
            f"{r['gap']:.3g} +- {r['standard_error']:.1g} | "
            f"{'-' if 'q_overestimation' not in r else format(r['q_overestimation'], '+.3g')} | {r['seconds']:.0f} | "
            f"{r['steps']} |"
        )
    lines += [
        "",
        "| env id | algo | median relative gap | worst relative gap | target (every run / median) | met |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[float]] = {}
    for r in results:
        if "error" not in r:
            groups.setdefault((r["env"], r["algo"]), []).append(r["relative_gap"])
    for (env_id, algo), gaps in groups.items():
        target, median_target = TARGETS.get(env_id, DEFAULT_TARGET), MEDIAN_TARGETS.get(env_id, float("inf"))
        median, worst = statistics.median(gaps), max(gaps)
        met = worst <= target and median <= median_target
        shown = f"{target} / {median_target}" if median_target < float("inf") else f"{target} / -"
        lines.append(f"| {env_id} | {algo} | {median:.4f} | {worst:.4f} | {shown} | {'yes' if met else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["ddpg", "td3", "sac"])
    parser.add_argument("--envs", nargs="+", default=list(EXACT_ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, help="runs at a time on this machine, one CPU each (default 2)")
    parser.add_argument("--address", help="run on this Ray cluster (its log folder shared by the nodes)")
    parser.add_argument("-f", "--log-folder", default="runs/benchmark")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--hyperparams", nargs="+", default=[], metavar="KEY:VALUE", help="overrides for every run")
    parser.add_argument("--reuse", action="store_true", help="score finished runs of the same configuration again")
    args = parser.parse_args()
    extra = ("--hyperparams", *args.hyperparams) if args.hyperparams else ()
    trials = grid_trials(args.envs, args.algos, args.seeds, flags=extra)
    log_folder = Path(args.log_folder)
    results = run_trials(trials, log_folder, "benchmark_equilibrium", args.workers, args.address, args.reuse)
    (log_folder / "results.json").write_text(json.dumps(results, indent=1))
    table = summarize(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
