"""Self-play: the particles of one population are the ``n_envs`` agents of a Stable-Baselines3 ``VecEnv``.

Every learning particle is one SB3 sub-environment of the same game, so one forward pass of the
shared policy acts for all of them and each env step stores ``n_learners`` transitions. The
population is the batched :class:`mfg_envs.MeanFieldVectorEnv` (``autoreset_mode="same_step"``,
SB3's convention: the step that ends the episode returns the first observation of the next one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from mfg_envs import MeanFieldVectorEnv
from mfg_envs.core import Population, PopulationFlow, PopulationPolicy, check_actions, check_int


def learner_rows(obs: dict[str, np.ndarray], n_learners: int) -> dict[str, np.ndarray]:
    """Writable copies of the first ``n_learners`` rows (the env returns read-only broadcast views)."""
    return {key: np.array(value[:n_learners]) for key, value in obs.items()}


def episode_end_infos(final_obs: dict[str, np.ndarray], n_learners: int, truncated: np.ndarray) -> list[dict[str, Any]]:
    """SB3's infos of the step that ends an episode: each learner's own terminal observation (and time-limit flag)."""
    final = learner_rows(final_obs, n_learners)
    return [
        {"terminal_observation": {key: value[i] for key, value in final.items()}, "TimeLimit.truncated": bool(cut)}
        for i, cut in enumerate(truncated[:n_learners])
    ]


class SharedGameVecEnv(VecEnv):
    """A ``VecEnv`` whose sub-environments are particles of ONE shared game.

    ``get_attr``, ``set_attr`` and ``env_method`` act once on the object :meth:`_target` names and
    return one entry per requested index. Subclasses define :meth:`_target`.
    """

    def _target(self, name: str) -> Any:
        raise NotImplementedError

    def _count(self, indices: VecEnvIndices) -> int:
        if indices is None:
            return self.num_envs
        return 1 if isinstance(indices, int) else len(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the shared game, once per requested index (every particle sees the same game)."""
        return [getattr(self._target(attr_name), attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the attribute on the shared game (``indices`` are accepted for API compatibility)."""
        setattr(self._target(attr_name), attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the method of the shared game once; its result is repeated for every requested index."""
        result = getattr(self._target(method_name), method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


class SelfPlayVecEnv(SharedGameVecEnv):
    """SB3 ``VecEnv`` over the ``n_particles`` particles of one mean field game (parameter sharing).

    Particles ``0 .. n_learners-1`` are the ``num_envs`` SB3 environments and act with the actions
    SB3 passes to :meth:`step_async`; particles ``n_learners .. n_particles-1`` act with the
    population policy, in one batched call (:meth:`set_population_policy`; default: the neutral
    policy, normalized action 0). All particles make the mean field. With
    ``n_learners = n_particles`` (the default) every particle learns: the population is the
    learner itself and training is self-consistent by construction; with fewer learners,
    ``set_population_policy(ModelPolicy(model))`` makes the others play the live shared policy
    deterministically (``python -m sb3_meanfield.train`` does so).

    ``get_attr``, ``set_attr`` and ``env_method`` act once on the shared game (this object for
    :meth:`set_population_policy`, else the batched env: ``get_attr("population")`` is its
    :class:`mfg_envs.Population`) and return one entry per requested index.

    :param env_id: a registered ``mfg_envs`` id (``import mfg_envs`` registers them).
    :param n_particles: population size ``N >= 1``.
    :param n_learners: learning particles, ``1 <= n_learners <= n_particles`` (default ``N``).
    :param env_kwargs: model keywords, as for ``gym.make(env_id, **env_kwargs)``.
    """

    def __init__(self, env_id: str, n_particles: int = 1000, n_learners: int | None = None, **env_kwargs: Any) -> None:
        n_particles = check_int("n_particles", n_particles)
        n_learners = n_particles if n_learners is None else check_int("n_learners", n_learners)
        if n_learners > n_particles:
            raise ValueError(f"n_learners must be in [1, n_particles={n_particles}], got {n_learners}")
        batched = gym.make_vec(env_id, num_envs=n_particles, autoreset_mode="same_step", **env_kwargs)
        if not isinstance(batched, MeanFieldVectorEnv):
            raise ValueError(f"env_id must be an mfg_envs id with a batched front end, got {env_id!r}")
        self._attach(batched, env_id, n_learners)

    @classmethod
    def against_flow(cls, population: Population, flow: PopulationFlow, n_learners: int) -> SelfPlayVecEnv:
        """``n_learners`` learning agents of ``population``'s model playing against the frozen ``flow``.

        The best-response problem with one shared policy: ``n_learners`` transitions per env step.
        """
        batched = MeanFieldVectorEnv.from_population(population, check_int("n_learners", n_learners), "same_step")
        batched.set_population_flow(flow)
        venv = cls.__new__(cls)
        venv._attach(batched, "frozen flow", n_learners)
        return venv

    def _attach(self, batched: MeanFieldVectorEnv, env_id: str, n_learners: int) -> None:
        self.batched_env = batched
        self.env_id = env_id
        self.n_particles, self.n_learners = batched.num_envs, n_learners
        self._obs: dict[str, np.ndarray] = {}
        self._actions = np.zeros((n_learners, batched.model.action_dim))
        super().__init__(n_learners, batched.single_observation_space, batched.single_action_space)

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None) -> None:
        """Make the non-learning particles follow ``policy`` (batched obs -> normalized actions; ``None``: neutral)."""
        self.batched_env.population.set_policy(policy)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        self._obs, _ = self.batched_env.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return learner_rows(self._obs, self.n_learners)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, (self.n_learners, self.batched_env.model.action_dim), "actions")

    def step_wait(self) -> VecEnvStepReturn:
        n = self.n_learners
        actions = self._actions
        if n < self.n_particles:
            actions = np.concatenate([actions, self.batched_env.population.policy_actions(slice(n, None))])
        self._obs, rewards, terminated, truncated, info = self.batched_env.step(actions)
        dones = (terminated | truncated)[:n]
        infos: list[dict[str, Any]] = [{} for _ in range(n)]
        if dones[0]:  # all particles end their episode together; SB3 reads each env's terminal observation
            infos = episode_end_infos(info["final_obs"], n, truncated & ~terminated)
        return learner_rows(self._obs, n), rewards[:n].astype(np.float32), dones, infos

    def close(self) -> None:
        self.batched_env.close()

    def _target(self, name: str) -> Any:
        # The particles share one game: population-level names resolve here first, then on the batched env.
        return self if name in type(self).__dict__ else self.batched_env
