"""Train a mean field equilibrium with DDPG, TD3 or SAC from the command line, on every ``mfg_envs`` id.

``python -m sb3_meanfield.train --algo td3 --env MFGCrowd-v0 [-n STEPS] [--seed S] [--hyperparams k:v ...] [-f LOGDIR]``

One population (``mfg_envs.ENV_IDS``), two self-consistent training modes (``--mode``):

- ``self-play`` (default): the ``n_learners`` first particles of an ``n_particles`` population are the
  environments of one SB3 ``VecEnv`` and share one policy; the other particles play the policy being trained
  deterministically (:class:`~sb3_meanfield.common.vec_env.PopulationVecEnv`).
- ``representative``: one learning particle per env (``gym.make``), the population follows a frozen
  copy of the learner, refreshed every ``sync_freq`` steps as a fixed-point iteration or as
  fictitious play (:class:`~sb3_meanfield.common.callbacks.PopulationSyncCallback`).

Several populations (``mfg_envs.MULTI_ENV_IDS``, e.g. ``--env MFGLinearQuadraticMulti-v0``): one model per
population (same algorithm, policy class and hyperparameters, separate networks; model ``k`` seeded ``seed + k``),
each in self-play on the first ``n_learners`` particles (default 64) of its population of one shared game
(:class:`~sb3_meanfield.training.MultiPopulationTrainer`). ``--schedule alternating`` (default) gives the models
turns of ``--switch-freq`` env steps (default: one episode), ``--schedule simultaneous`` moves every model at every
env step; ``-n`` counts the transitions of EACH population's model. ``--mode representative``, ``--sync-freq``,
``--sync-mode``, ``--tensorboard``, ``--checkpoint-freq`` and ``--resume`` apply to one population, ``--schedule``
and ``--switch-freq`` to several; any other combination is a usage error. ``python -m sb3_meanfield.train_multi``
is this command for the multi-population ids under its former flag ``--mode`` (this command's ``--schedule``).

Hyperparameters come from an rl_zoo3 config (default ``sb3_meanfield.hyperparams.<algo>``): its
``hyperparams[env_id]`` section (or ``default``, for several populations without its callbacks), then, in
self-play, its ``self_play[env_id]`` overrides, then ``--hyperparams`` (:mod:`sb3_meanfield.config`). Each run
writes ``<LOGDIR>/<env>_<algo>_<seed>_<time>/`` (:mod:`sb3_meanfield.run`) with ``config.yaml`` (resolved),
``metrics.csv`` and ``metrics.json`` (final evaluation, training time, the rows of ``metrics.csv``), and

- one population: ``model.zip`` and ``figures/`` (learning curves, population flow, learned vs exact policy and
  moments, a crowd animation); it ends by printing the Nash gap by the model's method
  (:func:`~sb3_meanfield.evaluation.gap_method`: ``exact Nash gap ...`` where the model has an exact best response,
  ``dp Nash gap ...`` on the walled crowd) or, with ``--no-eval-gap``, the mean return;
- several populations: ``model_<population>.zip`` and ``progress_<population>.csv`` (each model's SB3 training
  log) per population (``metrics.csv`` holds the callbacks' per-population Nash gaps); it ends by printing every
  population's Nash gap (exact, or dp on the two crowds) and their maximum, or every population's mean return.

The config's Nash-gap and monitor callbacks check every ``eval_freq`` / ``check_freq`` env steps (1000 in the
shipped configs), capped at the run's env steps / :data:`~sb3_meanfield.config.MIN_CHECKS` but not below one episode,
so that a short run still gets its Nash-gap curve (callbacks given with ``--hyperparams callback:...`` are taken as
they are). The crowds' dp gap checks every 2500 env steps, uncapped: a check costs grid solves (seconds) whatever
the run's length.

One population: every ``--checkpoint-freq`` env steps (default 1000; 0: never) and at the end of training the run
writes ``checkpoint/`` (:mod:`sb3_meanfield.common.checkpoint`, tens of MB: the replay buffer); ``--resume RUN_DIR``
continues an interrupted run from it with the settings of ``RUN_DIR/config.yaml`` and ends exactly where the
uninterrupted run ends; ``--resume RUN_DIR -n N`` trains it (finished or not) to a new total of ``N`` transitions.
Ctrl-C prints one line with the ``--resume`` command (when a checkpoint exists) and exits with code 130.
Usage errors (and a missing or corrupt checkpoint) print one line and exit with code 2.

The command parses its arguments (and answers ``--help`` and argument errors) before it imports torch and
Stable-Baselines3 (:mod:`sb3_meanfield.flags`).
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
from pathlib import Path
from typing import Any

import mfg_envs
from sb3_meanfield.flags import (
    ALGORITHMS,
    DEFAULT_CHECKPOINT_FREQ,
    MODES,
    RESUME_FLAGS,
    SCHEDULES,
    SYNC_MODES,
    UsageError,
    check_env_id,
    check_flags,
    device_name,
    is_multi,
    key_value,
    positive_int,
    replicate_count,
)

PROG = "python -m sb3_meanfield.train"
#: Exit code after Ctrl-C (128 + SIGINT, as the shell reports it).
INTERRUPTED_EXIT_CODE = 130


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def train(args: argparse.Namespace) -> Path:
    """Run one training from parsed arguments; return the run folder. Bad settings raise :class:`UsageError`, Ctrl-C
    once the run folder exists :class:`~sb3_meanfield.run.TrainingInterrupted`."""
    import torch as th  # here, not at the top: parsing (--help, usage errors) needs neither torch nor SB3

    from sb3_meanfield.config import resolve_config
    from sb3_meanfield.run import resumed_run, train_population, train_populations

    if args.resume is not None:
        config, args = resumed_run(Path(args.resume), args, vars(build_parser().parse_args([])))
    else:
        config = resolve_config(args)
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    return (train_populations if is_multi(config["env"]) else train_population)(args, config)


def build_parser(prog: str = PROG, **parser_kwargs: Any) -> OneLineErrorParser:
    """The command line (``parser_kwargs``: more ``ArgumentParser`` keywords)."""
    parser = OneLineErrorParser(
        prog=prog,
        description="Learn a mean field equilibrium with DDPG, TD3 or SAC (rl_zoo3-style flags): one model, or one "
        "model per population on the multi-population ids. Each run writes <LOGDIR>/<env>_<algo>_<seed>_<time>/ "
        "(model.zip, config.yaml, metrics.csv, metrics.json, figures/ and, one population, checkpoint/).",
        epilog="A multi-population id trains one model per population, each in self-play: --schedule and "
        "--switch-freq apply to it; --mode representative, --sync-freq, --sync-mode, --tensorboard, --checkpoint-freq "
        "and --resume apply to single-population ids only. --n-learners is a self-play flag, --sync-freq and "
        "--sync-mode representative ones. Resuming: a single-population run keeps its last checkpoint in "
        "RUN_DIR/checkpoint/ (every --checkpoint-freq env steps and at the end; tens of MB); after Ctrl-C or a crash, "
        "'--resume RUN_DIR' continues it exactly, '--resume RUN_DIR -n N' trains it (finished or not) to N "
        "transitions in all.",
        **parser_kwargs,
    )
    parser.add_argument("--algo", default="td3", choices=sorted(ALGORITHMS), help="algorithm (default: td3)")
    env_help = f"mfg_envs id, one of {', '.join(mfg_envs.ALL_ENV_IDS)} (default: MFGLinearQuadratic-v0)"
    parser.add_argument("--env", default="MFGLinearQuadratic-v0", help=env_help)
    steps_help = "transitions to collect (self-play: n_learners per env step; several populations: per population)"
    parser.add_argument("-n", "--n-timesteps", type=positive_int, help=f"{steps_help}; default: the config's")
    parser.add_argument("--seed", type=int, default=0, help="seed (several populations: of the game and model 0)")
    parser.add_argument(
        "--hyperparams", type=key_value, nargs="+", action="extend", metavar="KEY:VALUE", help="override the config"
    )
    parser.add_argument("-conf", "--conf-file", help="rl_zoo3 config module, .py or .yml (default: ours)")
    parser.add_argument("-f", "--log-folder", default="runs", help="parent of the run folder (default: runs)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (default 1; <= 0: torch's default)")
    device_help = (
        "torch device of the networks, their training and the population's forward pass: cpu, cuda, cuda:<index>, "
        "mps, xpu, or auto (default: CUDA when available, else the CPU)"
    )
    parser.add_argument("--device", type=device_name, default="auto", help=device_help)
    one = parser.add_argument_group("one population (mfg_envs.ENV_IDS)")
    one.add_argument("--mode", choices=MODES, default="self-play", help="self-consistent training mode")
    several = parser.add_argument_group("several populations (mfg_envs.MULTI_ENV_IDS), each in self-play")
    several.add_argument("--schedule", choices=SCHEDULES, help="models take turns (alternating, default) or all move")
    several.add_argument("--switch-freq", type=positive_int, help="alternating: env steps per turn (default: episode)")
    parser.add_argument("--n-particles", type=positive_int, help="population size (default: from the config)")
    learners_help = "self-play: learning particles per population (<= n-particles; several populations: default 64)"
    parser.add_argument("--n-learners", type=positive_int, help=learners_help)
    one.add_argument("--sync-freq", type=positive_int, help="representative: env steps between population updates")
    one.add_argument("--sync-mode", choices=SYNC_MODES, help="representative: fixed_point or fictitious_play")
    parser.add_argument("--eval-particles", type=positive_int, default=10_000, help="particles of the final evaluation")
    replicates_help = (
        "replicates of the final Nash gap (default: 4 exact, 2 dp; 32 where the population is random, "
        "init_mean_std or common_noise > 0, whose gap varies with the draw)"
    )
    parser.add_argument("--eval-replicates", type=replicate_count, help=replicates_help)
    no_gap_help = "final evaluation: mean returns only, no Nash gap (the crowds' dp gap costs grid solves, minutes)"
    parser.add_argument("--no-eval-gap", action="store_true", help=no_gap_help)
    one.add_argument("--tensorboard", action="store_true", help="also log to <run>/tensorboard (needs tensorboard)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-figures", action="store_true", help="do not write the run's figures")
    checkpoint_help = (
        f"env steps between checkpoints (RUN_DIR/checkpoint/, for --resume), also written at the end (default "
        f"{DEFAULT_CHECKPOINT_FREQ}; 0: none)"
    )
    one.add_argument("--checkpoint-freq", type=int, help=checkpoint_help)
    resume_help = (
        "continue RUN_DIR from RUN_DIR/checkpoint/ with its config.yaml (allowed with it: -n, the new total, to train "
        "a run longer; --no-progress; --no-figures)"
    )
    one.add_argument("--resume", metavar="RUN_DIR", help=resume_help)
    return parser


def parse_args(argv: list[str] | None = None, parser: OneLineErrorParser | None = None) -> argparse.Namespace:
    """The arguments of ``argv`` (default: the command line), checked; ``parser`` defaults to :func:`build_parser`'s."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if args.resume is None:  # the checks that need no model, before torch is imported
        try:
            check_env_id(args.env)
            check_flags(args)
        except UsageError as error:
            parser.error(str(error))
    if args.checkpoint_freq is not None and args.checkpoint_freq < 0:
        parser.error(f"argument --checkpoint-freq: expected an integer >= 0, got {args.checkpoint_freq}")
    if args.resume is not None:
        defaults = vars(parser.parse_args([]))
        conflicting = [
            name for name, value in vars(args).items() if name not in RESUME_FLAGS and value != defaults[name]
        ]
        if conflicting:
            flags = ", ".join("--" + name.replace("_", "-") for name in conflicting)
            parser.error(f"--resume takes its settings from RUN_DIR/config.yaml; drop {flags}")
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        parser.error("--tensorboard needs the tensorboard package: pip install 'mfg-envs[tensorboard]'")
    if args.checkpoint_freq is None and not is_multi(args.env):
        args.checkpoint_freq = DEFAULT_CHECKPOINT_FREQ
    return args


def main(argv: list[str] | None = None, parser: OneLineErrorParser | None = None) -> None:
    """The command: parse ``argv`` with ``parser`` (default: :func:`build_parser`'s) and train."""
    parser = parser or build_parser()
    args = parse_args(argv, parser)
    try:
        train(args)
    except UsageError as error:
        parser.error(str(error))
    except KeyboardInterrupt as interrupt:
        parser.exit(INTERRUPTED_EXIT_CODE, f"{parser.prog}: {interrupted(interrupt)}\n")


def interrupted(interrupt: KeyboardInterrupt) -> str:
    """The line that reports Ctrl-C: where the run's checkpoint is and the command that resumes it."""
    run_dir, resumable = getattr(interrupt, "run_dir", None), getattr(interrupt, "resumable", False)
    if run_dir is None:
        return "interrupted before the run folder was written; nothing to resume"
    if resumable:
        command = f"{PROG} --resume {shlex.quote(str(run_dir))}"
        return f"interrupted; the last checkpoint is in {run_dir / 'checkpoint'}, continue with: {command}"
    return (
        f"interrupted; {run_dir} holds no checkpoint to resume from (one population writes one every "
        "--checkpoint-freq env steps; several populations none)"
    )


if __name__ == "__main__":
    main()
