"""The replay buffer of the mean field algorithms: SB3's ``DictReplayBuffer`` with a cheaper sampling path.

SB3 samples a batch by indexing each numpy array with two index arrays (one copy) and converting the result to a
tensor (a second copy), for every observation key, of both observations, and for actions, rewards and dones.
:class:`MeanFieldReplayBuffer` stores the same numpy arrays (so it pickles, saves and loads like SB3's), but
gathers each batch straight from a tensor view of the storage with one ``index_select`` per array: one copy, into
torch's own aligned memory. It draws the same random indices as SB3, in the same order, so a run samples the same
transitions with either buffer.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class MeanFieldReplayBuffer(DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` (same storage, same samples) gathering batches with ``index_select`` (module
    docstring); a ``VecNormalize`` env, which rescales the samples, takes SB3's own path."""

    def _get_samples(  # type: ignore[override]  # SB3 declares the base buffer's return type
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        if env is not None:
            return super()._get_samples(batch_inds, env)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # SB3's draw
        rows = th.from_numpy(batch_inds * self.n_envs + env_indices)

        def gather(storage: np.ndarray) -> th.Tensor:
            """``storage[batch_inds, env_indices]`` as a new tensor on the buffer's device."""
            return th.index_select(th.from_numpy(storage).flatten(0, 1), 0, rows).to(self.device)

        return DictReplayBufferSamples(
            observations={key: gather(value) for key, value in self.observations.items()},
            actions=gather(self.actions),
            next_observations={key: gather(value) for key, value in self.next_observations.items()},
            dones=(gather(self.dones) * (1 - gather(self.timeouts))).reshape(-1, 1),
            rewards=gather(self.rewards).reshape(-1, 1),
        )
