"""Single-agent front end: the learner is one particle of one population of the game (the representative agent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mfg_envs.core import MeanFieldModel, PopulationFlow, PopulationPolicy, check_actions, split_keywords
from mfg_envs.game import Game, GameModel, rollout
from mfg_envs.rendering import Renderer

#: Keywords of the population core (every other keyword is the model's).
CORE_KEYWORDS = ("n_particles", "population_representation", "kde_bandwidth")


def observation_space(model: MeanFieldModel, n_features: int, representation: str) -> spaces.Dict:
    """``Dict(state, population, time)`` of one agent of ``model``'s population (``n_features``: all populations)."""
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


def game_observation_space(game: Game, population: int) -> spaces.Dict:
    """The observation space of an agent of ``population``: its own state, every population's entry, the time."""
    return observation_space(game.model.populations[population], game.n_features, game.representation)


def make_game(model_class: type[MeanFieldModel] | type[GameModel], env_id: str, kwargs: dict[str, Any]) -> Game:
    """Build the model (or game) from its keywords and the particle core around it."""
    core = {key: kwargs.pop(key) for key in CORE_KEYWORDS if key in kwargs}
    model = model_class(**split_keywords(model_class, kwargs, env_id))  # type: ignore[arg-type]
    return Game(
        model,
        core.get("n_particles", 1000),
        core.get("population_representation", "histogram"),
        core.get("kde_bandwidth", 1.0),
    )


def check_render_mode(game: Game, render_mode: str | None) -> None:
    """Several populations do not render yet: their ``render_mode`` must be ``None``."""
    if render_mode is not None and len(game.members) > 1:
        raise ValueError(f"render_mode must be None (multi-population envs do not render yet), got {render_mode!r}")


class MeanFieldEnv(gym.Env):
    """Gymnasium env of one representative agent of ``learner_population`` (base of every model's env).

    Particle 0 of the learner's population moves under the action passed to :meth:`step`; every other particle of
    every population moves under its population's policy (default: the neutral policy, normalized action 0),
    evaluated per population in one batched call. All particles make the population histograms and the mean
    field that the learner observes and is paid against; with several populations the observation's
    ``population`` entry concatenates every population's entry in the order of the game's ``names``.

    Population-level API (reach it through wrappers with ``env.unwrapped`` or SB3's ``env_method``):

    - :meth:`set_population_policy` ``(fn, population=None)``: ``fn(obs) -> actions`` on a batched observation
      dict (``state`` ``(M, d_s)``, ``population`` ``(M, k)``, ``time`` ``(M, 1)``) returning ``(M, d_a)``
      normalized actions; ``None`` restores the neutral policy. ``population`` defaults to the learner's.
    - :meth:`record_population_flow` ``(policy, seed)``: simulate every particle under ``policy`` for a whole
      episode and return the :class:`PopulationFlow` (several populations: one per population; ``policy`` by
      name or in order).
    - :meth:`set_population_flow` ``(flow)``: freeze the population (several: one flow each) to a recorded
      flow; the learner then plays alone against it (best responses, reproducible evaluation). ``None``
      unfreezes.

    Actions are normalized to ``[-1, 1]`` and rescaled to the physical bounds inside the env;
    finite actions outside the box are clipped (Gymnasium's convention for ``Box`` actions), NaN,
    inf or a wrong shape raise ``ValueError``. The episode terminates after ``n_steps`` steps
    (the horizon is part of the model; the last reward includes the terminal reward).
    """

    model_class: ClassVar[type[MeanFieldModel] | type[GameModel]]
    env_id: ClassVar[str]
    action_space: spaces.Box  # always the normalized Box(-1, 1, (d_a,)) built in __init__
    # Not a ClassVar: the base class declares ``metadata`` as an (overridable) instance attribute.
    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(self, render_mode: str | None = None, *, learner_population: str | int = 0, **kwargs: Any) -> None:
        self.game = make_game(self.model_class, self.env_id, dict(kwargs))
        check_render_mode(self.game, render_mode)
        self._renderer = Renderer(render_mode, self.metadata["render_modes"], self.metadata["render_fps"])
        self.render_mode = render_mode
        self.learner = self.game.model.index(learner_population)
        self.population = self.game.members[self.learner]
        self.model = self.population.model
        self.observation_space = game_observation_space(self.game, self.learner)
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.action_dim,), np.float32)
        self._needs_reset = True

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None, population: str | int | None = None) -> None:
        """Make ``population`` (default: the learner's, its particles ``1..N-1``) follow ``policy`` (``None``:
        the neutral policy)."""
        self.game.set_policy(self.learner if population is None else population, policy)

    def record_population_flow(
        self,
        policy: PopulationPolicy | Mapping[str, PopulationPolicy] | Sequence[PopulationPolicy] | None = None,
        seed: int | None = None,
    ) -> PopulationFlow | tuple[PopulationFlow, ...]:
        """Simulate all particles under ``policy`` (default: the current population policies) for one episode: the
        flow, or one flow per population."""
        policies = self.game.policies_in_order({} if policy is None else policy)  # the current ones by default
        flows = rollout(self.game.clone(), policies, seed)[0]
        return flows[0] if len(flows) == 1 else flows

    def set_population_flow(self, flow: PopulationFlow | Sequence[PopulationFlow] | None) -> None:
        """Freeze the population(s) to ``flow`` (one per population; takes effect at the next ``reset``);
        ``None`` unfreezes."""
        self.game.freeze((flow,) if isinstance(flow, PopulationFlow) else flow)
        self._needs_reset = True

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        game = self.game
        game.reset([self.np_random] * len(game.members), (1,) * len(game.members) if game.frozen else None)
        self._needs_reset = False
        if self.render_mode == "human":
            self.render()
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
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(rewards[self.learner][0]), game.done, False, {}

    def render(self) -> np.ndarray | None:
        """The population at the current step (:mod:`mfg_envs.rendering`), the learner (particle 0) in red.

        ``rgb_array``: an ``H x W x 3`` uint8 frame; ``human``: shown in a window (called by ``reset`` and
        ``step``), returns ``None``. Each model chooses the picture: see its ``render_scene``.
        """
        return self._renderer.render(self.population, learner_index=0)

    def close(self) -> None:
        self._renderer.close()

    def _observation(self) -> dict[str, np.ndarray]:
        game = self.game
        return {
            "state": self.population.states[0].astype(np.float32),
            "population": game.features.astype(np.float32),
            "time": np.array([game.time], dtype=np.float32),
        }
