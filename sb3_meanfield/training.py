"""Self-consistent training of a game of several populations: one SB3 model per population, on one shared game.

Model ``k`` learns on the :class:`~sb3_meanfield.common.vec_env.PopulationVecEnv` of population ``k`` (its
first ``n_learners`` particles) and population ``k``'s other particles follow model ``k``'s live deterministic
policy (:func:`~sb3_meanfield.common.vec_env.bind_population`): every population follows its own policy, as in
single-population self-play (one model on one ``PopulationVecEnv``, SB3's own ``learn``). Two schedules (:data:`MODES`):

- ``"alternating"`` (the default): the models take turns. Model ``k`` runs SB3's own ``learn`` for
  ``switch_freq`` env steps of the game (default: one episode) while every other population, its learners
  included, plays its current deterministic policy; then model ``k+1``, and so on. SB3's training loop runs
  unchanged; the trainer only (1) points the model's next transition at the game's current observation when a turn
  starts (the other models moved the game in between, so the first transition of the turn starts where the
  game is) and (2) keeps each model's progress (learning-rate schedules) on its whole budget instead of the
  turn. The game makes ``K`` times as many env steps as each model collects.
- ``"simultaneous"``: at every env step each population's learners act with their model's exploration actions,
  the game moves once, each model stores its own transitions and, every ``train_freq`` env steps, takes its
  gradient steps. This is SB3's ``collect_rollouts`` for a rollout of one step written out for ``K`` models with
  SB3's building blocks (:class:`~sb3_meanfield.common.sb3_adapter.OffPolicySteps`); it needs ``train_freq`` in steps
  and no gSDE.

Alternating is the default because it is the simpler to keep correct: SB3's ``learn`` does all the
bookkeeping (rollouts, callbacks, logging, training cadence) and the trainer only adds the two points above.

``total_timesteps`` counts the transitions of EACH model (``n_learners`` per env step in which it learns), so
both modes give every model the same data and the same gradient steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from copy import deepcopy
from typing import Any, cast

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from tqdm import tqdm

import mfg_envs
from mfg_envs.core import check_int
from mfg_envs.game import Game, game_of
from sb3_meanfield.common.sb3_adapter import OffPolicySteps
from sb3_meanfield.common.vec_env import PopulationVecEnv, bind_population, population_envs, step_populations
from sb3_meanfield.flags import SCHEDULES

#: The schedules of several populations' models (``mode``).
MODES = SCHEDULES


class _GameStepHook(BaseCallback):
    """Inside model ``k``'s ``learn``: keeps its schedules on its whole budget and reports each env step."""

    def __init__(self, trainer: MultiPopulationTrainer, budget_end: int) -> None:
        super().__init__()
        self.trainer, self.budget_end = trainer, budget_end

    def _on_training_start(self) -> None:
        # only attached to the trainer's models, which __init__ checked to be off-policy
        model = cast(OffPolicyAlgorithm, self.model)
        OffPolicySteps(model).budget_until(self.budget_end)  # SB3 set it to the end of this turn

    def _on_step(self) -> bool:
        return self.trainer._after_env_step()


class MultiPopulationTrainer:
    """Train one SB3 off-policy model per population of one multi-population game (see the module docstring).

    :param models: one model per population, each built on a :class:`PopulationVecEnv` of the same game
        (any order; they are sorted by population). :meth:`make` builds them.
    :param mode: ``"alternating"`` (default) or ``"simultaneous"``.
    :param switch_freq: alternating: env steps of each turn (default: one episode of the game).

    For SB3 callbacks (:meth:`learn`'s ``callback``) the trainer stands in for the model: ``get_env()`` is
    population 0's env, ``logger`` the trainer's (:meth:`set_logger`), ``num_timesteps`` the transitions of
    all models together, ``models`` the models; they are called once per env step of the game.
    """

    def __init__(
        self, models: Sequence[BaseAlgorithm], mode: str = "alternating", switch_freq: int | None = None
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        all_envs = [model.get_env() for model in models]
        off_policy = [model for model in models if isinstance(model, OffPolicyAlgorithm)]
        if len(off_policy) != len(models):
            raise ValueError("every model must be an SB3 off-policy algorithm (DDPG, TD3, SAC or their MF versions)")
        envs = [env for env in all_envs if isinstance(env, PopulationVecEnv)]
        if not envs or len(envs) != len(all_envs):
            raise ValueError("every model must be built on a PopulationVecEnv (unwrapped) of the game")
        game = envs[0].game
        indices = sorted(env.population_index for env in envs)
        if any(env.game is not game for env in envs) or indices != list(range(len(game.members))):
            raise ValueError(f"models must hold one model per population {game.names}, all on one game")
        order = sorted(range(len(models)), key=lambda i: envs[i].population_index)
        self.models = [off_policy[i] for i in order]
        self.steps = [OffPolicySteps(model) for model in self.models]
        self.venvs: list[PopulationVecEnv] = [envs[i] for i in order]
        self.game: Game = game
        self.mode = mode
        self.switch_freq = game.model.n_steps if switch_freq is None else check_int("switch_freq", switch_freq)
        if mode == "alternating" and self.switch_freq % game.model.n_steps and any(m.n_steps > 1 for m in self.models):
            # a turn that ends inside an episode leaves rows of the replay that are not consecutive steps
            raise ValueError(
                f"n_steps > 1 (n-step returns) with mode='alternating' needs switch_freq to be a multiple of the"
                f" episode length {game.model.n_steps}, got {self.switch_freq}"
            )
        for model in self.models:  # self-consistent: population k follows model k
            bind_population(model)
        self.logger = Logger(None, [])
        self.num_env_steps = 0
        self._callback: BaseCallback = CallbackList([])
        self._progress: tqdm | None = None
        self._continue = True

    @classmethod
    def make(
        cls,
        env: str | Any,
        algo: type[OffPolicyAlgorithm],
        n_learners: int | None = 64,
        mode: str = "alternating",
        switch_freq: int | None = None,
        seed: int | None = 0,
        policy: str | type = "MeanFieldPolicy",
        env_kwargs: dict[str, Any] | None = None,
        **algo_kwargs: Any,
    ) -> MultiPopulationTrainer:
        """Trainer of ``algo`` models (same policy class and keywords, separate networks; model ``k`` seeded
        ``seed + k``) on ``env``: an ``mfg_envs.MULTI_ENV_IDS`` id (built with ``env_kwargs``, e.g.
        ``n_particles``), a multi-population env or its core. ``algo_kwargs`` are copied for every model."""
        if isinstance(env, str):
            if env not in mfg_envs.MULTI_ENV_IDS:
                raise ValueError(f"env must be one of {mfg_envs.MULTI_ENV_IDS}, got {env!r}")
            env = gym.make(env, **(env_kwargs or {}))
        venvs = population_envs(game_of(env), n_learners)
        models = [
            algo(policy, venv, seed=None if seed is None else seed + k, **deepcopy(algo_kwargs))
            for k, venv in enumerate(venvs)
        ]
        return cls(models, mode, switch_freq)

    # ------------------------------------------------------------------ what callbacks read
    @property
    def names(self) -> tuple[str, ...]:
        return self.game.names

    @property
    def num_timesteps(self) -> int:
        """Transitions collected by all models together."""
        return sum(model.num_timesteps for model in self.models)

    def get_env(self) -> PopulationVecEnv:
        return self.venvs[0]

    def set_logger(self, logger: Logger) -> None:
        """The logger of the trainer's callbacks (each model keeps its own for its training statistics)."""
        self.logger = logger

    # ------------------------------------------------------------------ training
    def learn(
        self,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | None = None,
        log_interval: int | None = 1,
        progress_bar: bool = False,
    ) -> MultiPopulationTrainer:
        """Let every model collect ``total_timesteps`` more transitions (whole env steps) and train on them.

        ``callback`` is called once per env step of the game; returning ``False`` stops all models. Each
        model dumps its own logger every ``log_interval`` episodes of the game (``None``: never).
        """
        steps = [math.ceil(check_int("total_timesteps", total_timesteps) / venv.num_envs) for venv in self.venvs]
        ends = [model.num_timesteps + n * venv.num_envs for model, n, venv in zip(self.models, steps, self.venvs)]
        if not all(driver.started for driver in self.steps) or not self.game.started:
            self.venvs[0].reset()  # the whole game, seeded like model 0's env
        for driver, venv in zip(self.steps, self.venvs):
            driver.start_from(venv.observe())
        self._callback = CallbackList(list(callback)) if isinstance(callback, list) else callback or CallbackList([])
        self._callback.init_callback(self)  # type: ignore[arg-type]
        self._callback.on_training_start(locals(), globals())
        self._continue = True
        self._progress = tqdm(total=sum(steps) if self.mode == "alternating" else max(steps)) if progress_bar else None
        try:
            if self.mode == "alternating":
                self._learn_alternating(steps, ends, log_interval)
            else:
                self._learn_simultaneous(steps, ends, log_interval)
        finally:
            if self._progress is not None:
                self._progress.close()
        self._callback.on_training_end()
        return self

    def _after_env_step(self) -> bool:
        self.num_env_steps += 1
        if self._progress is not None:
            self._progress.update(1)
        self._continue = self._callback.on_step()
        return self._continue

    def _learn_alternating(self, steps: list[int], ends: list[int], log_interval: int | None) -> None:
        remaining = list(steps)
        while self._continue and any(remaining):
            for k, (model, venv) in enumerate(zip(self.models, self.venvs)):
                turn = min(self.switch_freq, remaining[k])
                if turn == 0 or not self._continue:
                    continue
                self.steps[k].start_from(venv.observe())  # the other models moved the game
                model.learn(
                    turn * venv.num_envs,
                    callback=_GameStepHook(self, ends[k]),
                    # SB3 annotates int but passes it on to collect_rollouts, which takes None (no logging)
                    log_interval=None if log_interval is None else log_interval * venv.num_envs,  # type: ignore[arg-type]
                    reset_num_timesteps=False,
                )
                remaining[k] -= turn

    def _learn_simultaneous(self, steps: list[int], ends: list[int], log_interval: int | None) -> None:
        for driver, end in zip(self.steps, ends):
            driver.setup(end)
        for step in range(max(steps)):
            active = [k for k, n in enumerate(steps) if step < n]
            drivers, venvs = [self.steps[k] for k in active], [self.venvs[k] for k in active]
            samples = [driver.sample(venv.num_envs) for driver, venv in zip(drivers, venvs)]
            results = step_populations(venvs, [actions for actions, _ in samples])
            for driver, venv in zip(drivers, venvs):
                driver.model.num_timesteps += venv.num_envs
            if not self._after_env_step():
                return
            for driver, venv, (_, buffer_actions), result in zip(drivers, venvs, samples, results):
                driver.store(venv.num_envs, buffer_actions, result, log_interval)
                driver.train_step(venv.num_envs)
