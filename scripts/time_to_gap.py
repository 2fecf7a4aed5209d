"""Time to equilibrium: the default ``make train`` run of this code against that of an earlier commit, side by side.

    OMP_NUM_THREADS=1 python scripts/time_to_gap.py [--baseline 16729a0] [--baseline-steps default]
        [--steps default 400000 ...] [--repeats 2] [--seed 0] [--target 0.0065]

Each arm is the command ``make train`` runs, ``python -m sb3_meanfield.train --env MFGLinearQuadratic-v0 --algo td3``
(``--seed``, no progress bar, a temporary log folder): the baseline arm on the code of ``--baseline`` (``git
archive`` of that commit, put first on ``PYTHONPATH``; the same installed dependencies) with its default budget (or
``--baseline-steps``), and one arm per ``--steps`` budget on this code (``-n``; ``default``: the shipped budget).
The runs go one at a time, in the order baseline, this code..., reversed in the next repeat, so that a slow spell
of the shared machine falls on every arm. Each run prints its final policy's exact relative Nash gap (10,000
particles); the table gives per arm the median and spread of the command's wall time and of the training time the
run printed, the final gaps, the ratio of the arm's median wall time to the baseline's, and how many of its runs
reached the ``--target`` gap (default 0.0065: the baseline's own final gap for seed 0 in BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["-m", "sb3_meanfield.train", "--env", "MFGLinearQuadratic-v0", "--algo", "td3"]
GAP = re.compile(r"relative gap ([0-9.eE+-]+)")
TRAIN_SECONDS = re.compile(r" in (\d+) s$", re.MULTILINE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="16729a0", help="the earlier commit (default 16729a0, 2026-11-26)")
    parser.add_argument("--baseline-steps", default="default", help="the baseline arm's budget (default: its own)")
    parser.add_argument("--steps", nargs="+", default=["default"], help="this code's budgets")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.0065, help="the relative gap to reach (default 0.0065)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    for steps in [args.baseline_steps, *args.steps]:
        if steps != "default" and (not steps.isdigit() or int(steps) < 1):
            parser.error(f"--steps takes positive integers or 'default', got {steps!r}")
    return args


def baseline_tree(commit: str, folder: Path) -> Path:
    """The package of ``commit`` unpacked into ``folder`` (``git archive``)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def train_once(code: Path, steps: str, seed: int, log_folder: Path) -> dict[str, float]:
    """One ``train`` run on the package at ``code``: wall time of the command, its printed training time and gap."""
    argv = [sys.executable, *COMMAND, "--seed", str(seed), "--no-progress", "-f", str(log_folder)]
    if steps != "default":
        argv += ["-n", steps]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {code}:\n{done.stderr[-2000:]}")
    gap, seconds = GAP.search(done.stdout), TRAIN_SECONDS.search(done.stdout)
    if gap is None or seconds is None:
        raise RuntimeError(f"no gap or training time in the output of {' '.join(argv)}:\n{done.stdout[-2000:]}")
    return {"wall": wall, "train": float(seconds.group(1)), "gap": float(gap.group(1))}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def table(results: dict[str, list[dict[str, float]]], baseline: str, target: float) -> list[str]:
    base_wall = statistics.median(run["wall"] for run in results[baseline])
    lines = [
        f"| arm | runs | command wall time, s: median (spread) | training time, s | relative gaps | "
        f"wall / baseline's | runs at or below {target} |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, runs in results.items():
        walls = [run["wall"] for run in runs]
        gaps = ", ".join(f"{run['gap']:.4f}" for run in runs)
        reached = sum(run["gap"] <= target for run in runs)
        ratio = statistics.median(walls) / base_wall
        lines.append(
            f"| {arm} | {len(runs)} | {spread(walls)} | {spread([run['train'] for run in runs])} | {gaps} | "
            f"{ratio:.2f} | {reached} of {len(runs)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        old_code = baseline_tree(args.baseline, Path(scratch) / "baseline")
        baseline = f"{args.baseline}, {args.baseline_steps} transitions"
        arms = [(baseline, old_code, args.baseline_steps)]
        arms += [(f"this code, {steps} transitions", ROOT, steps) for steps in args.steps]
        results: dict[str, list[dict[str, float]]] = {arm: [] for arm, _, _ in arms}
        for repeat in range(args.repeats):
            for arm, code, steps in arms if repeat % 2 == 0 else arms[::-1]:
                run = train_once(code, steps, args.seed, Path(scratch) / "runs")
                results[arm].append(run)
                print(f"repeat {repeat}, {arm}: {run['wall']:.1f} s, relative gap {run['gap']:.4f}", flush=True)
    print("\n".join(table(results, baseline, args.target)))


if __name__ == "__main__":
    main()
