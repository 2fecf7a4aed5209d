"""``python -m sb3_meanfield.sweep``: a grid or an Optuna search of training runs on Ray Tune, scored by the Nash gap
(see :mod:`sb3_meanfield.sweep`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from sb3_meanfield.flags import ALGORITHMS, UsageError, check_env_id, positive_int
from sb3_meanfield.sweep.runner import SCHEDULERS, Sweep
from sb3_meanfield.sweep.space import DISTRIBUTIONS, TRAIN_COMMAND, distribution_item, grid_trials, grid_values
from sb3_meanfield.train import INTERRUPTED_EXIT_CODE, OneLineErrorParser

PROG = "python -m sb3_meanfield.sweep"
#: Trials of a search unless ``--num-samples`` says.
DEFAULT_SAMPLES = 10
#: Exit code when a trial failed (the table says which and why).
FAILED_EXIT_CODE = 1


def env_id(text: str) -> str:
    """argparse type: an ``mfg_envs`` id."""
    try:
        check_env_id(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> OneLineErrorParser:
    """The command line; the flags it does not know are the train command's, given to every trial."""
    parser = OneLineErrorParser(
        prog=PROG,
        allow_abbrev=False,  # a prefix of a train flag must not be taken for one of the sweep's
        description="Train a grid of runs (env ids x algorithms x hyperparameter values x seeds) or an Optuna (TPE) "
        "search over hyperparameters on Ray Tune, one CPU per run, each scored by its final relative Nash gap; "
        "writes a table (Markdown, CSV) and a figure to LOGDIR/NAME/.",
        epilog=f"Any other flag is a flag of '{TRAIN_COMMAND}' given to every trial (e.g. -n 20000 --n-particles 500 "
        "--hyperparams learning_starts:1000); the sweep sets --env, --algo, --seed and -f of each. Running the same "
        "command again resumes an interrupted sweep. Search distributions: " + "; ".join(DISTRIBUTIONS.values()),
    )
    parser.add_argument("--env", nargs="+", type=env_id, default=["MFGLinearQuadratic-v0"], metavar="ID", help="ids")
    parser.add_argument("--algo", nargs="+", choices=sorted(ALGORITHMS), default=["td3"], help="algorithms")
    parser.add_argument("--seed", nargs="+", type=int, default=[0], help="seeds (a search: one, also its sampler's)")
    grid_help = "a hyperparameter's values in the grid, e.g. 'tau:[0.005, 0.01]' (repeatable)"
    parser.add_argument("--grid", nargs="+", action="extend", type=grid_values, metavar="KEY:[V1, ...]", help=grid_help)
    search_help = "search this hyperparameter, e.g. 'learning_rate:loguniform(1e-4, 3e-3)' (one id, algo and seed)"
    parser.add_argument(
        "--search", nargs="+", action="extend", type=distribution_item, metavar="KEY:DIST", help=search_help
    )
    parser.add_argument("--num-samples", type=positive_int, help=f"trials of a search (default {DEFAULT_SAMPLES})")
    scheduler_help = "fifo: every trial to its end (default of a grid); asha: early stopping (default of a search)"
    parser.add_argument("--scheduler", choices=SCHEDULERS, help=scheduler_help)
    parser.add_argument("--grace-period", type=positive_int, help="asha: reports before a trial can stop (default 3)")
    parser.add_argument(
        "-f", "--log-folder", default="runs/sweep", help="run folders and results (default: runs/sweep)"
    )
    parser.add_argument("--name", default="sweep", help="the sweep's folder in LOGDIR (default: sweep)")
    reuse_help = "score a finished run of a trial's configuration in LOGDIR instead of training it again"
    parser.add_argument("--reuse", action="store_true", help=reuse_help)
    where = parser.add_argument_group("where the trials run (default: Ray started on this machine)")
    where.add_argument("--address", help="a Ray cluster's address (auto: the cluster this machine is a node of)")
    where.add_argument("--num-cpus", type=positive_int, help="Ray on this machine: CPUs to use (default: all)")
    where.add_argument("--max-concurrent", type=positive_int, help="trials at a time (default: one per CPU)")
    return parser


def make_sweep(args: argparse.Namespace, train_flags: list[str]) -> Sweep:
    """The sweep of parsed arguments; :class:`~sb3_meanfield.flags.UsageError` for settings that do not go
    together (each naming the flag)."""
    for flag, items in (("--grid", args.grid), ("--search", args.search)):
        keys = [key for key, _ in items or []]
        if len(set(keys)) != len(keys):
            raise UsageError(f"{flag}: each hyperparameter once, got {keys}")
    if args.num_samples is not None and not args.search:
        raise UsageError("--num-samples: the number of trials of a --search (a grid runs each of its trials once)")
    scheduler = args.scheduler or ("asha" if args.search else "fifo")
    if args.grace_period is not None and scheduler != "asha":
        raise UsageError(f"--grace-period applies to --scheduler asha, not {scheduler}")
    trials = grid_trials(args.env, args.algo, args.seed, dict(args.grid or []), train_flags)
    return Sweep(
        tuple(trials),
        search=dict(args.search or []),
        num_samples=(args.num_samples or DEFAULT_SAMPLES) if args.search else 1,
        scheduler=scheduler,
        grace_period=args.grace_period or 3,
        log_folder=args.log_folder,
        name=args.name,
        reuse=args.reuse,
    )


def seeds_command(row: dict[str, Any], sweep: Sweep, train_flags: list[str]) -> str:
    """The sweep command that trains a search's best configuration on three seeds (in the search's log folder)."""
    argv = ["--env", row["env"], "--algo", row["algo"], "--seed", "0", "1", "2", "-f", sweep.log_folder]
    argv += ["--name", f"{sweep.name}_best", *train_flags]
    return f"{PROG} {shlex.join([*argv, '--hyperparams', *row['trial'].hyperparams])}"


def summary(rows: list[dict[str, Any]], sweep: Sweep, paths: dict[str, Path], train_flags: list[str]) -> str:
    """The lines the command ends with: the table, where the results are and, for a search, its best trial."""
    from sb3_meanfield.sweep.results import markdown_table

    lines = [markdown_table(rows), "", f"results: {paths['md']}, {paths['csv']}, {paths['png']}"]
    if sweep.search and rows and rows[0]["status"] == "done":
        best = rows[0]
        lines.append(f"best trial, relative Nash gap {best['relative_gap']:.4g}: {best['command']}")
        lines.append(f"its configuration on three seeds: {seeds_command(best, sweep, train_flags)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """The command: parse ``argv`` (default: the command line), run the sweep, write and print its results."""
    from sb3_meanfield.sweep.results import write_results
    from sb3_meanfield.sweep.runner import run_sweep

    parser = build_parser()
    args, train_flags = parser.parse_known_args(argv)
    try:
        sweep = make_sweep(args, train_flags)
        rows = run_sweep(sweep, args.address, args.num_cpus, args.max_concurrent)
    except UsageError as error:
        parser.error(str(error))
    print(summary(rows, sweep, write_results(rows, sweep.path), train_flags))
    statuses = [row["status"] for row in rows]
    if "interrupted" in statuses:
        parser.exit(INTERRUPTED_EXIT_CODE, f"{PROG}: interrupted; the same command resumes the sweep\n")
    if "failed" in statuses:
        parser.exit(
            FAILED_EXIT_CODE, f"{PROG}: {statuses.count('failed')} of {len(rows)} trials failed (see the table)\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
