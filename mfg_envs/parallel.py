"""PettingZoo front end: the ``N`` particles as ``N`` named agents of a ``ParallelEnv``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from mfg_envs.core import MeanFieldModel, check_actions, check_int
from mfg_envs.env import make_population, observation_space
from mfg_envs.rendering import Renderer


def check_every_agent_acts(agents: list[str], actions: dict[str, Any]) -> None:
    """A step needs a live episode (else ``RuntimeError``) and an action per live agent (else ``ValueError``)."""
    if not agents:
        raise RuntimeError("call reset() before step(): the episode has ended or never started")
    missing = set(agents) - set(actions)
    if missing:
        raise ValueError(f"actions is missing {len(missing)} live agent(s), e.g. {sorted(missing)[0]}")


def step_result(agents: list[str], observations: dict[str, Any], rewards: np.ndarray, done: bool) -> tuple:
    """PettingZoo's ``(observations, rewards, terminations, truncations, infos)`` of the agents that acted."""
    return (
        observations,
        dict(zip(agents, rewards.tolist())),
        {agent: done for agent in agents},
        {agent: False for agent in agents},
        {agent: {} for agent in agents},
    )


class MeanFieldParallelEnv(ParallelEnv):
    """``n_agents`` agents ``agent_0 .. agent_{N-1}``, each one particle of the population.

    Every agent observes ``Dict(state, population, time)`` (the shared histogram) and acts in
    ``Box(-1, 1)``; all agents act simultaneously, and all terminate together after ``n_steps``.
    Actions are validated and clipped exactly as in the Gymnasium env. The dict API costs one
    Python entry per agent: for large populations use the batched env (``gym.make_vec``).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 10,
        "name": "mfg_parallel_v0",
        "is_parallelizable": True,
    }

    def __init__(
        self,
        model_class: type[MeanFieldModel],
        env_id: str,
        n_agents: int = 100,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._renderer = Renderer(render_mode, self.metadata["render_modes"], self.metadata["render_fps"])
        kwargs["n_particles"] = check_int("n_agents", n_agents)
        self.population = make_population(model_class, env_id, kwargs)
        self.model = self.population.model
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "name": env_id}
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self._observation_space = observation_space(
            self.model, self.population.n_features, self.population.representation
        )
        self._action_space = spaces.Box(-1.0, 1.0, (self.model.action_dim,), np.float32)
        self.np_random, _ = seeding.np_random()

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.population.reset(self.np_random)
        self.agents = list(self.possible_agents)
        if self.render_mode == "human":
            self.render()
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]):
        check_every_agent_acts(self.agents, actions)
        shape = (self.model.action_dim,)
        batch = np.stack([check_actions(actions[agent], shape, f"action of {agent}") for agent in self.agents])
        rewards = self.population.step(batch, self.model.noise(len(self.agents), self.np_random))
        done = self.population.done
        if self.render_mode == "human":
            self.render()
        agents = self.agents
        if done:
            self.agents = []
        return step_result(agents, self._observations(), rewards, done)

    def render(self) -> np.ndarray | None:
        """The whole population at the current step (``rgb_array``: an ``H x W x 3`` uint8 frame; ``human``: a
        window, drawn by ``reset`` and ``step``). No agent is singled out."""
        return self._renderer.render(self.population)

    def close(self) -> None:
        self._renderer.close()

    def state(self) -> np.ndarray:
        """The global state: every particle's state, ``(N, d_s)``."""
        return self.population.states.astype(np.float32)

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        pop = self.population
        states = pop.states.astype(np.float32)
        time = np.array([pop.time], dtype=np.float32)
        return {
            agent: {"state": states[i], "population": pop.features.copy(), "time": time.copy()}
            for i, agent in enumerate(self.possible_agents)
        }
