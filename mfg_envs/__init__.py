"""Mean field game environments with continuous actions.

``import mfg_envs`` registers every id with Gymnasium (``gym.make``) and its batched N-agent
version (``gym.make_vec(env_id, num_envs=N)``); :func:`parallel_env` builds the PettingZoo
version.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gymnasium.envs.registration import register

from mfg_envs.core import ConstantPolicy, MeanFieldModel, Population, PopulationFlow
from mfg_envs.crowd import CrowdEnv, CrowdLQEnv
from mfg_envs.crowd_multi import CrowdMultiEnv
from mfg_envs.env import MeanFieldEnv
from mfg_envs.linear_quadratic import LinearQuadraticEnv
from mfg_envs.linear_quadratic_multi import LinearQuadraticMultiEnv
from mfg_envs.multi_env import MultiPopulationEnv, MultiPopulationParallelEnv
from mfg_envs.multi_population import MultiPopulation, MultiPopulationModel
from mfg_envs.parallel import MeanFieldParallelEnv
from mfg_envs.price import PriceEnv
from mfg_envs.resource import ResourceEnv
from mfg_envs.vector import MeanFieldVectorEnv

__version__ = "0.1.0"

ENV_CLASSES: dict[str, type[MeanFieldEnv]] = {
    cls.env_id: cls for cls in (CrowdEnv, CrowdLQEnv, PriceEnv, ResourceEnv, LinearQuadraticEnv)
}
ENV_IDS = tuple(ENV_CLASSES)
MULTI_ENV_CLASSES: dict[str, type[MultiPopulationEnv]] = {
    cls.env_id: cls for cls in (LinearQuadraticMultiEnv, CrowdMultiEnv)
}
#: Multi-population ids (one learner among several populations; PettingZoo agents ``<population>_<index>``).
MULTI_ENV_IDS = tuple(MULTI_ENV_CLASSES)


def env_like(population: Population, n_particles: int | None = None) -> MeanFieldEnv:
    """A single-agent env of ``population``'s model (same parameters and representation)."""
    env_class = next((cls for cls in ENV_CLASSES.values() if cls.model_class is type(population.model)), None)
    if env_class is None:
        raise ValueError(f"no registered env for model {type(population.model).__name__}")
    return env_class.from_population(population, n_particles)


def parallel_env(
    env_id: str, n_agents: int | tuple[int, ...] = 100, **kwargs: Any
) -> MeanFieldParallelEnv | MultiPopulationParallelEnv:
    """PettingZoo ``ParallelEnv`` of ``env_id`` with ``n_agents`` agents (multi-population ids: per population,
    named ``<population>_<index>``); keywords as for ``gym.make``."""
    if env_id in MULTI_ENV_CLASSES:
        return MultiPopulationParallelEnv(MULTI_ENV_CLASSES[env_id].model_class, env_id, n_agents, **kwargs)
    if env_id not in ENV_CLASSES:
        raise ValueError(f"env_id must be one of {ENV_IDS + MULTI_ENV_IDS}, got {env_id!r}")
    return MeanFieldParallelEnv(ENV_CLASSES[env_id].model_class, env_id, n_agents, **kwargs)


for _env_id, _env_class in ENV_CLASSES.items():
    register(
        id=_env_id,
        entry_point=_env_class,
        vector_entry_point=partial(MeanFieldVectorEnv, _env_class.model_class, _env_id),
    )

for _env_id, _env_class in MULTI_ENV_CLASSES.items():
    register(id=_env_id, entry_point=_env_class)

__all__ = [
    "ENV_IDS",
    "MULTI_ENV_IDS",
    "ConstantPolicy",
    "MeanFieldEnv",
    "MeanFieldModel",
    "MeanFieldParallelEnv",
    "MeanFieldVectorEnv",
    "MultiPopulation",
    "MultiPopulationEnv",
    "MultiPopulationModel",
    "MultiPopulationParallelEnv",
    "Population",
    "PopulationFlow",
    "env_like",
    "parallel_env",
]
