"""The replay buffer of the mean field algorithms: SB3's ``DictReplayBuffer`` with a cheaper sampling path and
n-step returns.

SB3 samples a batch by indexing each numpy array with two index arrays (one copy) and converting the result to a
tensor (a second copy), for every observation key, of both observations, and for actions, rewards and dones.
:class:`MeanFieldReplayBuffer` stores the same numpy arrays (so it pickles, saves and loads like SB3's), but
gathers each batch straight from a tensor view of the storage with one ``index_select`` per array: one copy, into
torch's own aligned memory. It draws the same random indices as SB3, in the same order, so a run samples the same
transitions with either buffer.

With ``n_steps = n > 1`` (the algorithm's ``n_steps``, which SB3 supports only for ``Box`` observations) a sample
starting at step ``t`` carries the ``n``-step return and the state it bootstraps from,

``R = sum_{j < L} gamma^j r_{t+j}``, ``s' = s_{t+L}``, discount ``gamma^L``,

where ``L <= n`` stops at the episode's end (inclusive) and at the newest stored transition, as SB3's
``NStepReplayBuffer`` does for ``Box`` observations.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class MeanFieldReplayBuffer(DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` (same storage, same samples) gathering batches with ``index_select`` (module
    docstring); a ``VecNormalize`` env, which rescales the samples, takes SB3's own path (one-step returns only).

    :param n_steps: length ``n >= 1`` of the returns the samples carry (module docstring).
    :param gamma: discount of those returns, in ``[0, 1]`` (the algorithm's ``gamma``).
    """

    def __init__(self, *args: object, n_steps: int = 1, gamma: float = 0.99, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 1):
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)

    def _get_samples(  # type: ignore[override]  # SB3 declares the base buffer's return type
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        if env is not None:
            if self.n_steps > 1:
                raise ValueError("n_steps > 1 does not support a VecNormalize env (its rewards are rescaled)")
            return super()._get_samples(batch_inds, env)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # SB3's draw
        rows = th.from_numpy(batch_inds * self.n_envs + env_indices)

        def gather(storage: np.ndarray, at: th.Tensor = rows) -> th.Tensor:
            """``storage[batch_inds, env_indices]`` (or other flat rows) as a new tensor on the buffer's device."""
            return th.index_select(th.from_numpy(storage).flatten(0, 1), 0, at).to(self.device)

        if self.n_steps == 1:
            last, rewards, discounts = rows, gather(self.rewards).reshape(-1, 1), None
        else:
            returns, last_inds, lengths = self._n_step_returns(batch_inds, env_indices)
            last = th.from_numpy(last_inds * self.n_envs + env_indices)
            rewards = th.as_tensor(returns, dtype=th.float32, device=self.device).reshape(-1, 1)
            discounts = th.as_tensor(self.gamma**lengths, dtype=th.float32, device=self.device).reshape(-1, 1)
        return DictReplayBufferSamples(
            observations={key: gather(value) for key, value in self.observations.items()},
            actions=gather(self.actions),
            next_observations={key: gather(value, last) for key, value in self.next_observations.items()},
            dones=(gather(self.dones, last) * (1 - gather(self.timeouts, last))).reshape(-1, 1),
            rewards=rewards,
            discounts=discounts,
        )

    def _n_step_returns(
        self, batch_inds: np.ndarray, env_indices: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The return over each sample's window, the storage index it bootstraps from and the window's length."""
        steps = np.arange(self.n_steps)
        window = (batch_inds[:, None] + steps) % self.buffer_size
        columns = env_indices[:, None]
        newest = (self.pos - 1) % self.buffer_size  # past it lie older episodes (or nothing)
        ends = (self.dones[window, columns] > 0) | (self.timeouts[window, columns] > 0) | (window == newest)
        lengths = np.where(ends.any(axis=1), ends.argmax(axis=1) + 1, self.n_steps)
        inside = steps[None, :] < lengths[:, None]
        returns = (self.rewards[window, columns] * self.gamma**steps * inside).sum(axis=1)
        return returns, (batch_inds + lengths - 1) % self.buffer_size, lengths
