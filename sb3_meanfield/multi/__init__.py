"""Several populations, one SB3 model each: the multi-population side of :mod:`sb3_meanfield`.

- :class:`PopulationVecEnv`: one population's learning particles of a shared multi-population game as a VecEnv;
- :class:`MultiPopulationTrainer`: one model per population trained on one game, alternating (default) or
  simultaneous, every population following its own live policy;
- :func:`multi_nash_gap`, :class:`MultiPopulationNashGapCallback`: per-population Nash gaps (exact or RL) and
  their maximum.

``python -m sb3_meanfield.train_multi`` trains from the command line.
"""

from sb3_meanfield.multi.evaluation import (
    MultiPopulationNashGapCallback,
    multi_nash_gap,
    rl_population_best_response,
)
from sb3_meanfield.multi.training import MODES, MultiPopulationTrainer
from sb3_meanfield.multi.vec_env import PopulationVecEnv, population_envs, step_populations

__all__ = [
    "MODES",
    "MultiPopulationNashGapCallback",
    "MultiPopulationTrainer",
    "PopulationVecEnv",
    "multi_nash_gap",
    "population_envs",
    "rl_population_best_response",
    "step_populations",
]
