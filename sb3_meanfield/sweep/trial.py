"""One sweep trial: a ``python -m sb3_meanfield.train`` run inside a Ray Tune trial, and the run folders it can
take up instead of training from the start.

:func:`train_trial` is the Tune trainable. It trains in its own process (one Tune trial, one CPU) with the train
command's own code, its run folder written as the command writes it, plus
:class:`~sb3_meanfield.sweep.report.TuneReport` among the callbacks, which reports each Nash-gap check to Tune; at
the end it reports the final evaluation (``final: True``), whose relative gap is the sweep's objective. Before
training it looks for a run of the same configuration (:func:`matching_runs`: the saved ``config.yaml`` and package
versions are what the trial's flags resolve to now, and a run is deterministic for them):

- with ``reuse``, a finished one with a Nash gap (:func:`scored_run`) is reported instead of training again;
- an interrupted one with a checkpoint (a trial of an interrupted sweep) is continued with ``--resume``, which ends
  exactly where the uninterrupted run ends.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sb3_meanfield.flags import is_multi
from sb3_meanfield.sweep.space import Trial

#: :class:`~sb3_meanfield.sweep.report.TuneReport` as a config's callback entry (a name: the callback module
#: imports Stable-Baselines3, which a sweep's driver does not need).
REPORT_CALLBACK = "sb3_meanfield.sweep.report.TuneReport"


def node_record() -> dict[str, str]:
    """The Ray node this process runs on (``node_id``; Tune adds the host name, IP address and process id)."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id()}


def without_report(entries: list[Any]) -> list[Any]:
    """Callback entries without the sweep's reporter (it changes no result)."""
    return [entry for entry in entries if entry != REPORT_CALLBACK]


def resolved_config(train_args: list[str], launcher: str = "sb3_meanfield.train") -> dict[str, Any]:
    """What ``train_args`` (flags of ``python -m <launcher>``, ``sb3_meanfield.train`` or ``.train_multi``) resolve
    to now, as a run saves it in its ``config.yaml`` (the command's arguments aside), with the package versions."""
    from sb3_meanfield.config import resolve_config
    from sb3_meanfield.run import package_versions, plain

    expected = plain(resolve_config(importlib.import_module(launcher).build_parser().parse_args(train_args)))
    expected["versions"] = plain(package_versions())
    # saved as built, not as configured: the learners of self-play, the default length of an alternating turn
    expected.pop("n_envs", None)
    if expected.get("switch_freq", 0) is None:
        expected.pop("switch_freq")
    return expected


def configuration_digest(trials: Sequence[Trial]) -> str:
    """A digest of what every trial's flags resolve to now (:func:`resolved_config`): it changes with the code, the
    shipped hyperparameters or the package versions, so that a sweep resumed after such a change is recognised."""
    resolved = [resolved_config(trial.train_argv("")) for trial in trials]
    return hashlib.sha1(json.dumps(resolved, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def matching_runs(folder: Path, train_args: list[str], launcher: str = "sb3_meanfield.train") -> list[Path]:
    """The run folders in ``folder``, newest first, whose saved configuration and package versions are what
    ``train_args`` resolve to now (:func:`resolved_config`; a sweep's reporter callback aside): the runs that training
    again would repeat."""
    expected = resolved_config(train_args, launcher)
    matches = []
    for run_dir in sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []:
        if (run_dir / "config.yaml").is_file():
            saved = yaml.safe_load((run_dir / "config.yaml").read_text())
            saved["callback"] = without_report(saved.get("callback") or [])
            if all(saved.get(key) == value for key, value in expected.items()):
                matches.append(run_dir)
    return matches


def finished_run(folder: Path, train_args: list[str], launcher: str = "sb3_meanfield.train") -> Path | None:
    """The newest finished run (it has ``metrics.json``) of :func:`matching_runs`, else ``None``."""
    runs = matching_runs(folder, train_args, launcher)
    return next((run_dir for run_dir in runs if (run_dir / "metrics.json").is_file()), None)


def scored_run(folder: Path, train_args: list[str]) -> Path | None:
    """The :func:`finished_run` of ``train_args`` if its final evaluation has a Nash gap (the sweep's objective; a
    run trained with ``--no-eval-gap`` has none), else ``None``."""
    run_dir = finished_run(folder, train_args)
    evaluation = {} if run_dir is None else json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    return run_dir if "gap" in evaluation or "gaps" in evaluation else None


def interrupted_run(folder: Path, train_args: list[str]) -> Path | None:
    """The newest unfinished run of :func:`matching_runs` that has a checkpoint to resume from, else ``None``."""
    from sb3_meanfield.common.checkpoint import CHECKPOINT_DIR, STATE_FILE

    return next(
        (
            run_dir
            for run_dir in matching_runs(folder, train_args)
            if not (run_dir / "metrics.json").is_file() and (run_dir / CHECKPOINT_DIR / STATE_FILE).is_file()
        ),
        None,
    )


def train_reporting(train_args: list[str], folder: Path) -> Path:
    """Train the run of ``train_args`` with :class:`~sb3_meanfield.sweep.report.TuneReport` among its callbacks, or
    continue the :func:`interrupted_run` of the same configuration in ``folder``; return the run folder."""
    import torch as th

    from sb3_meanfield.config import resolve_config
    from sb3_meanfield.run import train_population, train_populations
    from sb3_meanfield.train import parse_args, train

    args = parse_args(train_args)
    interrupted = interrupted_run(folder, train_args)
    if interrupted is not None:  # its config.yaml and checkpoint hold the reporter already
        return train(parse_args(["--resume", str(interrupted), "--no-progress", *["--no-figures"] * args.no_figures]))
    config = resolve_config(args)
    config["callback"] = [*config["callback"], REPORT_CALLBACK]
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    return (train_populations if is_multi(config["env"]) else train_population)(args, config)


def final_gap(evaluation: dict[str, Any]) -> tuple[float, float, float]:
    """``(relative gap, gap, standard error)`` of a run's final evaluation (``metrics.json``); several populations:
    the largest relative gap, the largest gap and that population's standard error."""
    if "gaps" in evaluation:
        worst = max(evaluation["gaps"].values(), key=lambda figures: figures["gap"])
        return evaluation["max_relative_gap"], evaluation["max_gap"], worst["standard_error"]
    return evaluation["relative_gap"], evaluation["gap"], evaluation["standard_error"]


def final_result(run_dir: Path, reused: bool) -> dict[str, Any]:
    """The last Tune result of a trial: the final evaluation of its run folder (``final: True``)."""
    summary = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    evaluation = summary["evaluation"]
    relative, gap, standard_error = final_gap(evaluation)
    return {
        "relative_gap": relative,
        "gap": gap,
        "gap_se": standard_error,
        "method": evaluation.get("method", "exact"),  # runs written before the method was saved: exact
        # the transitions of all models, as the checks count them
        "timesteps": config["n_timesteps"] * len(config.get("populations") or [None]),
        "n_timesteps": config["n_timesteps"],
        "final": True,
        "reused": reused,
        "train_seconds": summary["train_seconds"],
        "run_dir": str(run_dir),
        "evaluation": evaluation,
    }


def train_trial(config: dict[str, Any]) -> None:
    """The Tune trainable of a sweep (its param space: ``trial``, the fields of a
    :class:`~sb3_meanfield.sweep.space.Trial`; ``search``, a search's sampled hyperparameters; ``log_folder``, the
    sweep's absolute log folder; ``reuse``): train the trial (see the module docstring) and report its final
    evaluation."""
    from ray import tune

    trial = Trial.from_dict(config["trial"]).with_values(config.get("search", {}))
    train_args = trial.train_argv(config["log_folder"])
    folder = Path(config["log_folder"]) / trial.run_parent
    run_dir = scored_run(folder, train_args) if config["reuse"] else None
    reused = run_dir is not None
    if run_dir is None:
        run_dir = train_reporting(train_args, folder)
    tune.report({**final_result(run_dir, reused), **node_record()})
