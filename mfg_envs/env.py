"""Single-agent front end: the learner is one particle of the population (the representative agent)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mfg_envs.core import (
    MeanFieldModel,
    Population,
    PopulationFlow,
    PopulationPolicy,
    check_actions,
    rollout,
    split_keywords,
)
from mfg_envs.rendering import Renderer


def observation_space(model: MeanFieldModel, n_features: int, representation: str) -> spaces.Dict:
    """``Dict(state, population, time)`` of one agent."""
    if representation == "moments":
        population = spaces.Box(-np.inf, np.inf, (n_features,), np.float32)
    else:
        population = spaces.Box(0.0, 1.0, (n_features,), np.float32)
    return spaces.Dict(
        {
            "state": spaces.Box(model.state_low.astype(np.float32), model.state_high.astype(np.float32)),
            "population": population,
            "time": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )


def make_population(model_class: type[MeanFieldModel], env_id: str, kwargs: dict[str, Any]) -> Population:
    """Build the model from its keywords and the population core around it."""
    core_keywords = {
        key: kwargs.pop(key) for key in ("n_particles", "population_representation", "kde_bandwidth") if key in kwargs
    }
    model = model_class(**split_keywords(model_class, kwargs, env_id))
    return Population(
        model,
        core_keywords.get("n_particles", 1000),
        core_keywords.get("population_representation", "histogram"),
        core_keywords.get("kde_bandwidth", 1.0),
    )


class MeanFieldEnv(gym.Env):
    """Gymnasium env of one representative agent among ``n_particles`` (base of every model's env).

    Particle 0 is the learner and moves under the action passed to :meth:`step`; particles
    ``1..N-1`` move under the population policy (default: the neutral policy, normalized
    action 0 for everyone), evaluated on all of them in one batched call. All ``N`` particles make the
    population histogram and the mean field that the learner observes and is paid against.

    Population-level API (reach it through wrappers with ``env.unwrapped`` or SB3's ``env_method``):

    - :meth:`set_population_policy` ``(fn)``: ``fn(obs) -> actions`` on a batched observation dict
      (``state`` ``(M, d_s)``, ``population`` ``(M, k)``, ``time`` ``(M, 1)``) returning ``(M, d_a)``
      normalized actions; ``None`` restores the neutral policy.
    - :meth:`record_population_flow` ``(policy, seed)``: simulate every particle under ``policy``
      for a whole episode and return the :class:`PopulationFlow`.
    - :meth:`set_population_flow` ``(flow)``: freeze the population to a recorded flow; the learner
      then plays alone against it (best responses, reproducible evaluation). ``None`` unfreezes.

    Actions are normalized to ``[-1, 1]`` and rescaled to the physical bounds inside the env;
    finite actions outside the box are clipped (Gymnasium's convention for ``Box`` actions), NaN,
    inf or a wrong shape raise ``ValueError``. The episode terminates after ``n_steps`` steps
    (the horizon is part of the model; the last reward includes the terminal reward).
    """

    model_class: ClassVar[type[MeanFieldModel]]
    env_id: ClassVar[str]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self._renderer = Renderer(render_mode, self.metadata["render_modes"], self.metadata["render_fps"])
        self.render_mode = render_mode
        self._attach(make_population(self.model_class, self.env_id, dict(kwargs)))

    @classmethod
    def from_population(cls, population: Population, n_particles: int | None = None) -> MeanFieldEnv:
        """A new env over the same model and population representation (``n_particles`` defaults to the same)."""
        env = cls.__new__(cls)
        env.render_mode, env._renderer = None, Renderer(None, cls.metadata["render_modes"], cls.metadata["render_fps"])
        env._attach(
            Population(
                population.model,
                n_particles or population.n_particles,
                population.representation,
                population.kde_bandwidth,
            )
        )
        return env

    def _attach(self, population: Population) -> None:
        self.population = population
        self.model = self.population.model
        self.observation_space = observation_space(
            self.model, self.population.n_features, self.population.representation
        )
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.action_dim,), np.float32)

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None) -> None:
        """Make particles ``1..N-1`` follow ``policy`` (``None``: the neutral policy)."""
        self.population.set_policy(policy)

    def record_population_flow(self, policy: PopulationPolicy | None = None, seed: int | None = None) -> PopulationFlow:
        """Simulate all ``n_particles`` under ``policy`` (default: the current population policy) for one episode."""
        pop = self.population
        recorder = Population(self.model, pop.n_particles, pop.representation, pop.kde_bandwidth)
        return rollout(recorder, policy or self.population.policy, np.random.default_rng(seed))[0]

    def set_population_flow(self, flow: PopulationFlow | None) -> None:
        """Freeze the population to ``flow`` (takes effect at the next ``reset``); ``None`` unfreezes."""
        self.population.freeze(flow)
        self._needs_reset = True

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        pop = self.population
        pop.reset(self.np_random, n_particles=1 if pop.flow is not None else None)
        self._needs_reset = False
        if self.render_mode == "human":
            self.render()
        return self._observation(), {}

    def step(self, action: Any):
        if getattr(self, "_needs_reset", True) or self.population.done:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        pop, model = self.population, self.model
        actions = check_actions(action, self.action_space.shape)[None, :]
        n_alive = pop.states.shape[0]
        if n_alive > 1:
            actions = np.concatenate([actions, pop.policy_actions(slice(1, None))])
        rewards = pop.step(actions, model.noise(n_alive, self.np_random))
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(rewards[0]), pop.done, False, {}

    def render(self) -> np.ndarray | None:
        """The population at the current step (:mod:`mfg_envs.rendering`), the learner (particle 0) in red.

        ``rgb_array``: an ``H x W x 3`` uint8 frame; ``human``: shown in a window (called by ``reset`` and
        ``step``), returns ``None``. Each model chooses the picture: see its ``render_scene``.
        """
        return self._renderer.render(self.population, learner_index=0)

    def close(self) -> None:
        self._renderer.close()

    def _observation(self) -> dict[str, np.ndarray]:
        pop = self.population
        return {
            "state": pop.states[0].astype(np.float32),
            "population": pop.features.copy(),
            "time": np.array([pop.time], dtype=np.float32),
        }
