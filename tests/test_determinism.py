"""Seed determinism over long runs: several episodes, autoresets, reseeding, recorded flows, trained weights.

test_envs.py checks one episode of the single-agent env and eight steps of the batched and PettingZoo envs;
here every front end runs several short episodes (``n_steps = 4``) back to back, and a short TD3 run on one
CPU thread must end with bit-identical weights when repeated with the same seed.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import TD3

import mfg_envs
from mfg_envs.nash_gap import exact_nash_gap
from sb3_meanfield.td3 import MFTD3

ENV_IDS = mfg_envs.ENV_IDS
N_STEPS = 4
N_EPISODES = 3


def short(env_id: str) -> dict[str, Any]:
    """Keywords for ``N_STEPS``-step episodes with the default time step (the crowd LQ model's well-posedness
    check rejects its default horizon cut into 4 steps)."""
    model_class = mfg_envs.ENV_CLASSES[env_id].model_class
    defaults = inspect.signature(model_class.__init__).parameters
    if "horizon" not in defaults:
        return {"n_steps": N_STEPS}
    return {"n_steps": N_STEPS, "horizon": defaults["horizon"].default * N_STEPS / defaults["n_steps"].default}


def state_feedback(env_id: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A deterministic, state-dependent population policy: ``tanh(0.5 - s_k)`` on the first ``d_a`` state entries."""
    action_dim = mfg_envs.ENV_CLASSES[env_id].model_class.action_dim
    return lambda obs: np.tanh(0.5 - np.asarray(obs["state"], dtype=np.float64)[:, :action_dim])


def action_stream(shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """The same sequence of actions in every run (half of them out of the box, so clipping is exercised)."""
    rng = np.random.default_rng(1234)
    while True:
        yield rng.uniform(-1.5, 1.5, shape)


def assert_same_trace(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def differs(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, second))


# --------------------------------------------------------------------------- single-agent env
def single_agent_run(env_id: str, seed: int, n_episodes: int = N_EPISODES, env: Any = None) -> list[np.ndarray]:
    """``reset(seed)`` once, then ``reset()`` between episodes; observations, rewards and flags of every step."""
    if env is None:
        env = gym.make(env_id, n_particles=30, **short(env_id))
        env.unwrapped.set_population_policy(state_feedback(env_id))
    actions, trace = action_stream(env.action_space.shape), []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        trace.extend(np.asarray(v) for v in obs.values())
        terminated = False
        while not terminated:
            obs, reward, terminated, truncated, _ = env.step(next(actions))
            trace.extend([*(np.asarray(v) for v in obs.values()), np.array([reward, terminated, truncated])])
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_agent_runs_over_several_episodes_are_reproducible(env_id):
    first, second, other = (single_agent_run(env_id, seed) for seed in (5, 5, 6))
    assert_same_trace(first, second)
    assert differs(first, other)
    episode_length = len(first) // N_EPISODES
    assert differs(first[:episode_length], first[episode_length : 2 * episode_length]), "episodes replay each other"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_agent_reset_with_a_seed_forgets_the_history(env_id):
    fresh = single_agent_run(env_id, seed=3, n_episodes=1)
    env = gym.make(env_id, n_particles=30, **short(env_id))
    env.unwrapped.set_population_policy(state_feedback(env_id))
    env.reset(seed=99)
    for _ in range(N_STEPS - 1):  # leave an episode unfinished
        env.step(env.action_space.sample())
    assert_same_trace(fresh, single_agent_run(env_id, seed=3, n_episodes=1, env=env))


# --------------------------------------------------------------------------- batched env
def batched_run(env_id: str, seed: int, autoreset_mode: str, venv: Any = None) -> list[np.ndarray]:
    """``reset(seed)`` once, then ``N_EPISODES`` episodes through autoreset (plus two steps)."""
    if venv is None:
        venv = gym.make_vec(env_id, num_envs=40, autoreset_mode=autoreset_mode, **short(env_id))
    obs, _ = venv.reset(seed=seed)
    actions, trace = action_stream(venv.action_space.shape), [np.array(v) for v in obs.values()]
    steps_per_episode = N_STEPS + (autoreset_mode == "next_step")  # next_step: one extra step resets
    for _ in range(N_EPISODES * steps_per_episode + 2):
        obs, rewards, terminated, truncated, info = venv.step(next(actions))
        trace.extend([*(np.array(v) for v in obs.values()), rewards, terminated, truncated])
        trace.extend(np.array(v) for v in info.get("final_obs", {}).values())
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("autoreset_mode", ["next_step", "same_step"])
def test_batched_runs_across_autoresets_are_reproducible(env_id, autoreset_mode):
    first, second, other = (batched_run(env_id, seed, autoreset_mode) for seed in (5, 5, 6))
    assert_same_trace(first, second)
    assert differs(first, other)
    venv = gym.make_vec(env_id, num_envs=40, autoreset_mode=autoreset_mode, **short(env_id))
    initial = [venv.reset(seed=5)[0]["state"]]
    actions = action_stream(venv.action_space.shape)
    while len(initial) < N_EPISODES:
        obs, *_ = venv.step(next(actions))
        if obs["time"][0, 0] == 0.0:
            initial.append(obs["state"].copy())
    assert all(differs([a], [b]) for a, b in itertools.pairwise(initial)), "an autoreset replayed the initial states"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_batched_reset_with_a_seed_forgets_the_history(env_id):
    fresh = batched_run(env_id, 3, "next_step")
    venv = gym.make_vec(env_id, num_envs=40, **short(env_id))
    venv.reset(seed=99)
    for _ in range(N_STEPS + 2):  # through one autoreset into the next episode
        venv.step(venv.action_space.sample())
    assert_same_trace(fresh, batched_run(env_id, 3, "next_step", venv=venv))


# --------------------------------------------------------------------------- PettingZoo env
def pettingzoo_run(env_id: str, seed: int, env: Any = None) -> list[np.ndarray]:
    """``N_EPISODES`` whole episodes: ``reset(seed)`` once, then ``reset()``; every agent's entries in name order."""
    if env is None:
        env = mfg_envs.parallel_env(env_id, n_agents=6, **short(env_id))
    actions, trace = action_stream((6, env.action_space("agent_0").shape[0])), []
    for episode in range(N_EPISODES):
        observations, _ = env.reset(seed=seed if episode == 0 else None)
        trace.extend(np.asarray(v) for agent in sorted(observations) for v in observations[agent].values())
        while env.agents:
            batch = next(actions)
            observations, rewards, terminations, truncations, _ = env.step(
                {agent: batch[i] for i, agent in enumerate(env.agents)}
            )
            for agent in sorted(observations):
                trace.extend(np.asarray(v) for v in observations[agent].values())
                trace.append(np.array([rewards[agent], terminations[agent], truncations[agent]]))
        trace.append(env.state())
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pettingzoo_whole_episodes_are_reproducible(env_id):
    first, second, other = (pettingzoo_run(env_id, seed) for seed in (5, 5, 6))
    assert_same_trace(first, second)
    assert differs(first, other)
    env = mfg_envs.parallel_env(env_id, n_agents=6, **short(env_id))
    env.reset(seed=99)
    env.step({agent: np.ones(env.action_space(agent).shape) for agent in env.agents})
    assert_same_trace(first, pettingzoo_run(env_id, 5, env=env))


# --------------------------------------------------------------------------- recorded flows and Nash gaps
def flow_arrays(flow: Any) -> list[np.ndarray]:
    return [flow.population, *(np.asarray(v, dtype=float) for mf in flow.mean_fields for v in mf.values())]


def recording_run(env_id: str, record_seeds: tuple[int, ...]) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """One episode from ``reset(seed=8)``; after its first step, one flow is recorded per seed in ``record_seeds``."""
    env = gym.make(env_id, n_particles=30, **short(env_id))
    policy = state_feedback(env_id)
    env.unwrapped.set_population_policy(policy)
    env.reset(seed=8)
    trace, flows, terminated = [], [], False
    for step, action in enumerate(action_stream(env.action_space.shape)):
        if terminated:
            break
        if step == 1:
            flows = [flow_arrays(env.unwrapped.record_population_flow(policy, seed=s)) for s in record_seeds]
        obs, reward, terminated, *_ = env.step(action)
        trace.extend([*(np.asarray(v) for v in obs.values()), np.array([reward])])
    return trace, flows


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_recorded_flow_depends_on_its_seed_only(env_id):
    """``record_population_flow(policy, seed)`` is reproducible and leaves the env's own random stream alone."""
    reference, _ = recording_run(env_id, ())
    trace, flows = recording_run(env_id, (4, 4, 7))
    assert_same_trace(flows[0], flows[1])
    assert differs(flows[0], flows[2])
    assert_same_trace(reference, trace)


EXACT_IDS = [env_id for env_id in ENV_IDS if mfg_envs.exactly_solvable(gym.make(env_id))]


@pytest.mark.parametrize("env_id", EXACT_IDS)
def test_exact_nash_gap_is_reproducible(env_id):
    env = gym.make(env_id, **short(env_id))
    gaps = [exact_nash_gap(state_feedback(env_id), env, n_particles=400, seed=s) for s in (2, 2, 3)]
    assert gaps[0] == gaps[1]
    assert gaps[0].gap != gaps[2].gap


# --------------------------------------------------------------------------- trained weights
def trained_weights(algorithm: type[TD3], policy: str, seed: int) -> tuple[dict, dict]:
    """Initial and final policy weights of a 150-step TD3 run on one thread (110 gradient steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = gym.make("MFGLinearQuadratic-v0", n_particles=50, n_steps=10)
        model = algorithm(
            policy, env, seed=seed, learning_starts=40, batch_size=32, buffer_size=1000, device="cpu", verbose=0
        )
        initial = {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}
        model.learn(total_timesteps=150)
        return initial, model.policy.state_dict()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(("algorithm", "policy"), [(TD3, "MultiInputPolicy"), (MFTD3, "MeanFieldPolicy")])
def test_short_td3_training_gives_identical_weights_on_one_thread(algorithm, policy):
    initial, first = trained_weights(algorithm, policy, seed=0)
    _, second = trained_weights(algorithm, policy, seed=0)
    _, other = trained_weights(algorithm, policy, seed=1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)
    assert not all(torch.equal(first[name], initial[name]) for name in first), "training did not change the weights"
