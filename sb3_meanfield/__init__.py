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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives: imported on first access (PEP 562), so that ``python -m sb3_meanfield.train
#: --help`` and the other light entry points do not pay the torch import.
_MODULES = {
    "METHODS": "sb3_meanfield.evaluation",
    "MFDDPG": "sb3_meanfield.ddpg",
    "MFSAC": "sb3_meanfield.sac",
    "MFTD3": "sb3_meanfield.td3",
    "DecayingGaussianActionNoise": "sb3_meanfield.common.noise",
    "MeanFieldExtractor": "sb3_meanfield.common.encoders",
    "MeanFieldSACPolicy": "sb3_meanfield.sac",
    "MeanFieldTD3Policy": "sb3_meanfield.td3",
    "ModelPolicy": "sb3_meanfield.evaluation",
    "MultiPopulationTrainer": "sb3_meanfield.training",
    "NashGapCallback": "sb3_meanfield.evaluation",
    "PopulationVecEnv": "sb3_meanfield.common.vec_env",
    "StopTrainingOnNashGap": "sb3_meanfield.evaluation",
    "bind_population": "sb3_meanfield.common.vec_env",
    "make_action_noise": "sb3_meanfield.common.noise",
    "nash_gap": "sb3_meanfield.evaluation",
    "rl_best_response": "sb3_meanfield.evaluation",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


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
