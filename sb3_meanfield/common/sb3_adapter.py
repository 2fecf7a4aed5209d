"""The one place that reaches into Stable-Baselines3's private members (tested with SB3 2.9; setup.cfg pins the range).

SB3's ``learn`` drives one model on one env. Training several models on one game (alternating turns, or every
model at every env step) needs a few of its internal steps: where the next transition starts (``_last_obs``),
the budget its schedules run over (``_total_timesteps``, ``_current_progress_remaining``), and the pieces of
``collect_rollouts`` and ``learn`` for one env step. :class:`OffPolicySteps` names them; :func:`check_sb3` says
clearly, at construction, when an SB3 release no longer has one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import stable_baselines3
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

#: SB3 members this adapter uses.
REQUIRED_MEMBERS = (
    "_last_obs",
    "_total_timesteps",
    "_current_progress_remaining",
    "_episode_num",
    "_setup_learn",
    "_sample_action",
    "_store_transition",
    "_update_info_buffer",
    "_update_current_progress_remaining",
    "_on_step",
    "dump_logs",
    "train",
)


def check_sb3(model: OffPolicyAlgorithm) -> None:
    """``RuntimeError`` naming the SB3 version when ``model`` lacks a member the trainer relies on."""
    missing = [name for name in REQUIRED_MEMBERS if not hasattr(model, name)]
    if missing:
        raise RuntimeError(
            f"stable-baselines3 {stable_baselines3.__version__} lacks {missing}, which the multi-population trainer "
            "uses; install the version range setup.cfg states"
        )


def progress_remaining(model: Any) -> float:
    """SB3's progress remaining of ``model``'s schedules, from 1 (start) to 0 (end of its budget)."""
    return float(model._current_progress_remaining)


class OffPolicySteps:
    """One SB3 off-policy model driven step by step from outside its ``learn`` (see the module docstring)."""

    def __init__(self, model: OffPolicyAlgorithm) -> None:
        check_sb3(model)
        self.model = model

    @property
    def started(self) -> bool:
        """Whether the model has an observation to start its next transition from."""
        return self.model._last_obs is not None

    def start_from(self, observation: dict[str, np.ndarray]) -> None:
        """The next transition starts at ``observation`` (other models moved the shared game meanwhile)."""
        self.model._last_obs = observation

    def budget_until(self, end: int) -> None:
        """Run the schedules over the whole budget ending at ``end`` transitions, not over one turn."""
        self.model._total_timesteps = end

    def setup(self, end: int) -> None:
        """SB3's ``_setup_learn`` for the transitions up to ``end``; needs ``train_freq`` in steps and no gSDE."""
        model = self.model
        if model.use_sde or model.train_freq.unit != TrainFrequencyUnit.STEP:  # type: ignore[union-attr]
            raise ValueError("mode='simultaneous' needs train_freq in steps and use_sde=False")
        model._setup_learn(end - model.num_timesteps, None, reset_num_timesteps=False)

    def sample(self, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
        """``(actions, buffer_actions)`` of the exploring policy, as SB3's ``collect_rollouts`` samples them."""
        model = self.model
        model.policy.set_training_mode(False)
        return model._sample_action(model.learning_starts, model.action_noise, n_envs)

    def store(self, n_envs: int, actions: np.ndarray, result: VecEnvStepReturn, log_interval: int | None) -> None:
        """The bookkeeping of ``collect_rollouts`` after one env step (all learners end their episodes together)."""
        model = self.model
        obs, rewards, dones, infos = result
        model._update_info_buffer(infos, dones)
        model._store_transition(model.replay_buffer, actions, obs, rewards, dones, infos)  # type: ignore[arg-type]
        model._update_current_progress_remaining(model.num_timesteps, model._total_timesteps)
        model._on_step()
        if dones[0]:
            model._episode_num += n_envs
            if model.action_noise is not None:
                model.action_noise.reset()
            if log_interval is not None and (model._episode_num // n_envs) % log_interval == 0:
                model.dump_logs()

    def train_step(self, n_envs: int) -> None:
        """``learn``'s cadence: after every ``train_freq`` env steps past ``learning_starts``, ``gradient_steps``
        updates."""
        model = self.model
        frequency = model.train_freq.frequency  # type: ignore[union-attr]
        if (model.num_timesteps // n_envs) % frequency or model.num_timesteps <= model.learning_starts:
            return
        gradient_steps = model.gradient_steps if model.gradient_steps >= 0 else frequency * n_envs
        if gradient_steps > 0:
            model.train(batch_size=model.batch_size, gradient_steps=gradient_steps)
