"""Running a sweep on Ray Tune: :class:`Sweep` (what to run, checked when it is made) and :func:`run_sweep` (run it,
or resume it, on this machine or a Ray cluster; one row per trial).

Tune keeps the sweep's state in ``LOGDIR/NAME/`` (``storage_path`` ``LOGDIR``, experiment ``NAME``), beside
``sweep.json``, the sweep it runs. Running a sweep whose folder holds the state of the same sweep resumes it
(``Tuner.restore``): finished trials are kept, unfinished and failed ones run again, and a trial whose run folder
has a checkpoint continues it (:mod:`sb3_meanfield.sweep.trial`). A folder that holds another sweep is an error, and
so is one that holds this sweep as it ran before what its trials resolve to changed (code, shipped hyperparameters,
package versions): its finished trials' results would not be this code's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sb3_meanfield.flags import UsageError
from sb3_meanfield.sweep.space import Distribution, Trial, check_trial

#: Trial schedulers: ``fifo`` runs every trial to its end, ``asha`` stops the trials whose reported gap is not
#: among the best third at 1, 3, 9, ... times ``grace_period`` reports (Tune's ``ASHAScheduler``).
SCHEDULERS = ("fifo", "asha")
#: The reported value the sweep minimizes: the relative Nash gap (the final evaluation's in a trial's last report).
METRIC = "relative_gap"
#: What the sweep keeps beside Tune's state, to recognise it when resuming.
SPEC_FILE = "sweep.json"
#: ASHA's reduction factor (the best third of a rung goes on) and the most reports of a trial it waits for.
REDUCTION_FACTOR, MAX_REPORTS = 3, 10_000


@dataclass(frozen=True)
class Sweep:
    """A sweep: a grid of trials, or an Optuna (TPE) search around one trial.

    :param trials: the trials of a grid (:func:`~sb3_meanfield.sweep.space.grid_trials`); with ``search``, the one
        trial whose hyperparameters the search completes.
    :param search: hyperparameter -> :class:`~sb3_meanfield.sweep.space.Distribution`; empty for a grid.
    :param num_samples: trials of a search (``>= 1``); 1 for a grid.
    :param scheduler: one of :data:`SCHEDULERS`.
    :param grace_period: ``asha``: reports (Nash-gap checks) before a trial can be stopped, ``>= 1``.
    :param log_folder: where the run folders (``LOGDIR/<trial folder>/<run>``) and Tune's state go.
    :param name: the sweep's folder in ``log_folder``.
    :param reuse: score a finished run of a trial's configuration found in its folder instead of training again.
    """

    trials: tuple[Trial, ...]
    search: dict[str, Distribution] = field(default_factory=dict)
    num_samples: int = 1
    scheduler: str = "fifo"
    grace_period: int = 3
    log_folder: str = "runs/sweep"
    name: str = "sweep"
    reuse: bool = False

    def __post_init__(self) -> None:
        if not self.trials:
            raise UsageError("a sweep needs one or more trials")
        if self.search and len(self.trials) != 1:
            raise UsageError(f"a search completes one trial (one env id, algorithm and seed), got {len(self.trials)}")
        if not self.search and self.num_samples != 1:
            raise UsageError(f"num_samples is the number of trials of a search; a grid has 1, got {self.num_samples}")
        if not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise UsageError(f"num_samples must be an integer >= 1, got {self.num_samples!r}")
        if self.scheduler not in SCHEDULERS:
            raise UsageError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if not isinstance(self.grace_period, int) or self.grace_period < 1:
            raise UsageError(f"grace_period must be an integer >= 1, got {self.grace_period!r}")
        if not self.name or Path(self.name).name != self.name:
            raise UsageError(f"name must be a folder name (no path), got {self.name!r}")
        folders = [(trial.run_parent, tuple(trial.train_argv(""))) for trial in self.trials]
        if len(set(folders)) != len(folders):
            raise UsageError("the trials of a sweep must differ (two trials would train the same run)")
        for trial in self.trials:
            keys = [*trial.hyperparam_keys(), *self.search]
            twice = sorted({key for key in keys if keys.count(key) > 1})
            if twice:
                raise UsageError(f"{twice}: set twice (--grid, --search, --hyperparams); give each hyperparameter once")
            check_trial(trial, self.log_folder)

    @property
    def path(self) -> Path:
        """The sweep's folder: Tune's state, :data:`SPEC_FILE` and the result files."""
        return Path(self.log_folder).resolve() / self.name

    def spec(self) -> dict[str, Any]:
        """What makes this sweep this sweep (saved in :data:`SPEC_FILE`; its folder aside), as JSON data, with the
        digest of what its trials resolve to now (:func:`~sb3_meanfield.sweep.trial.configuration_digest`)."""
        from sb3_meanfield.sweep.trial import configuration_digest

        spec = json.loads(json.dumps(asdict(self)))
        spec = {key: value for key, value in spec.items() if key not in ("log_folder", "name")}
        return {**spec, "configuration": configuration_digest(self.trials)}


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to the Ray cluster at ``address``, or (``None``) start Ray on this machine with ``num_cpus`` CPUs
    (default: all); every trial process gets ``OMP_NUM_THREADS=1``. Return whether this call started the
    connection (an existing one is kept and left open)."""
    import ray

    if ray.is_initialized():
        if address is not None or num_cpus is not None:
            raise UsageError("Ray is already running in this process: address and num_cpus apply when it is started")
        return False
    if address is not None and num_cpus is not None:
        raise UsageError("num_cpus applies to Ray started on this machine; a cluster has the CPUs of its nodes")
    runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
    try:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env)
        else:
            ray.init(address=address, runtime_env=runtime_env)
    except ConnectionError as error:
        raise UsageError(f"address {address!r}: cannot connect to a Ray cluster ({error})") from None
    return True


def param_space(sweep: Sweep) -> dict[str, Any]:
    """Tune's param space: every trial of a grid (``trial``), or the one trial and the searched hyperparameters
    (``search``), and what every trial needs to know (:func:`~sb3_meanfield.sweep.trial.train_trial`)."""
    from ray import tune

    common = {"log_folder": str(Path(sweep.log_folder).resolve()), "reuse": sweep.reuse}
    if sweep.search:
        search = {key: distribution.tune_domain() for key, distribution in sweep.search.items()}
        return {"trial": asdict(sweep.trials[0]), "search": search, **common}
    return {"trial": tune.grid_search([asdict(trial) for trial in sweep.trials]), **common}


def trial_dirname(trial: Any) -> str:
    """The folder of a Tune trial (its id; Tune's default name holds the whole config)."""
    return f"trial_{trial.trial_id}"


def make_tuner(sweep: Sweep, max_concurrent: int | None) -> Any:
    """A new ``ray.tune.Tuner`` of ``sweep``: one CPU per trial, minimizing :data:`METRIC`."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            grace_period=sweep.grace_period,
            reduction_factor=REDUCTION_FACTOR,
            max_t=MAX_REPORTS,
        )
        if sweep.scheduler == "asha"
        else FIFOScheduler()
    )
    tune_config = tune.TuneConfig(
        metric=METRIC,
        mode="min",
        search_alg=OptunaSearch(seed=sweep.trials[0].seed) if sweep.search else None,
        scheduler=scheduler,
        num_samples=sweep.num_samples,
        max_concurrent_trials=max_concurrent,
        trial_dirname_creator=trial_dirname,
    )
    run_config = tune.RunConfig(name=sweep.name, storage_path=str(sweep.path.parent), verbose=1)
    return tune.Tuner(trainable(), param_space=param_space(sweep), tune_config=tune_config, run_config=run_config)


def trainable() -> Any:
    """:func:`~sb3_meanfield.sweep.trial.train_trial` with one CPU per trial."""
    from ray import tune

    from sb3_meanfield.sweep.trial import train_trial

    return tune.with_resources(train_trial, {"cpu": 1})


def tuner_of(sweep: Sweep, max_concurrent: int | None) -> Any:
    """The Tuner that resumes ``sweep`` from its folder (with the settings Tune saved, ``max_concurrent`` included),
    or a new one (and the folder's :data:`SPEC_FILE`)."""
    from ray import tune

    spec_file = sweep.path / SPEC_FILE
    if tune.Tuner.can_restore(sweep.path):
        saved, spec = json.loads(spec_file.read_text()) if spec_file.is_file() else None, sweep.spec()
        if saved != spec:
            changed = saved is not None and {**saved, "configuration": None} == {**spec, "configuration": None}
            raise UsageError(
                f"{sweep.path} holds this sweep as it ran before its trials' configuration changed (the code, the"
                " shipped hyperparameters or the package versions): its results are not those of this code; give it"
                " another name or folder (with reuse, the runs that still match are scored, not trained again)"
                if changed
                else f"{sweep.path} holds another sweep ({SPEC_FILE}); give this one another name or folder"
            )
        return tune.Tuner.restore(
            str(sweep.path), trainable(), resume_unfinished=True, restart_errored=True, param_space=param_space(sweep)
        )
    tuner = make_tuner(sweep, max_concurrent)
    sweep.path.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(sweep.spec(), indent=1) + "\n")
    return tuner


def run_sweep(
    sweep: Sweep, address: str | None = None, num_cpus: int | None = None, max_concurrent: int | None = None
) -> list[dict[str, Any]]:
    """Run ``sweep`` (or resume it) on Ray started on this machine with ``num_cpus`` CPUs, or on the cluster at
    ``address`` (``"auto"``: the one this machine is a node of), at most ``max_concurrent`` trials at a time (default:
    as many as there are CPUs; a resumed sweep keeps the one it started with); return its trials' rows
    (:func:`~sb3_meanfield.sweep.results.trial_rows`)."""
    import ray

    from sb3_meanfield.sweep.results import trial_rows

    started = start_ray(address, num_cpus)
    try:
        grid = tuner_of(sweep, max_concurrent).fit()
        return trial_rows(grid, sweep)
    finally:
        if started:
            ray.shutdown()
