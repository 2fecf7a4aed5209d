"""Stable-Baselines3 extension for mean field games: population encoders, mean-field training, Nash gap.

- :class:`MFDDPG`, :class:`MFTD3`, :class:`MFSAC`: SB3's algorithms with the ``"MeanFieldPolicy"``
  alias (:class:`MeanFieldTD3Policy`, :class:`MeanFieldSACPolicy`: separate encoders for the agent's
  own state and time and for the population, and a critic that encodes the action separately).
- :func:`nash_gap`, :class:`NashGapCallback`, :class:`StopTrainingOnNashGap`: the exploitability of a
  policy, exact where the model has a closed form and from an RL best response everywhere.
- :class:`MultiPopulationTrainer`, :class:`PopulationVecEnv`, :func:`multi_nash_gap`,
  :class:`MultiPopulationNashGapCallback`: one model per population of a multi-population game
  (:mod:`sb3_meanfield.multi`) and its per-population Nash gaps.
"""

from sb3_meanfield.common.encoders import MeanFieldExtractor
from sb3_meanfield.common.noise import DecayingGaussianActionNoise, make_action_noise
from sb3_meanfield.ddpg import MFDDPG
from sb3_meanfield.evaluation import ModelPolicy, NashGapCallback, StopTrainingOnNashGap, nash_gap, rl_best_response
from sb3_meanfield.multi import MultiPopulationNashGapCallback, MultiPopulationTrainer, PopulationVecEnv, multi_nash_gap
from sb3_meanfield.sac import MFSAC, MeanFieldSACPolicy
from sb3_meanfield.td3 import MFTD3, MeanFieldTD3Policy

__all__ = [
    "MFDDPG",
    "MFSAC",
    "MFTD3",
    "DecayingGaussianActionNoise",
    "MeanFieldExtractor",
    "MeanFieldSACPolicy",
    "MeanFieldTD3Policy",
    "ModelPolicy",
    "MultiPopulationNashGapCallback",
    "MultiPopulationTrainer",
    "NashGapCallback",
    "PopulationVecEnv",
    "StopTrainingOnNashGap",
    "make_action_noise",
    "multi_nash_gap",
    "nash_gap",
    "rl_best_response",
]
