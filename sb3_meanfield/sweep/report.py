"""What a sweep trial tells Ray Tune while it trains: :class:`TuneReport`, the callback that forwards every Nash-gap
check of the run."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from sb3_meanfield.sweep.trial import node_record

#: A Tune result's values -> the logger keys of a Nash-gap check (:class:`~sb3_meanfield.evaluation.NashGapCallback`;
#: several populations: the population with the largest gap).
GAP_KEYS = {"relative_gap": "mfg/relative_nash_gap", "gap": "mfg/nash_gap", "gap_se": "mfg/nash_gap_se"}


class TuneReport(BaseCallback, KVWriter):
    """Report every Nash-gap check of a run to Ray Tune, one ``ray.tune.report`` each.

    A check of :class:`~sb3_meanfield.evaluation.NashGapCallback` (exact, or dp on the crowds) records the gap and
    dumps the run's logger; this callback is one more output of that logger (it adds itself when training starts),
    so each dump that holds ``mfg/relative_nash_gap`` becomes a Tune result: ``relative_gap``, ``gap``, ``gap_se``,
    ``timesteps`` (the transitions so far; several populations: of all models) and ``final: False``. The sweep adds
    it to the callbacks of every trial it trains (so it is listed in the run's ``config.yaml``). It changes nothing
    in the training; outside a Tune trial (a sweep's run resumed by hand) Ray warns once and drops the reports.
    """

    def _on_training_start(self) -> None:
        formats = self.model.logger.output_formats
        if self not in formats:  # a resumed run's restored callback meets a new logger
            formats.append(self)

    def _on_step(self) -> bool:
        return True

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        if GAP_KEYS["relative_gap"] not in key_values:
            return
        from ray import tune

        metrics = {name: float(key_values[key]) for name, key in GAP_KEYS.items()}
        tune.report({**metrics, "timesteps": step, "final": False, **node_record()})

    def close(self) -> None:
        """Nothing to close: the reports are sent as they are made."""
