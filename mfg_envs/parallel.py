"""PettingZoo front end: every particle of every population is a named agent of a ``ParallelEnv``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from mfg_envs.core import MeanFieldModel, check_actions, check_int
from mfg_envs.env import check_render_mode, game_observation_space, make_game
from mfg_envs.game import GameModel, per_population
from mfg_envs.rendering import Renderer


def check_every_agent_acts(agents: list[str], actions: dict[str, Any]) -> None:
    """A step needs a live episode (else ``RuntimeError``) and exactly one action per live agent: a missing agent or
    a name that is no live agent raises ``ValueError``."""
    if not agents:
        raise RuntimeError("call reset() before step(): the episode has ended or never started")
    missing = set(agents) - set(actions)
    if missing:
        raise ValueError(f"actions is missing {len(missing)} live agent(s), e.g. {sorted(missing)[0]}")
    unknown = set(actions) - set(agents)
    if unknown:
        example = sorted(unknown, key=str)[0]
        raise ValueError(
            f"actions names {len(unknown)} agent(s) that are not live agents, e.g. {example!r} "
            f"(the agents are {agents[0]!r} .. {agents[-1]!r})"
        )


class MeanFieldParallelEnv(ParallelEnv):
    """Every particle as a PettingZoo agent: ``agent_0 .. agent_{N-1}`` for one population, ``<population>_<index>``
    for several (``n_agents``: one int, or one per population).

    Agents observe ``Dict(state, population, time)`` (their own state and every population's entry) and act in
    their population's ``Box(-1, 1)``; all act simultaneously and terminate together after ``n_steps``. Actions
    are validated and clipped exactly as in the Gymnasium env. The dict API costs one Python entry per agent: for
    large populations use the batched env (``gym.make_vec``) or the SB3 vec env.
    """

    # Not a ClassVar: the base class declares ``metadata`` as an (overridable) instance attribute.
    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["human", "rgb_array"],
        "render_fps": 10,
        "name": "mfg_parallel_v0",
        "is_parallelizable": True,
    }

    def __init__(
        self,
        model_class: type[MeanFieldModel] | type[GameModel],
        env_id: str,
        n_agents: int | Sequence[int] = 100,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "n_particles" in kwargs:  # the population IS the agents: its size is n_agents
            raise ValueError(
                f"parallel_env takes n_agents (the number of agents, every particle is one), not n_particles; "
                f"got n_particles={kwargs['n_particles']!r}"
            )
        n_populations = len(model_class.names) if issubclass(model_class, GameModel) else 1
        sizes = [check_int("n_agents", n) for n in per_population("n_agents", n_agents, n_populations)]
        self.game = game = make_game(model_class, env_id, {**kwargs, "n_particles": sizes})
        check_render_mode(game, render_mode)
        self.population = game.members[0]  # the (first) population: its particles, policy and frozen flow
        self.model = self.population.model
        self._renderer = Renderer(render_mode, self.metadata["render_modes"], self.metadata["render_fps"])
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "name": env_id}
        if len(game.members) == 1:
            self._agent_names = [[f"agent_{i}" for i in range(game.n_particles[0])]]
        else:
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
        if self.render_mode == "human":
            self.render()
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
        if self.render_mode == "human":
            self.render()
        if done:
            self.agents = []
        return (
            self._observations(),
            dict(zip(agents, rewards.tolist())),
            {agent: done for agent in agents},
            {agent: False for agent in agents},
            {agent: {} for agent in agents},
        )

    def render(self) -> np.ndarray | None:
        """The whole population at the current step (``rgb_array``: an ``H x W x 3`` uint8 frame; ``human``: a
        window, drawn by ``reset`` and ``step``). No agent is singled out."""
        return self._renderer.render(self.game.members[0])

    def close(self) -> None:
        self._renderer.close()

    def state(self) -> np.ndarray:
        """The global state: every particle's state, ``(N, d_s)`` for one population; several populations'
        states flattened and concatenated (they may differ in size)."""
        members = self.game.members
        if len(members) == 1:
            return members[0].states.astype(np.float32)
        return np.concatenate([member.states.ravel() for member in members]).astype(np.float32)

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
