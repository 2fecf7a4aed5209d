"""Self-play against the representative agent on every exactly solvable model (which training mode is the default?)

    OMP_NUM_THREADS=1 python scripts/compare_modes.py [--envs MFGLinearQuadratic-v0 ...] [--seeds 0]
        [--workers 2 | --address ADDR] [-f runs/modes] [--markdown table.md]

Three modes, each with about 25,000 gradient steps and the same networks, learning-rate decay (1e-3 to 1e-5),
exploration (TD3: Gaussian noise decaying from 0.2 to 0.02; SAC: its entropy bonus) and final evaluation
(exact Nash gap of the final policy, 10,000 particles, 4 replicates with common random numbers):

- ``self-play``: the shipped default, 64 learning particles of 1000, 12,500 env steps, 2 gradient steps each;
- ``fixed point``: one representative learner among 1000 particles, 25,000 env steps, 1 gradient step each,
  the population set to a frozen copy of the learner every 500 steps;
- ``fictitious play``: the same, the population the mixture of all frozen copies.

Each env uses TD3, except SAC on MFGCrowdLQ-v0 (chosen when TD3 still failed there, before the action barrier).
The runs are the trials of one sweep (:mod:`sb3_meanfield.sweep`, as ``scripts/benchmark_equilibrium.py`` runs
them: ``--workers`` at a time on this machine, or on the Ray cluster at ``--address``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmark_equilibrium import EXACT_ENVS, run_trials

from sb3_meanfield.sweep import Trial

ALGO = {"MFGCrowdLQ-v0": "sac"}
DEFAULT_ALGO = "td3"
REPRESENTATIVE = (
    "--mode",
    "representative",
    "-n",
    "25000",
    "--sync-freq",
    "500",
    "--hyperparams",
    "learning_rate:lin_1e-3_1e-5",
    "learning_starts:1000",
    "gradient_steps:1",
)
NOISE = ("noise_type:decaying-normal", "noise_std:0.2", "noise_final_std:0.02")


def gradient_steps(run_dir: str) -> int:
    """The last ``train/n_updates`` the run logged."""
    progress = json.loads((Path(run_dir) / "metrics.json").read_text())["progress"]
    return int(max(row.get("train/n_updates") or 0 for row in progress))


def mode_args(mode: str, algo: str) -> tuple[str, ...]:
    """The train flags of one mode (the hyperparameter overrides make it comparable to self-play)."""
    if mode == "self-play":
        return ()
    noise = NOISE if algo != "sac" else ()
    sync = ("--sync-mode", "fictitious_play") if mode == "fictitious play" else ()
    return (*REPRESENTATIVE, *noise, *sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(EXACT_ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--workers", type=int, help="runs at a time on this machine, one CPU each (default 2)")
    parser.add_argument("--address", help="run on this Ray cluster (its log folder shared by the nodes)")
    parser.add_argument("-f", "--log-folder", default="runs/modes")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    modes = ("self-play", "fixed point", "fictitious play")
    jobs = [
        (ALGO.get(env_id, DEFAULT_ALGO), env_id, seed, mode)
        for env_id in args.envs
        for seed in args.seeds
        for mode in modes
    ]
    trials = [
        Trial(
            env_id, algo, seed, flags=mode_args(mode, algo), folder=f"{env_id}_{algo}_{seed}_{mode.replace(' ', '_')}"
        )
        for algo, env_id, seed, mode in jobs
    ]
    log_folder = Path(args.log_folder)
    results = run_trials(trials, log_folder, "compare_modes", args.workers, args.address, reuse=False)
    results = [{"mode": mode, **result} for (_, _, _, mode), result in zip(jobs, results)]
    (log_folder / "results.json").write_text(json.dumps(results, indent=1))
    lines = [
        "| env id | algo | seed | mode | relative Nash gap | Nash gap +- se | transitions | gradient steps "
        "| wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        head = f"| {r['env']} | {r['algo']} | {r['seed']} | {r['mode']} |"
        if "error" in r:
            lines.append(f"{head} failed: {r['error']} | | | | |")
            continue
        lines.append(
            f"{head} {r['relative_gap']:.4f} | {r['gap']:.3g} +- {r['standard_error']:.1g} | {r['steps']} | "
            f"{gradient_steps(r['run_dir'])} | {r['seconds']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
