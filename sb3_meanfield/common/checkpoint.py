"""Checkpoints that continue an interrupted training exactly (``python -m sb3_meanfield.train --resume RUN_DIR``).

A checkpoint is the folder ``RUN_DIR/checkpoint/``:

- ``model.zip``: SB3's save of the model at the checkpoint (``MFTD3.load`` reads it like a finished run's model);
- ``training_state.pt``: everything the continuation needs, in ONE ``torch.save`` pickle of the live objects:
  the model (networks, optimizers, replay buffer, action noise, learning-rate schedule progress, SB3 counters,
  ``_last_obs``), its env (the population's particles, clock, histogram and random generator), the callbacks
  (population iterates, monitor history) and the global random states (numpy, torch, ``random``).

Why one pickle of the live objects rather than ``model.save`` + ``save_replay_buffer`` + a list of fields:
``model.load`` reseeds every generator, rebuilds the env's seeds and cannot restore references between objects
(the self-play population plays ``model.policy`` itself; a fictitious-play population plays the callback's
iterates). Pickling the whole object graph at once keeps every shared reference and every random state, so the
continuation is bit-identical without listing SB3 internals one by one.

Checkpoints are written at the start of a rollout, after the gradient steps of the previous one: SB3's ``learn``
resumes from that point exactly (``reset_num_timesteps=False``).
"""

from __future__ import annotations

import copy
import inspect
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from mfg_envs.core import check_int

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "training_state.pt"
LOGGER_FIELDS = ("name_to_value", "name_to_count", "name_to_excluded")


class CheckpointError(ValueError):
    """A missing or unreadable checkpoint."""


def global_rng_states() -> dict[str, Any]:
    """States of the generators SB3 draws from: numpy's global one (action noise), torch's and ``random``."""
    return {"numpy": np.random.get_state(), "torch": th.get_rng_state(), "random": random.getstate()}


def set_global_rng_states(states: dict[str, Any]) -> None:
    np.random.set_state(states["numpy"])
    th.set_rng_state(states["torch"])
    random.setstate(states["random"])


def unwrapped_vec_env(env: VecEnv) -> tuple[VecEnv, list[tuple[type[VecEnvWrapper], dict[str, Any]]]]:
    """The innermost env of ``env`` and its ``VecEnvWrapper`` layers (class and fields), outermost first.

    SB3's wrappers do not survive a pickle: ``class_attributes`` (``inspect.getmembers`` of the class) holds
    mappingproxies, and ``__getattr__`` (forwarding to ``venv``) recurses while unpickling. Their fields do.
    """
    layers = []
    while isinstance(env, VecEnvWrapper):
        layers.append((type(env), {key: value for key, value in vars(env).items() if key != "class_attributes"}))
        env = env.venv
    return env, layers


def rewrapped_vec_env(env: VecEnv, layers: list[tuple[type[VecEnvWrapper], dict[str, Any]]]) -> VecEnv:
    """Inverse of :func:`unwrapped_vec_env`: the wrappers rebuilt around ``env`` with their saved fields."""
    for wrapper_class, fields in reversed(layers):
        wrapper = wrapper_class.__new__(wrapper_class)
        vars(wrapper).update(fields, venv=env, class_attributes=dict(inspect.getmembers(wrapper_class)))
        env = wrapper
    return env


@contextmanager
def picklable(model: BaseAlgorithm, callbacks: list[BaseCallback]) -> Iterator[list[tuple[type, dict[str, Any]]]]:
    """Detach, for the time of a pickle, what cannot be pickled; yield the env's wrapper layers to save instead.

    The logger holds open files; the callbacks' ``locals``/``globals`` hold modules (SB3 refills them at the next
    step); the env's wrappers are saved as layers (:func:`unwrapped_vec_env`).
    """
    logger, env = model._logger, model.env
    namespaces = [(callback.locals, callback.globals) for callback in callbacks]
    assert env is not None, "checkpoints are written during training, when the model has its env"
    model._logger = None  # type: ignore[assignment]  # detached for the pickle only, restored in finally
    model.env, layers = unwrapped_vec_env(env)
    for callback in callbacks:
        callback.locals, callback.globals = {}, {}
    try:
        yield layers
    finally:
        model._logger, model.env = logger, env
        for callback, (locals_, globals_) in zip(callbacks, namespaces):
            callback.locals, callback.globals = locals_, globals_


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The state of ``run_dir``'s checkpoint: ``model``, ``callbacks``, ``action_noise``, ``rng`` and ``logger``."""
    path = run_dir / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
    try:
        state = th.load(path, weights_only=False)  # our own file: it holds arbitrary Python objects
        model = state["model"]
        model.env = rewrapped_vec_env(model.env, state["env_wrappers"])
    except Exception as error:  # a truncated or foreign file fails in pickle, zip or torch in many ways
        raise CheckpointError(f"corrupt checkpoint {path}: {type(error).__name__}: {error}") from None
    return state


class TrainingCheckpoint(BaseCallback):
    """Write ``directory`` every ``checkpoint_freq`` env steps (of the VecEnv) and at the end of training.

    Put it LAST in the callback list: on a resumed run its :meth:`_on_training_start` restores the action noise
    (``learn`` resets it) and the global random states after every other callback has started.

    :param directory: the checkpoint folder (created when needed).
    :param callbacks: the run's other callbacks, saved with the model.
    :param checkpoint_freq: env steps between checkpoints, ``>= 1``.
    :param restored: the state returned by :func:`load_checkpoint` when resuming.
    """

    def __init__(
        self,
        directory: Path,
        callbacks: list[BaseCallback],
        checkpoint_freq: int,
        restored: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.directory, self.callbacks = directory, callbacks
        self.checkpoint_freq = check_int("checkpoint_freq", checkpoint_freq)
        self.restored = restored
        self._saved_at = 0

    def _env_steps(self) -> int:
        return self.model.num_timesteps // self.model.n_envs

    def _on_training_start(self) -> None:
        self._saved_at = self._env_steps()
        if self.restored is not None:
            self.model.action_noise = self.restored["action_noise"]
            set_global_rng_states(self.restored["rng"])
            self.restored = None

    def _on_rollout_start(self) -> None:
        if self._env_steps() // self.checkpoint_freq > self._saved_at // self.checkpoint_freq:
            self.save()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.save()

    def save(self) -> None:
        """Write ``model.zip`` and then, atomically, ``training_state.pt``."""
        self._saved_at = self._env_steps()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model.save(self.directory / "model.zip")
        logger = self.model.logger
        state = {
            "model": self.model,
            "callbacks": self.callbacks,
            "action_noise": copy.deepcopy(self.model.action_noise),  # learn() resets the live one
            "rng": global_rng_states(),
            "logger": {key: dict(getattr(logger, key)) for key in LOGGER_FIELDS},  # recorded, not yet dumped
        }
        path = self.directory / STATE_FILE
        with picklable(self.model, self.callbacks) as layers:
            th.save({**state, "env_wrappers": layers}, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)  # a crash while writing keeps the previous checkpoint
