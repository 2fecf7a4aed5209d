"""Stable-Baselines3 extension for mean field games: population encoders, mean-field training, Nash gap.

- :class:`MFDDPG`, :class:`MFTD3`, :class:`MFSAC`: SB3's algorithms with the ``"MeanFieldPolicy"``
  alias (:class:`MeanFieldTD3Policy`, :class:`MeanFieldSACPolicy`: separate encoders for the agent's
  own state and time and for the population, and a critic that encodes the action separately). Learning on
  a :class:`PopulationVecEnv`, the population follows the model being trained (self-play).
- :class:`PopulationVecEnv`: the learning particles of one population of a game as an SB3 ``VecEnv``;
  :class:`MultiPopulationTrainer`: one model per population of a game of several populations.
- :func:`nash_gap`, :class:`NashGapCallback`, :class:`StopTrainingOnNashGap`: the exploitability of
  policies, one API for every game and best-response method (exact where the model has a closed form,
  an RL best response everywhere).
"""

from sb3_meanfield.common.encoders import MeanFieldExtractor
from sb3_meanfield.common.noise import DecayingGaussianActionNoise, make_action_noise
from sb3_meanfield.common.vec_env import PopulationVecEnv, bind_population
from sb3_meanfield.ddpg import MFDDPG
from sb3_meanfield.evaluation import (
    METHODS,
    ModelPolicy,
    NashGapCallback,
    StopTrainingOnNashGap,
    nash_gap,
    rl_best_response,
)
from sb3_meanfield.sac import MFSAC, MeanFieldSACPolicy
from sb3_meanfield.td3 import MFTD3, MeanFieldTD3Policy
from sb3_meanfield.training import MultiPopulationTrainer

__all__ = [
    "METHODS",
    "MFDDPG",
    "MFSAC",
    "MFTD3",
    "DecayingGaussianActionNoise",
    "MeanFieldExtractor",
    "MeanFieldSACPolicy",
    "MeanFieldTD3Policy",
    "ModelPolicy",
    "MultiPopulationTrainer",
    "NashGapCallback",
    "PopulationVecEnv",
    "StopTrainingOnNashGap",
    "bind_population",
    "make_action_noise",
    "nash_gap",
    "rl_best_response",
]
