"""MeanFieldReplayBuffer's n-step returns against SB3's NStepReplayBuffer (the same data, the same draws)."""

import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_meanfield.common.replay import MeanFieldReplayBuffer
from sb3_meanfield.common.vec_env import PopulationVecEnv
from sb3_meanfield.td3 import MFTD3

th.set_num_threads(1)

OBS = spaces.Box(-100.0, 100.0, (2,))
ACTIONS = spaces.Box(-1.0, 1.0, (1,))


def filled_pair(
    n_steps: int, gamma: float, buffer_size: int, n_adds: int, n_envs: int = 3, seed: int = 0
) -> tuple[MeanFieldReplayBuffer, NStepReplayBuffer]:
    """Ours (a ``Dict`` observation) and SB3's (the same ``Box``), filled with the same episodes of random lengths
    2-6, random rewards and states; ``n_adds`` above the capacity wraps the storage."""
    ours = MeanFieldReplayBuffer(
        buffer_size * n_envs, spaces.Dict({"state": OBS}), ACTIONS, n_envs=n_envs, n_steps=n_steps, gamma=gamma
    )
    sb3 = NStepReplayBuffer(buffer_size * n_envs, OBS, ACTIONS, n_envs=n_envs, n_steps=n_steps, gamma=gamma)
    rng = np.random.default_rng(seed)
    until_end = rng.integers(1, 6)
    for _ in range(n_adds):
        obs, next_obs = rng.normal(size=(n_envs, 2)), rng.normal(size=(n_envs, 2))
        action, reward = rng.uniform(-1, 1, (n_envs, 1)), rng.normal(size=n_envs)
        done = np.full(n_envs, until_end == 0)
        until_end = rng.integers(1, 6) if until_end == 0 else until_end - 1
        ours.add({"state": obs}, {"state": next_obs}, action, reward, done, [{}] * n_envs)
        sb3.add(obs, next_obs, action, reward, done, [{}] * n_envs)
    return ours, sb3


@pytest.mark.parametrize(("n_steps", "gamma", "n_adds"), [(3, 0.9, 25), (5, 1.0, 25), (4, 0.5, 57), (2, 0.99, 40)])
def test_n_step_samples_are_sb3_s(n_steps, gamma, n_adds):
    """Before and after the storage wraps (capacity 40 per env): every field of every sample as SB3 computes it."""
    ours, sb3 = filled_pair(n_steps, gamma, buffer_size=40, n_adds=n_adds)
    batch_inds = np.arange(ours.buffer_size if ours.full else ours.pos)
    np.random.seed(3)
    fast = ours._get_samples(batch_inds)
    np.random.seed(3)  # the same draw of env indices
    reference = sb3._get_samples(batch_inds)
    th.testing.assert_close(fast.observations["state"], reference.observations)
    th.testing.assert_close(fast.next_observations["state"], reference.next_observations)
    for name in ("actions", "rewards", "dones", "discounts"):
        th.testing.assert_close(getattr(fast, name), getattr(reference, name), msg=name)
    assert (reference.discounts < gamma ** (n_steps - 1)).any() or gamma == 1.0  # some full windows
    assert (reference.dones > 0).any() and (reference.dones == 0).any()  # windows cut by episode ends, and not


def test_an_n_step_return_by_hand():
    """One env, episodes of 4 steps, reward ``t`` at storage step ``t``, ``n = 3``, ``gamma = 0.5``."""
    buffer = MeanFieldReplayBuffer(20, spaces.Dict({"state": OBS}), ACTIONS, n_envs=1, n_steps=3, gamma=0.5)
    for t in range(10):
        state = np.array([[t, 0.0]])
        end = np.array([t % 4 == 3])
        buffer.add({"state": state}, {"state": state + 1}, np.zeros((1, 1)), np.array([t]), end, [{}])
    samples = buffer._get_samples(np.array([0, 2, 8, 9]))
    # t = 0: 0 + 0.5 * 1 + 0.25 * 2; t = 2: 2 + 0.5 * 3, then the episode ends; t = 8: 8 + 0.5 * 9, the newest
    # stored transition; t = 9: the newest alone
    assert samples.rewards.flatten().tolist() == [1.0, 3.5, 12.5, 9.0]
    assert samples.next_observations["state"][:, 0].tolist() == [3.0, 4.0, 10.0, 10.0]
    assert samples.dones.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
    assert samples.discounts.flatten().tolist() == [0.125, 0.25, 0.25, 0.5]


def test_the_algorithms_n_steps_reach_the_buffer_without_sb3_s_warning():
    env = PopulationVecEnv.from_id("MFGLinearQuadratic-v0", n_particles=40, n_learners=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MFTD3("MeanFieldPolicy", env, n_steps=4, gamma=0.9, learning_starts=16, seed=0).learn(8 * 12)
    buffer = model.replay_buffer
    assert isinstance(buffer, MeanFieldReplayBuffer) and (buffer.n_steps, buffer.gamma) == (4, 0.9)
    assert MFTD3("MeanFieldPolicy", env, seed=0).replay_buffer.n_steps == 1
    with pytest.warns(UserWarning, match="is ignored because a custom `replay_buffer_class`"):  # a user's buffer
        MFTD3("MeanFieldPolicy", env, n_steps=4, replay_buffer_class=DictReplayBuffer, seed=0)


def test_a_loaded_model_keeps_its_n_steps_without_sb3_s_warning(tmp_path):
    env = PopulationVecEnv.from_id("MFGLinearQuadratic-v0", n_particles=40, n_learners=8)
    MFTD3("MeanFieldPolicy", env, n_steps=3, gamma=0.9, learning_starts=16, seed=0).save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = MFTD3.load(tmp_path / "model", env=env)
    assert (loaded.replay_buffer.n_steps, loaded.replay_buffer.gamma) == (3, 0.9)
    explicit = MFTD3("MeanFieldPolicy", env, n_steps=3, replay_buffer_class=MeanFieldReplayBuffer, seed=0)
    assert explicit.replay_buffer.n_steps == 3
    with pytest.raises(ValueError, match="n_steps=3 but replay_buffer_kwargs has n_steps=2"):
        MFTD3("MeanFieldPolicy", env, n_steps=3, replay_buffer_kwargs={"n_steps": 2}, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
        ({"n_steps": 2.5}, "n_steps must be an integer >= 1"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
    ],
)
def test_bad_n_step_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MeanFieldReplayBuffer(10, spaces.Dict({"state": OBS}), ACTIONS, **kwargs)


def test_n_step_returns_refuse_a_vec_normalize_env():
    """A ``VecNormalize`` env rescales rewards, which SB3's ``Dict`` path applies per step: refused, not ignored."""
    ours, _ = filled_pair(3, 0.9, buffer_size=40, n_adds=10)
    env = VecNormalize(PopulationVecEnv.from_id("MFGLinearQuadratic-v0", n_particles=20, n_learners=4))
    with pytest.raises(ValueError, match="VecNormalize"):
        ours._get_samples(np.arange(5), env)
