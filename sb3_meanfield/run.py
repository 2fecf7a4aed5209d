"""A ``python -m sb3_meanfield.train`` run: its training and its folder ``<LOGDIR>/<env>_<algo>_<seed>_<time>/``.

- :func:`train_population` (one model) and :func:`train_populations` (one model per population) train a resolved
  configuration (:mod:`sb3_meanfield.config`) and write the run folder;
- :func:`make_run_dir` creates it; :class:`StepCSVOutputFormat` writes its ``metrics.csv``;
  :func:`write_config` its resolved ``config.yaml`` (with :func:`package_versions`), :func:`write_summary` its
  ``metrics.json`` (final evaluation, training time, the rows of ``metrics.csv``);
- :func:`evaluate` / :func:`format_evaluation`: the final evaluation (one model per population) and the lines that
  report it;
- :func:`resumed_run`: the configuration of a run folder to resume (:func:`extend_config` records a new total);
  :class:`TrainingInterrupted`: Ctrl-C once the run folder exists; :func:`log_population_histogram`: the
  TensorBoard histograms of the final policy's population.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3 import __version__ as sb3_version
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import CSVOutputFormat, KVWriter, Logger, TensorBoardOutputFormat

import mfg_envs
from mfg_envs.core import Population
from mfg_envs.game import Game, population_rngs, rollout
from sb3_meanfield.common.checkpoint import (
    CHECKPOINT_DIR,
    STATE_FILE,
    CheckpointError,
    TrainingCheckpoint,
    load_checkpoint,
)
from sb3_meanfield.config import DEFAULT_CHECKPOINT_FREQ, RESUME_FLAGS, UsageError, build, build_trainer
from sb3_meanfield.evaluation import (
    ModelPolicy,
    critic_discount,
    critic_value,
    gap_method,
    monte_carlo_mean,
    nash_gap,
    overestimation,
)
from sb3_meanfield.plotting import load_metrics, write_run_figures


# --------------------------------------------------------------------------- the run folder
def make_run_dir(log_folder: str, config: dict[str, Any]) -> Path:
    """``<log_folder>/<env>_<algo>_<seed>_<timestamp>`` (a suffix keeps simultaneous runs apart)."""
    root = Path(log_folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(13, "permission denied")
        stem = f"{config['env']}_{config['algo']}_{config['seed']}_{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in range(1000):
            run_dir = root / (stem if suffix == 0 else f"{stem}-{suffix}")
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
        raise FileExistsError(17, "too many runs with the same name")
    except OSError as error:
        raise UsageError(f"cannot write to log folder {log_folder!r}: {error.strerror or error}") from None


class StepCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV writer that also fills ``time/total_timesteps`` with the dump's step (callbacks dump without it).

    ``keep_until``: a resumed run keeps the file's rows up to that step (the interrupted run may have logged past
    its checkpoint) and appends after them.
    """

    def __init__(self, filename: str, keep_until: int | None = None) -> None:
        kept = [] if keep_until is None else rows_until(Path(filename), keep_until)
        super().__init__(filename)
        if kept:
            self.keys = kept[0].rstrip("\n").split(self.separator)
            self.file.writelines(kept)
            self.file.flush()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        super().write({**key_values, "time/total_timesteps": step}, key_excluded, step)


def rows_until(path: Path, step: int) -> list[str]:
    """Header and rows of a metrics CSV whose ``time/total_timesteps`` is at most ``step``."""
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    if not lines:
        return []
    column = lines[0].rstrip("\n").split(",").index("time/total_timesteps")
    return lines[:1] + [line for line in lines[1:] if float(line.rstrip("\n").split(",")[column]) <= step]


def package_versions() -> dict[str, str]:
    """Versions of the packages a run's results depend on (saved in its ``config.yaml``)."""
    return {"mfg_envs": mfg_envs.__version__, "stable_baselines3": sb3_version, "torch": th.__version__}


def plain(value: Any) -> Any:
    """``value`` as YAML/JSON data (classes by dotted name, numpy scalars as numbers)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return str(value)  # subclasses such as torch's version string are not YAML-safe
    return value if value is None or isinstance(value, (bool, int, float)) else repr(value)


def write_config(run_dir: Path, config: dict[str, Any], args: argparse.Namespace) -> None:
    """``config.yaml``: the resolved configuration (as built), the command's arguments and the package versions."""
    with (run_dir / "config.yaml").open("w") as file:
        resolved = {**config, "arguments": vars(args), "versions": package_versions()}
        yaml.safe_dump(plain(resolved), file, sort_keys=False)


def metric_rows(metrics: dict[str, np.ndarray]) -> list[dict[str, float | None]]:
    """The logger's columns (:func:`sb3_meanfield.plotting.load_metrics`) as JSON rows (missing values: ``None``)."""
    return [
        {key: None if math.isnan(value) else float(value) for key, value in zip(metrics, values)}
        for values in zip(*metrics.values())
    ]


def write_summary(run_dir: Path, result: dict[str, Any], seconds: float) -> None:
    """``metrics.json``: the final evaluation, the training time and the rows of ``metrics.csv``."""
    progress = metric_rows(load_metrics(run_dir / "metrics.csv"))
    summary = {"evaluation": result, "train_seconds": seconds, "progress": progress}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))


def resumed_run(
    run_dir: Path, args: argparse.Namespace, defaults: dict[str, Any]
) -> tuple[dict[str, Any], argparse.Namespace]:
    """The resolved config of ``run_dir`` and its arguments (``defaults`` for those it predates), with the display
    flags of ``args`` and, when ``args.n_timesteps`` is given, that new total of transitions."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        saved = {**defaults, **config["arguments"]}
    except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
        raise UsageError(f"cannot resume {str(run_dir)!r}: no readable config.yaml ({error})") from None
    saved.update({name: getattr(args, name) for name in RESUME_FLAGS if name != "n_timesteps"})
    if args.n_timesteps is not None:
        saved["n_timesteps"] = config["n_timesteps"] = args.n_timesteps
    return config, argparse.Namespace(**saved)


def extend_config(run_dir: Path, n_timesteps: int) -> None:
    """Record in ``config.yaml`` a new total of transitions (``--resume RUN_DIR -n N``), everything else kept."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    if config["n_timesteps"] == n_timesteps:
        return
    config["n_timesteps"] = config["arguments"]["n_timesteps"] = n_timesteps
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run whose folder exists: ``run_dir`` and whether it holds a checkpoint to resume from."""

    def __init__(self, run_dir: Path, resumable: bool) -> None:
        super().__init__(str(run_dir))
        self.run_dir, self.resumable = run_dir, resumable


# --------------------------------------------------------------------------- the final evaluation
#: Replicates of the final evaluation's Nash gap by method (:func:`~sb3_meanfield.evaluation.gap_method`): a dp gap
#: solves one grid per population and replicate (the default grid, about 30 s of CPU each on the crowds), so two.
FINAL_REPLICATES = {"exact": 4, "dp": 2}
#: Replicates of the final exact gap where the population is random (a random initial mean ``init_mean_std`` or
#: common noise): each replicate draws its own population, and the gap varies with the draw (docs/population_aware.md).
RANDOM_POPULATION_REPLICATES = 32


def final_replicates(game: Game, method: str) -> int:
    """Replicates of the final Nash gap of ``method`` on ``game`` when ``--eval-replicates`` does not say:
    :data:`FINAL_REPLICATES`, or :data:`RANDOM_POPULATION_REPLICATES` for an exact gap where the population is
    random."""
    random = any(getattr(member.model, "random_population", False) for member in game.members)
    return RANDOM_POPULATION_REPLICATES if method == "exact" and random else FINAL_REPLICATES[method]


def evaluate(
    models: Sequence[BaseAlgorithm],
    game: Game,
    n_particles: int,
    seed: int,
    gap: bool = True,
    n_replicates: int | None = None,
) -> dict[str, Any]:
    """The final evaluation of the learned policies (one model per population) on ``n_particles`` particles.

    Every critic's overestimation of its population's initial value (``critic_value - realized_return``,
    :func:`~sb3_meanfield.evaluation.overestimation`, every population playing its learned policy), and the Nash gap
    by the game's method (:func:`~sb3_meanfield.evaluation.gap_method`: exact, or dp on the crowds at the default
    grid; ``n_replicates`` replicates, by default :func:`final_replicates`), or, ``gap=False`` or without a method,
    the mean returns. One population: one flat dict (``method`` and the gap's figures, or ``mean_return``, and the
    critic's); several: ``method``, ``gaps`` per population, ``max_gap`` and ``max_relative_gap`` (or ``mean_returns``)
    and ``critic`` per population.
    """
    cohort = game.clone(n_particles)
    cohort.reset(population_rngs(seed, len(cohort.names)))
    critics = [critic_value(model, cohort.observation(k)) for k, model in enumerate(models)]
    policies = [ModelPolicy(model) for model in models]
    discounts = [critic_discount(model) for model in models]
    _, discounted = rollout(cohort, policies, seed, discounts)  # same seed: same initial states
    critic = {name: overestimation(q, r) for name, q, r in zip(game.names, critics, discounted)}
    method = gap_method(game) if gap else None
    result = None
    if method is not None:
        replicates = n_replicates or final_replicates(game, method)
        result = nash_gap(list(models), game, method, n_particles, seed, n_replicates=replicates)
    single = game.names[0] if len(game.names) == 1 else None
    if result is not None:
        if single is not None:
            return {"method": method, **result.as_dict(), **critic[single]}
        gaps = {name: {key: float(value) for key, value in asdict(item).items()} for name, item in result.gaps.items()}
        maxima = {"max_gap": result.gap, "max_relative_gap": result.relative_gap}
        return {"method": method, "gaps": gaps, **maxima, "critic": critic}
    # the game's return is undiscounted: only a critic with gamma < 1 needs a second, undiscounted episode
    returns = discounted if all(gamma == 1 for gamma in discounts) else rollout(cohort, policies, seed)[1]
    mean_returns = {
        name: dict(zip(("mean_return", "standard_error"), monte_carlo_mean(r))) for name, r in zip(game.names, returns)
    }
    if single is not None:
        return {**mean_returns[single], **critic[single]}
    return {"mean_returns": mean_returns, "critic": critic}


def gap_line(figures: dict[str, Any], method: str) -> str:
    """``<method> Nash gap G +- SE (relative gap R; policy return P, best response return B)``."""
    return (
        f"{method} Nash gap {figures['gap']:.4g} +- {figures['standard_error']:.2g} "
        f"(relative gap {figures['relative_gap']:.4g}; policy return {figures['policy_return']:.4g}, "
        f"best response return {figures['best_response_return']:.4g})"
    )


def format_evaluation(result: dict[str, Any]) -> str:
    """The final lines of a run: the Nash gap by its method (exact, dp) and relative gap, or the mean return;
    several populations: one line each and the maximum gap."""
    method = result.get("method", "exact")  # runs written before the method was saved: exact
    if "gaps" in result:
        lines = [f"{name}: {gap_line(gap, method)}" for name, gap in result["gaps"].items()]
        lines.append(f"max Nash gap {result['max_gap']:.4g} (max relative gap {result['max_relative_gap']:.4g})")
        return "\n".join(lines)
    if "mean_returns" in result:
        lines = [
            f"{name}: mean evaluation return {value['mean_return']:.4g} +- {value['standard_error']:.2g}"
            for name, value in result["mean_returns"].items()
        ]
        return "\n".join([*lines, "(no Nash gap evaluated)"])
    if "gap" in result:
        return gap_line(result, method)
    mean, se = result["mean_return"], result["standard_error"]
    return f"mean evaluation return {mean:.4g} +- {se:.2g} (no Nash gap evaluated)"


def log_population_histogram(run_dir: Path, model: BaseAlgorithm, population: Population, seed: int) -> None:
    """TensorBoard: the histogrammed quantity of the final policy's population at every step, one histogram each."""
    cohort = Game(population.model, 1000, population.representation, population.kde_bandwidth)
    cohort.reset([np.random.default_rng(seed)])
    member, policy = cohort.members[0], ModelPolicy(model)
    logger = Logger(str(run_dir), [TensorBoardOutputFormat(str(run_dir / "tensorboard"))])
    rng = np.random.default_rng(seed)
    while not cohort.done:  # a loop over time steps
        cohort.step([policy(cohort.observation(0))], [member.model.noise(member.n_particles, rng)])
        values = member.model.histogram_values(member.states, member.last_actions)
        if values is not None:  # the model histograms a quantity
            logger.record("mfg/population", th.as_tensor(values[:, 0]), exclude=("stdout", "log", "json", "csv"))
            logger.dump(cohort.step_index)
    logger.close()


# --------------------------------------------------------------------------- training runs
def train_population(args: argparse.Namespace, config: dict[str, Any]) -> Path:
    """One population: one model, SB3's own ``learn``, checkpoints, figures.

    Resuming (``args.resume``) continues from the checkpoint to ``config["n_timesteps"]``: the end of an interrupted
    run, or a new total that trains a finished run longer (recorded in its ``config.yaml``). Ctrl-C (or any
    ``KeyboardInterrupt``) once the run folder exists raises :class:`TrainingInterrupted`.
    """
    restored = None
    if args.resume is None:
        env, model, callbacks = build(config)
        run_dir = make_run_dir(args.log_folder, config)
    else:
        run_dir = Path(args.resume)
        try:
            restored = load_checkpoint(run_dir)
        except CheckpointError as error:
            raise UsageError(str(error)) from None
        model, callbacks = restored["model"], restored["callbacks"]
        env = model.get_env()
        if config["n_timesteps"] < model.num_timesteps:
            raise UsageError(
                f"cannot resume {str(run_dir)!r} with -n {config['n_timesteps']}: its checkpoint is at "
                f"{model.num_timesteps} transitions (-n is the new total)"
            )
    try:
        return _train_population(args, config, run_dir, env, model, callbacks, restored)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run_dir, (run_dir / CHECKPOINT_DIR / STATE_FILE).is_file()) from None


def _train_population(
    args: argparse.Namespace,
    config: dict[str, Any],
    run_dir: Path,
    env: Any,
    model: BaseAlgorithm,
    callbacks: list[Any],
    restored: dict[str, Any] | None,
) -> Path:
    writers: list[KVWriter] = [
        StepCSVOutputFormat(str(run_dir / "metrics.csv"), None if restored is None else model.num_timesteps)
    ]
    if args.tensorboard:
        writers.append(TensorBoardOutputFormat(str(run_dir / "tensorboard")))
    model.set_logger(Logger(str(run_dir), writers))
    if restored is None:
        write_config(run_dir, {**config, "n_envs": env.num_envs}, args)
    else:  # values recorded before the checkpoint and not yet dumped
        for key, values in restored["logger"].items():
            getattr(model.logger, key).update(values)
        extend_config(run_dir, config["n_timesteps"])  # -n: a new total
    checkpoint_freq = DEFAULT_CHECKPOINT_FREQ if args.checkpoint_freq is None else args.checkpoint_freq
    if checkpoint_freq > 0:
        callbacks = [*callbacks, TrainingCheckpoint(run_dir / CHECKPOINT_DIR, callbacks, checkpoint_freq, restored)]
    started = time.perf_counter()
    model.learn(
        config["n_timesteps"] - model.num_timesteps,
        callback=callbacks,
        log_interval=env.num_envs,
        progress_bar=not args.no_progress,
        reset_num_timesteps=restored is None,
    )
    seconds = time.perf_counter() - started
    model.save(run_dir / "model.zip")
    model.logger.close()
    population = env.get_attr("population", indices=[0])[0]
    game = env.get_attr("game", indices=[0])[0]
    result = evaluate([model], game, args.eval_particles, args.seed, not args.no_eval_gap, args.eval_replicates)
    write_summary(run_dir, result, seconds)
    env.close()
    if args.tensorboard:
        log_population_histogram(run_dir, model, population, args.seed)
    figures = [] if args.no_figures else write_run_figures(run_dir, seed=args.seed)
    steps = f"{config['mode']}: {config['n_timesteps']} steps"
    return report(config, steps, seconds, format_evaluation(result), run_dir, bool(figures))


def train_populations(args: argparse.Namespace, config: dict[str, Any]) -> Path:
    """Several populations: one model per population (:class:`~sb3_meanfield.training.MultiPopulationTrainer`)."""
    if args.resume is not None:
        raise UsageError(f"cannot resume {args.resume!r}: multi-population runs write no checkpoint")
    trainer, callbacks = build_trainer(config)
    run_dir = make_run_dir(args.log_folder, config)
    trainer.set_logger(Logger(str(run_dir), [StepCSVOutputFormat(str(run_dir / "metrics.csv"))]))
    for name, model in zip(trainer.names, trainer.models):
        model.set_logger(Logger(str(run_dir), [StepCSVOutputFormat(str(run_dir / f"progress_{name}.csv"))]))
    write_config(run_dir, {**config, "switch_freq": trainer.switch_freq, "populations": list(trainer.names)}, args)
    started = time.perf_counter()
    try:
        trainer.learn(config["n_timesteps"], callback=callbacks, progress_bar=not args.no_progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run_dir, False) from None
    seconds = time.perf_counter() - started
    for name, model in zip(trainer.names, trainer.models):
        model.save(run_dir / f"model_{name}.zip")
        model.logger.close()
    trainer.logger.close()
    result = evaluate(
        trainer.models, trainer.game, args.eval_particles, args.seed, not args.no_eval_gap, args.eval_replicates
    )
    write_summary(run_dir, result, seconds)
    steps = f"{config['schedule']}: {config['n_timesteps']} steps per population"
    return report(config, steps, seconds, format_evaluation(result), run_dir, False)


def report(config: dict[str, Any], steps: str, seconds: float, evaluation: str, run_dir: Path, figures: bool) -> Path:
    """Print the run's last lines (what was trained, its evaluation, its folder); return the folder."""
    print(f"{config['env']} {config['algo']} {steps} in {seconds:.0f} s")
    print(evaluation)
    print(f"run folder: {run_dir}" + (f" (figures in {run_dir / 'figures'})" if figures else ""))
    return run_dir
