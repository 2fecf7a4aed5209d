"""Front ends of a multi-population game: one learner among all populations (Gymnasium), every particle an agent
(PettingZoo, agents named ``<population>_<index>``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from mfg_envs.core import POPULATION_REPRESENTATIONS, PopulationFlow, PopulationPolicy, check_actions, split_keywords
from mfg_envs.env import observation_space
from mfg_envs.multi_population import MultiPopulation, MultiPopulationModel, rollout_joint
from mfg_envs.parallel import check_every_agent_acts, step_result

CORE_KEYWORDS = ("n_particles", "population_representation", "kde_bandwidth")


def make_game(model_class: type[MultiPopulationModel], env_id: str, kwargs: dict[str, Any]) -> MultiPopulation:
    """Build the game from its keywords and the multi-population core around it."""
    core = {key: kwargs.pop(key) for key in CORE_KEYWORDS if key in kwargs}
    model = model_class(**split_keywords(model_class, kwargs, env_id))
    representation = core.get("population_representation", "histogram")
    if representation not in POPULATION_REPRESENTATIONS:
        raise ValueError(
            f"population_representation must be one of {POPULATION_REPRESENTATIONS}, got {representation!r}"
        )
    return MultiPopulation(model, core.get("n_particles", 1000), representation, core.get("kde_bandwidth", 1.0))


def game_observation_space(game: MultiPopulation, population: int) -> spaces.Dict:
    """``Dict(state, population, time)`` of an agent of ``population``: its own state, every population's entry."""
    return observation_space(game.model.populations[population], game.n_features, game.representation)


def policies_in_order(game: MultiPopulation, policies: Mapping[str, PopulationPolicy] | Sequence[PopulationPolicy]):
    """One policy per population, in the game's order, from a sequence or a ``{name: policy}`` mapping."""
    if isinstance(policies, Mapping):
        unknown = sorted(set(policies) - set(game.names))
        if unknown:
            raise ValueError(f"unknown population(s) {unknown}; the populations are {game.names}")
        return [policies.get(name, member.policy) for name, member in zip(game.names, game.members)]
    if len(policies) != len(game.members):
        raise ValueError(f"policies must hold one policy per population {game.names}")
    return list(policies)


class MultiPopulationEnv(gym.Env):
    """Gymnasium env of one representative agent of population ``learner_population`` among all populations.

    Particle 0 of the learner's population moves under the action passed to :meth:`step`; every other
    particle of every population follows its population's policy (default: neutral), evaluated per
    population in one batched call. The observation holds the learner's own state, every population's
    entry (concatenated in the order of ``names``) and ``t_n / T``.

    Population-level API (through wrappers with ``env.unwrapped``, or SB3's ``env_method``):
    :meth:`set_population_policy` ``(policy, population)``, :meth:`record_population_flow` ``(policies, seed)``
    (one flow per population), :meth:`set_population_flow` ``(flows)`` (freeze every population; the learner
    then plays alone against the frozen flows). Actions follow the single-population conventions: normalized
    to ``[-1, 1]``, finite values outside clipped, NaN, inf or a wrong shape raise ``ValueError``.
    """

    model_class: ClassVar[type[MultiPopulationModel]]
    env_id: ClassVar[str]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, learner_population: str | int = 0, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (multi-population envs do not render yet), got {render_mode!r}")
        self.render_mode = render_mode
        self.game = make_game(self.model_class, self.env_id, dict(kwargs))
        self.learner = self.game.model.index(learner_population)
        self.observation_space = game_observation_space(self.game, self.learner)
        action_dim = self.game.model.populations[self.learner].action_dim
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._needs_reset = True

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None, population: str | int | None = None) -> None:
        """Make ``population`` (default: the learner's; its other particles) follow ``policy`` (``None``: neutral)."""
        self.game.set_policy(self.learner if population is None else population, policy)

    def record_population_flow(
        self,
        policies: Mapping[str, PopulationPolicy] | Sequence[PopulationPolicy] | None = None,
        seed: int | None = None,
    ) -> tuple[PopulationFlow, ...]:
        """Simulate every population (current policies, or ``policies`` by name or in order) for one episode."""
        game = self.game
        recorder = MultiPopulation(game.model, game.n_particles, game.representation, game.kde_bandwidth)
        return rollout_joint(recorder, policies_in_order(game, policies or {}), seed)[0]

    def set_population_flow(self, flows: Sequence[PopulationFlow] | None) -> None:
        """Freeze every population to its flow (from the next ``reset``); ``None`` unfreezes."""
        self.game.freeze(flows)
        self._needs_reset = True

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        game = self.game
        game.reset([self.np_random] * len(game.members), (1,) * len(game.members) if game.frozen else None)
        self._needs_reset = False
        return self._observation(), {}

    def step(self, action: Any):
        if self._needs_reset or self.game.done:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        game = self.game
        learner_action = check_actions(action, self.action_space.shape)[None, :]
        actions, noises = [], []
        for k, member in enumerate(game.members):  # a loop over populations, each batched
            n_alive = member.states.shape[0]
            if k == self.learner:
                others = game.policy_actions(k, slice(1, None)) if n_alive > 1 else learner_action[:0]
                actions.append(np.concatenate([learner_action, others]))
            else:
                actions.append(game.policy_actions(k))
            noises.append(member.model.noise(n_alive, self.np_random))
        rewards = game.step(actions, noises)
        return self._observation(), float(rewards[self.learner][0]), game.done, False, {}

    def _observation(self) -> dict[str, np.ndarray]:
        game = self.game
        return {
            "state": game.members[self.learner].states[0].astype(np.float32),
            "population": game.features.astype(np.float32),
            "time": np.array([game.time], dtype=np.float32),
        }


class MultiPopulationParallelEnv(ParallelEnv):
    """Every particle of every population as a PettingZoo agent, named ``<population>_<index>``.

    Agents of population ``k`` observe ``Dict(state, population, time)`` with their own state and every
    population's entry, and act in their population's ``Box(-1, 1)``; all act simultaneously and terminate
    together. ``n_agents`` is per population (one int, or one per population). The dict API costs one
    Python entry per agent: for large populations train through the batched cores.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "name": "mfg_multi_parallel_v0",
        "is_parallelizable": True,
    }

    def __init__(
        self,
        model_class: type[MultiPopulationModel],
        env_id: str,
        n_agents: int | Sequence[int] = 50,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (multi-population envs do not render yet), got {render_mode!r}")
        self.render_mode = render_mode
        self.game = make_game(model_class, env_id, {**kwargs, "n_particles": n_agents})
        self.metadata = {**self.metadata, "name": env_id}
        game = self.game
        self._agent_names = [[f"{name}_{i}" for i in range(n)] for name, n in zip(game.names, game.n_particles)]
        self.possible_agents = [agent for names in self._agent_names for agent in names]
        self._population_of = {agent: k for k, names in enumerate(self._agent_names) for agent in names}
        self._observation_spaces = [game_observation_space(game, k) for k in range(len(game.names))]
        self._action_spaces = [
            spaces.Box(-1.0, 1.0, (member.action_dim,), np.float32) for member in game.model.populations
        ]
        self.agents: list[str] = []
        self.np_random, _ = seeding.np_random()

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._observation_spaces[self._population_of[agent]]

    def action_space(self, agent: str) -> spaces.Box:
        return self._action_spaces[self._population_of[agent]]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.game.reset([self.np_random] * len(self.game.members))
        self.agents = list(self.possible_agents)
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]):
        check_every_agent_acts(self.agents, actions)
        game = self.game
        batches, noises = [], []
        for k, member in enumerate(game.members):  # a loop over populations; agents enter through the dict API
            shape = (member.model.action_dim,)
            batches.append(np.stack([check_actions(actions[a], shape, f"action of {a}") for a in self._agent_names[k]]))
            noises.append(member.model.noise(member.n_particles, self.np_random))
        rewards = np.concatenate(game.step(batches, noises))
        agents, done = self.agents, game.done
        if done:
            self.agents = []
        return step_result(agents, self._observations(), rewards, done)

    def state(self) -> np.ndarray:
        """The global state: every population's particle states, concatenated (populations may differ in size)."""
        return np.concatenate([member.states.ravel() for member in self.game.members]).astype(np.float32)

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        game = self.game
        time = np.array([game.time], dtype=np.float32)
        features = game.features.astype(np.float32)
        observations = {}
        for k, member in enumerate(game.members):
            states = member.states.astype(np.float32)
            for i, agent in enumerate(self._agent_names[k]):
                observations[agent] = {"state": states[i], "population": features.copy(), "time": time.copy()}
        return observations
