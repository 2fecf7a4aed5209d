"""How close do MF-DDPG, MF-TD3 and MF-SAC get to the exact equilibria? (the headline table)

    OMP_NUM_THREADS=1 python scripts/benchmark_equilibrium.py [--algos ddpg td3 sac] [--seeds 0 1 2]
        [--envs MFGLinearQuadratic-v0 ...] [--workers 2] [-f runs/benchmark] [--markdown table.md]
        [--hyperparams KEY:VALUE ...] [--reuse]

Every run is ``python -m sb3_meanfield.train --algo A --env E --seed S`` with the shipped
hyperparameters (``sb3_meanfield.hyperparams``; ``--hyperparams`` overrides them in every run, for
tuning), one torch thread, ``--workers`` runs at a time. With ``--reuse`` a finished run in the log folder whose
saved configuration and package versions match is scored instead of trained again (runs are deterministic for
a configuration and seed).
Each run's FINAL policy is scored by the exact Nash gap (10,000 particles, 4 replicates with common
random numbers; no checkpoint selection). The script prints a Markdown table (relative gap, gap
and its standard error, the critic's overestimation of the initial value (``critic_overestimation``),
wall time, steps) and the per-env targets: relative gap <= 0.05 on
MFGLinearQuadratic-v0 with a median <= 0.02, <= 0.1 on the other exactly solvable models.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

EXACT_ENVS = ("MFGLinearQuadratic-v0", "MFGCrowdLQ-v0", "MFGPrice-v0", "MFGResource-v0")
TARGETS = {"MFGLinearQuadratic-v0": 0.05}
DEFAULT_TARGET = 0.1
MEDIAN_TARGETS = {"MFGLinearQuadratic-v0": 0.02}


def finished_run(folder: Path, train_args: list[str], launcher: str = "sb3_meanfield.train") -> Path | None:
    """The newest finished run in ``folder`` whose saved configuration and package versions are what ``train_args``
    (flags of ``python -m <launcher>``, ``sb3_meanfield.train`` or ``.train_multi``) resolve to now, else ``None``:
    a run is deterministic for its configuration and seed, so such a run is the one training again would give."""
    from sb3_meanfield.config import resolve_config
    from sb3_meanfield.run import package_versions, plain

    expected = plain(resolve_config(importlib.import_module(launcher).build_parser().parse_args(train_args)))
    expected["versions"] = plain(package_versions())
    # saved as built, not as configured: the learners of self-play, the default length of an alternating turn
    expected.pop("n_envs", None)
    if expected.get("switch_freq", 0) is None:
        expected.pop("switch_freq")
    runs = sorted(folder.iterdir()) if folder.is_dir() else []
    for run_dir in reversed(runs):
        if (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file():
            saved = yaml.safe_load((run_dir / "config.yaml").read_text())
            if all(saved.get(key) == value for key, value in expected.items()):
                return run_dir
    return None


def error_line(completed: subprocess.CompletedProcess) -> str:
    """The last line a failed subprocess wrote to stderr: the error a table row shows."""
    return (completed.stderr.strip().splitlines() or ["no output"])[-1]


def launch(
    launcher: str, algo: str, env_id: str, seed: int, folder: Path, extra_args: tuple[str, ...], reuse: bool
) -> Path | str:
    """Run ``python -m <launcher>`` for one (algorithm, env, seed) into ``folder`` (``extra_args``: more flags) or,
    with ``reuse``, take the :func:`finished_run` of the same configuration; return the run folder, or the error's
    last line."""
    train_args = ["--algo", algo, "--env", env_id, "--seed", str(seed), "-f", str(folder), "--no-progress", *extra_args]
    run_dir = finished_run(folder, train_args, launcher) if reuse else None
    if run_dir is not None:
        return run_dir
    completed = subprocess.run(
        [sys.executable, "-m", launcher, *train_args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return error_line(completed)
    # the folder this run printed, not the newest in ``folder``: another process may be writing one there
    printed = next(line for line in completed.stdout.splitlines() if line.startswith("run folder: "))
    return Path(printed.removeprefix("run folder: ").split(" (figures in ")[0])


def run_one(
    algo: str,
    env_id: str,
    seed: int,
    log_folder: Path,
    extra_args: tuple[str, ...] = (),
    label: str = "",
    reuse: bool = False,
) -> dict:
    """Train one agent (:func:`launch` of ``sb3_meanfield.train``); return its evaluation from the run folder."""
    folder = log_folder / f"{env_id}_{algo}_{seed}{label}"
    run_dir = launch("sb3_meanfield.train", algo, env_id, seed, folder, extra_args, reuse)
    if isinstance(run_dir, str):
        return {"algo": algo, "env": env_id, "seed": seed, "error": run_dir}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    steps = next(int(line.split(":")[1]) for line in config.splitlines() if line.startswith("n_timesteps:"))
    return {
        "algo": algo,
        "env": env_id,
        "seed": seed,
        "run_dir": str(run_dir),
        "steps": steps,
        "seconds": metrics["train_seconds"],
        **metrics["evaluation"],
    }


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
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("-f", "--log-folder", default="runs/benchmark")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--hyperparams", nargs="+", default=[], metavar="KEY:VALUE", help="overrides for every run")
    parser.add_argument("--reuse", action="store_true", help="score finished runs of the same configuration again")
    args = parser.parse_args()
    jobs = [(algo, env_id, seed) for env_id in args.envs for algo in args.algos for seed in args.seeds]
    log_folder = Path(args.log_folder)
    extra = ("--hyperparams", *args.hyperparams) if args.hyperparams else ()
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda job: run_one(*job, log_folder, extra, reuse=args.reuse), jobs))
    (log_folder / "results.json").write_text(json.dumps(results, indent=1))
    table = summarize(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
