"""Sweeps and hyperparameter searches of training runs on Ray Tune, scored by the Nash gap.

``python -m sb3_meanfield.sweep [--env ID ...] [--algo A ...] [--seed S ...] [--grid KEY:[V1, ...] ...]
[--search KEY:DIST ...] [--num-samples N] [--scheduler fifo|asha] [-f LOGDIR] [--name NAME] [--reuse]
[--address ADDR] [TRAIN FLAGS ...]`` (needs the ``sweep`` extra: ``pip install -e ".[sweep]"``).

- A trial is one ``python -m sb3_meanfield.train`` run (:class:`~sb3_meanfield.sweep.space.Trial`), with one CPU and
  one torch thread, its run folder written as the command writes it (``LOGDIR/<env>_<algo>_<seed>/<run>/``:
  ``config.yaml``, ``metrics.json``, ``model.zip``, ...). A grid is every combination of env ids, algorithms,
  hyperparameter values (``--grid``) and seeds; a search (``--search``) samples hyperparameters with Optuna's TPE
  (Tune's ``OptunaSearch``) for one id, algorithm and seed.
- While it trains, a trial reports each Nash-gap check of its run to Tune (exact where the model has an exact best
  response, dp on the crowds: the config's :class:`~sb3_meanfield.evaluation.NashGapCallback`), then its final
  evaluation. The sweep minimizes the final relative Nash gap; ``--scheduler asha`` (a search's default) stops the
  trials whose reported gap falls behind (Tune's ``ASHAScheduler``).
- The result: a table (Markdown and CSV) and a figure of the gaps during training in ``LOGDIR/NAME/``, with Tune's
  state. The same command resumes an interrupted sweep: its finished trials are kept and its other trials continue
  from their run's checkpoint.
- Ray is started on this machine, or ``--address`` names a Ray cluster (``ray start --head`` on one machine,
  ``ray start --address HEAD:6379`` on the others, then ``--address auto`` on any node). On a cluster the log
  folder must be one shared folder (same path on every node), since each trial writes its run folder where it runs.

Modules: :mod:`~sb3_meanfield.sweep.space` (trials and search spaces, checked before anything trains),
:mod:`~sb3_meanfield.sweep.runner` (:class:`~sb3_meanfield.sweep.runner.Sweep`,
:func:`~sb3_meanfield.sweep.runner.run_sweep`), :mod:`~sb3_meanfield.sweep.trial` (the Tune trainable),
:mod:`~sb3_meanfield.sweep.report` (the callback that reports the gap), :mod:`~sb3_meanfield.sweep.results` (table,
CSV, figure). In Python::

    from sb3_meanfield.sweep import Sweep, grid_trials, run_sweep, write_results

    sweep = Sweep(tuple(grid_trials(["MFGLinearQuadratic-v0"], ["td3", "sac"], [0, 1, 2])), log_folder="runs/grid")
    rows = run_sweep(sweep, num_cpus=2)  # one dict per trial: status, relative_gap, evaluation, run_dir, ...
    write_results(rows, sweep.path)
"""

from sb3_meanfield.sweep.results import write_results
from sb3_meanfield.sweep.runner import Sweep, run_sweep
from sb3_meanfield.sweep.space import Distribution, Trial, grid_trials
from sb3_meanfield.sweep.trial import finished_run

__all__ = ["Distribution", "Sweep", "Trial", "finished_run", "grid_trials", "run_sweep", "write_results"]
