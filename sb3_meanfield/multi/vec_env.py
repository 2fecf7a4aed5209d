"""One population of a multi-population game as a Stable-Baselines3 ``VecEnv`` (the multi-population self-play).

:class:`PopulationVecEnv` ``(game, k, n_learners)``: the SB3 environments are the first ``n_learners``
particles of population ``k`` of ONE shared :class:`mfg_envs.multi_population.MultiPopulation`. Every step
moves the whole game: population ``k``'s learners act with SB3's actions, every other particle of every
population with its population's policy (``game.set_policy(j, ModelPolicy(model_j))`` makes population ``j``
follow its own live model). Several ``PopulationVecEnv`` of one game share its clock and its random
generators; :func:`step_populations` steps the game once with the learners of several populations at once.
Conventions as :class:`~sb3_meanfield.common.vec_env.SelfPlayVecEnv`: writable learner rows, autoreset on
the same step (the last step returns the next episode's first observation and puts the terminal one in
each learner's ``info["terminal_observation"]``).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from mfg_envs.core import PopulationFlow, PopulationPolicy, check_actions, check_int
from mfg_envs.multi_env import game_observation_space
from mfg_envs.multi_population import MultiPopulation, game_of, population_rngs
from sb3_meanfield.common.vec_env import SharedGameVecEnv, episode_end_infos, learner_rows

#: One list of per-population generators per game, shared by all of its ``PopulationVecEnv``.
_GENERATORS: weakref.WeakKeyDictionary[MultiPopulation, list[np.random.Generator]] = weakref.WeakKeyDictionary()


class PopulationVecEnv(SharedGameVecEnv):
    """SB3 ``VecEnv`` over the first ``n_learners`` particles of population ``population`` of a shared game.

    :param game: the multi-population core (or an env whose ``unwrapped.game`` it is), shared with the
        ``PopulationVecEnv`` of the other populations.
    :param population: the learning population, by name or index.
    :param n_learners: learning particles, ``1 <= n_learners <=`` the population's size (default: all).

    ``reset`` restarts the WHOLE game: initial states and noise come from one generator per population
    (:func:`mfg_envs.multi_population.population_rngs` of the seed given to :meth:`seed`; without a seed the
    game's generators go on). ``get_attr``/``set_attr``/``env_method`` resolve names on this object
    (``game``, ``population_index``, ``n_learners``, :meth:`set_population_policy`, ...) and otherwise on the game.
    """

    render_mode: ClassVar[None] = None

    def __init__(self, game: Any, population: str | int = 0, n_learners: int | None = None) -> None:
        self.game = game_of(game)
        self.population_index = k = self.game.model.index(population)
        size = self.game.n_particles[k]
        self.n_learners = size if n_learners is None else check_int("n_learners", n_learners)
        if self.n_learners > size:
            raise ValueError(f"n_learners must be in [1, {size}] (the size of population {self.name!r})")
        self._actions = np.zeros((self.n_learners, self.game.model.populations[k].action_dim))
        action_space = spaces.Box(-1.0, 1.0, self._actions.shape[1:], np.float32)
        super().__init__(self.n_learners, game_observation_space(self.game, k), action_space)

    @property
    def name(self) -> str:
        return self.game.names[self.population_index]

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None) -> None:
        """Make this population's non-learning particles follow ``policy`` (``None``: neutral)."""
        self.game.set_policy(self.population_index, policy)

    def set_population_flow(self, flows: Sequence[PopulationFlow] | None) -> None:
        """Freeze every population to its flow from the next reset (``None``: unfreeze)."""
        self.game.freeze(flows)

    def observe(self) -> dict[str, np.ndarray]:
        """The learners' current observations (writable copies), without moving the game."""
        return learner_rows(self.game.observation(self.population_index, slice(0, self.n_learners)), self.n_learners)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        if seed is not None or self.game not in _GENERATORS:
            _GENERATORS[self.game] = population_rngs(seed, len(self.game.members))
        self.game.reset(_GENERATORS[self.game])
        self._reset_seeds()
        self._reset_options()
        return self.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, self._actions.shape, "actions")

    def step_wait(self) -> VecEnvStepReturn:
        return step_populations([self], [self._actions])[0]

    def close(self) -> None:
        pass

    def _target(self, name: str) -> Any:
        # One shared game: names of this object (class or instance) first, then the game's.
        return self if hasattr(type(self), name) or name in vars(self) else self.game


def population_envs(game: Any, n_learners: int | None = None) -> list[PopulationVecEnv]:
    """One :class:`PopulationVecEnv` per population of ``game`` (in the order of ``names``), all on that game."""
    core = game_of(game)
    return [PopulationVecEnv(core, k, n_learners) for k in range(len(core.members))]


def step_populations(venvs: Sequence[PopulationVecEnv], actions: Sequence[np.ndarray]) -> list[VecEnvStepReturn]:
    """Move the shared game of ``venvs`` by ONE step and return every venv's SB3 step ``(obs, rewards, dones, infos)``.

    ``venvs[i]``'s learners act with ``actions[i]`` (at most one venv per population); every other particle
    of every population acts with its population's policy, in one batched call per population.
    """
    game = venvs[0].game
    if any(venv.game is not game for venv in venvs):
        raise ValueError("the venvs must share one game")
    learners = {
        venv.population_index: check_actions(a, venv._actions.shape, "actions") for venv, a in zip(venvs, actions)
    }
    if len(learners) != len(venvs):
        raise ValueError("at most one PopulationVecEnv per population can act in a step")
    rngs = _GENERATORS.get(game)
    if rngs is None or game.members[0].states.shape[0] == 0:
        raise RuntimeError("call reset() before step(): the game has not started")
    batches, noises = [], []
    for k, member in enumerate(game.members):  # a loop over populations, each batched
        n_alive = member.states.shape[0]
        own = learners.get(k, np.zeros((0, member.model.action_dim)))
        if own.shape[0] < n_alive:
            own = np.concatenate([own, game.policy_actions(k, slice(own.shape[0], None))])
        batches.append(own)
        noises.append(member.model.noise(n_alive, rngs[k]))
    rewards = game.step(batches, noises)
    done = game.done
    finals = [venv.observe() for venv in venvs] if done else None
    if done:  # same-step autoreset: the generators go on
        game.reset(rngs)
    results = []
    for i, venv in enumerate(venvs):
        n = venv.n_learners
        infos = episode_end_infos(finals[i], n, np.zeros(n, dtype=bool)) if done else [{} for _ in range(n)]
        results.append((venv.observe(), rewards[venv.population_index][:n].astype(np.float32), np.full(n, done), infos))
    return results
