"""Mean field game environments with continuous actions.

``import mfg_envs`` registers every id with Gymnasium (``gym.make``) and, for the single-population ids,
its batched N-agent version (``gym.make_vec(env_id, num_envs=N)``); :func:`parallel_env` builds the
PettingZoo version. Every id is a game of one or several populations (:mod:`mfg_envs.game`);
:func:`solve_equilibrium` and :func:`exact_nash_gap` answer for the exactly solvable ones; :func:`solve_equilibrium`
also returns the walled crowds' numerical reference (:mod:`mfg_envs.crowd_equilibrium`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from gymnasium.envs.registration import register

from mfg_envs.core import ConstantPolicy, MeanFieldModel, Population, PopulationFlow
from mfg_envs.crowd import CrowdEnv
from mfg_envs.crowd_lq import CrowdLQEnv
from mfg_envs.crowd_multi import CrowdMultiEnv
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import Equilibrium, GameEquilibrium, solve_equilibrium
from mfg_envs.game import Game, GameModel, exactly_solvable, game_of, rollout
from mfg_envs.linear_quadratic import LinearQuadraticEnv
from mfg_envs.linear_quadratic_multi import LinearQuadraticMultiEnv
from mfg_envs.nash_gap import NashGap, PopulationGap, exact_nash_gap
from mfg_envs.parallel import MeanFieldParallelEnv
from mfg_envs.price import PriceEnv
from mfg_envs.resource import ResourceEnv
from mfg_envs.vector import MeanFieldVectorEnv

__version__ = "0.1.0"

ENV_CLASSES: dict[str, type[MeanFieldEnv]] = {
    cls.env_id: cls for cls in (CrowdEnv, CrowdLQEnv, PriceEnv, ResourceEnv, LinearQuadraticEnv)
}
#: Single-population ids (they also have a batched ``gym.make_vec`` front end).
ENV_IDS = tuple(ENV_CLASSES)
MULTI_ENV_CLASSES: dict[str, type[MeanFieldEnv]] = {cls.env_id: cls for cls in (LinearQuadraticMultiEnv, CrowdMultiEnv)}
#: Multi-population ids (one learner among several populations; PettingZoo agents ``<population>_<index>``).
MULTI_ENV_IDS = tuple(MULTI_ENV_CLASSES)
#: Every id.
ALL_ENV_IDS = ENV_IDS + MULTI_ENV_IDS


def parallel_env(env_id: str, n_agents: int | tuple[int, ...] = 100, **kwargs: Any) -> MeanFieldParallelEnv:
    """PettingZoo ``ParallelEnv`` of ``env_id`` with ``n_agents`` agents (multi-population ids: per population,
    named ``<population>_<index>``); keywords as for ``gym.make``."""
    env_class = {**ENV_CLASSES, **MULTI_ENV_CLASSES}.get(env_id)
    if env_class is None:
        raise ValueError(f"env_id must be one of {ALL_ENV_IDS}, got {env_id!r}")
    return MeanFieldParallelEnv(env_class.model_class, env_id, n_agents, **kwargs)


for _env_id, _env_class in ENV_CLASSES.items():
    # ENV_CLASSES holds the single-population envs only: their model_class is a MeanFieldModel, not a GameModel.
    _model_class = cast("type[MeanFieldModel]", _env_class.model_class)
    register(
        id=_env_id,
        entry_point=_env_class,
        vector_entry_point=partial(MeanFieldVectorEnv, _model_class, _env_id),
    )

for _env_id, _env_class in MULTI_ENV_CLASSES.items():
    register(id=_env_id, entry_point=_env_class)

__all__ = [
    "ALL_ENV_IDS",
    "ENV_IDS",
    "MULTI_ENV_IDS",
    "ConstantPolicy",
    "Equilibrium",
    "Game",
    "GameEquilibrium",
    "GameModel",
    "MeanFieldEnv",
    "MeanFieldModel",
    "MeanFieldParallelEnv",
    "MeanFieldVectorEnv",
    "NashGap",
    "Population",
    "PopulationFlow",
    "PopulationGap",
    "exact_nash_gap",
    "exactly_solvable",
    "game_of",
    "parallel_env",
    "rollout",
    "solve_equilibrium",
]
