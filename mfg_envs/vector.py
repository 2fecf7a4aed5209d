"""N-agent batched front end: every particle is an agent; one ``step`` moves the whole population.

Built by ``gym.make_vec(env_id, num_envs=N)`` (the registered ``vector_entry_point``) for the
single-population ids. It is a Gymnasium ``VectorEnv`` whose sub-environments are the ``N`` agents of
one shared game.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mfg_envs.core import MeanFieldModel, PopulationFlow, check_actions
from mfg_envs.env import game_observation_space, make_game
from mfg_envs.rendering import Renderer


class MeanFieldVectorEnv(gym.vector.VectorEnv):
    """All ``num_envs = N`` particles of one population as a batched Gymnasium vector env.

    ``step(actions)`` takes ``(N, d_a)`` normalized actions (clipped to ``[-1, 1]``; NaN, inf or a
    wrong shape raise ``ValueError``) and returns batched observations, ``(N,)`` rewards and flags.
    All agents end their episode together after ``n_steps``. ``population`` and ``time`` in the
    observation are read-only broadcast views of one shared array (copy them before writing).

    Autoreset: ``autoreset_mode="next_step"`` (Gymnasium's default: the step after the last one
    resets and ignores its actions) or ``"same_step"`` (the last step returns the reset
    observation and puts the terminal one in ``info["final_obs"]``).
    """

    # Not a ClassVar: the base class declares ``metadata`` as an (overridable) instance attribute.
    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["human", "rgb_array"],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        model_class: type[MeanFieldModel],
        env_id: str,
        num_envs: int = 1000,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "n_particles" in kwargs and kwargs["n_particles"] != num_envs:
            raise ValueError("n_particles must equal num_envs in the batched env (every particle is an agent)")
        modes: dict[str | AutoresetMode, AutoresetMode] = {
            "next_step": AutoresetMode.NEXT_STEP,
            "same_step": AutoresetMode.SAME_STEP,
        }
        mode = modes.get(autoreset_mode, autoreset_mode)
        if mode not in modes.values():
            raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step', got {autoreset_mode!r}")
        self.game = make_game(model_class, env_id, {**kwargs, "n_particles": num_envs})
        self.population = self.game.members[0]
        self.model = self.population.model
        self._renderer = Renderer(render_mode, self.metadata["render_modes"], self.metadata["render_fps"])
        self.num_envs = self.population.n_particles
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.single_observation_space = game_observation_space(self.game, 0)
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.model.action_dim,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = self._needs_reset = False

    def set_population_flow(self, flow: PopulationFlow | None) -> None:
        """Freeze the mean field to ``flow`` (from the next reset): every agent then plays against it."""
        self.population.freeze(flow)

    @cached_property
    def observation_space(self) -> spaces.Space:  # type: ignore[override]
        # Built on first use: for N = 10^6 agents its bounds alone take hundreds of MB.
        return batch_space(self.single_observation_space, self.num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.game.reset([self.np_random])
        self._started, self._needs_reset = True, False
        if self.render_mode == "human":
            self.render()
        return self.game.observation(0), {}

    def step(self, actions: Any):
        n = self.num_envs
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._needs_reset:
            obs, info = self.reset()
            return obs, np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), info
        normalized = check_actions(actions, (n, self.model.action_dim), "actions")
        rewards = self.game.step([normalized], [self.model.noise(n, self.np_random)])[0]
        done = self.game.done
        if self.render_mode == "human":
            self.render()
        terminated = np.full(n, done)
        obs, info = self.game.observation(0), {}
        if done:
            if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
                info = {"final_obs": obs, "final_info": {}, "_final_obs": np.ones(n, dtype=bool)}
                obs, _ = self.reset()
            else:
                self._needs_reset = True
        return obs, rewards, terminated, np.zeros(n, dtype=bool), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]  # one frame of the whole population, not one per env
        """The whole population at the current step (``rgb_array``: an ``H x W x 3`` uint8 frame; ``human``: a
        window, drawn by ``reset`` and ``step``). No agent is singled out."""
        return self._renderer.render(self.population)

    def close_extras(self, **kwargs: Any) -> None:
        self._renderer.close()
