"""Front-end tests run on every registered id: API conformance, coupling, seeding, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import mfg_envs
from mfg_envs.core import ConstantPolicy

ENV_IDS = mfg_envs.ENV_IDS


def population_values(env):
    """The quantity each model histograms, straight from the particles (states or last actions)."""
    pop = env.population
    return pop.model.histogram_values(pop.states, pop.last_actions)


def independent_histogram(values, model):
    """The same histogram computed with numpy's histogramdd (edge cells collect out-of-range values)."""
    bounds = model.histogram_bounds
    width = (bounds[:, 1] - bounds[:, 0]) / model.n_bins
    inside = np.clip(values, bounds[:, 0] + 0.5 * width, bounds[:, 1] - 0.5 * width)
    counts, _ = np.histogramdd(inside, bins=[model.n_bins] * len(bounds), range=[tuple(b) for b in bounds])
    return counts.ravel() / len(values)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(gym.make(env_id, n_particles=20).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id, n_particles=20))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pettingzoo_api(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(mfg_envs.parallel_env(env_id, n_agents=4), num_cycles=60)
        api_test(parallel_to_aec(mfg_envs.parallel_env(env_id, n_agents=4)), num_cycles=60)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episode_terminates_at_horizon_with_float_rewards(env_id):
    env = gym.make(env_id, n_particles=10)
    env.reset(seed=0)
    n_steps = env.unwrapped.model.n_steps
    for n in range(n_steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert type(reward) is float and np.isfinite(reward)
        assert terminated == (n == n_steps - 1) and not truncated
        assert obs["time"][0] == pytest.approx((n + 1) / n_steps)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observation_population_is_the_particles_histogram(env_id):
    env = gym.make(env_id, n_particles=500)
    obs, _ = env.reset(seed=1)
    ones = np.ones((1, env.action_space.shape[0]))
    env.unwrapped.set_population_policy(lambda o: np.tanh(o["state"][:, :1] - 0.3) * ones)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        model = env.unwrapped.model
        expected = independent_histogram(population_values(env.unwrapped), model)
        np.testing.assert_allclose(obs["population"], expected, atol=1e-6)
        assert obs["population"].sum() == pytest.approx(1.0, abs=1e-6)
        assert obs["population"].dtype == np.float32


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_particle_moves_under_its_own_action(env_id):
    """All N particles' outcomes change with their own actions (the abandoned project moved agent 0 only)."""
    n = 300
    outcomes = []
    for actions in (np.zeros, lambda shape: np.random.default_rng(5).uniform(-1, 1, shape)):
        venv = gym.make_vec(env_id, num_envs=n)
        venv.reset(seed=3)
        act = actions((n, venv.single_action_space.shape[0]))
        obs, rewards, *_ = venv.step(act)
        outcomes.append(np.column_stack([obs["state"], rewards]))
    moved = np.abs(outcomes[1] - outcomes[0]).max(axis=1)
    assert (moved > 1e-6).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_particle_own_action_dominates_its_outcome(env_id):
    """Changing particle j's action moves j's outcome far more than anyone else's (others feel it only via 1/N)."""
    n, j = 400, 17
    outcomes = []
    for delta in (0.0, 0.9):
        venv = gym.make_vec(env_id, num_envs=n)
        venv.reset(seed=4)
        act = np.full((n, venv.single_action_space.shape[0]), -0.5)
        act[j] += delta
        obs, rewards, *_ = venv.step(act)
        outcomes.append(np.column_stack([obs["state"], rewards]))
    change = np.abs(outcomes[1] - outcomes[0]).max(axis=1)
    assert change[j] > 1e-3
    assert np.delete(change, j).max() < change[j] / 20


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_depends_on_the_population(env_id):
    """Same seed, same learner actions, only the others' policy differs: the learner's rewards differ."""
    rewards = []
    for policy_action in (-0.8, 0.8):
        env = gym.make(env_id, n_particles=200)
        env.unwrapped.set_population_policy(ConstantPolicy(np.full(env.action_space.shape, policy_action)))
        env.reset(seed=7)
        rewards.append([env.step(np.zeros(env.action_space.shape, np.float32))[1] for _ in range(3)])
    assert not np.allclose(rewards[0], rewards[1], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_population_policy_through_sb3_env_method(env_id):
    venv = make_vec_env(env_id, n_envs=2, env_kwargs={"n_particles": 50})
    venv.env_method("set_population_policy", ConstantPolicy(np.ones(venv.action_space.shape)))
    venv.seed(0)
    obs_ones = venv.reset()
    venv.step(np.zeros((2, *venv.action_space.shape)))
    stepped_ones = venv.step(np.zeros((2, *venv.action_space.shape)))[0]["population"]
    venv.env_method("set_population_policy", None)
    venv.seed(0)
    assert np.array_equal(venv.reset()["population"], obs_ones["population"])
    venv.step(np.zeros((2, *venv.action_space.shape)))
    stepped_neutral = venv.step(np.zeros((2, *venv.action_space.shape)))[0]["population"]
    assert not np.allclose(stepped_ones, stepped_neutral)


def _episode(env, seed, n_steps):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [np.concatenate([obs["state"], obs["population"], obs["time"]])]
    for _ in range(n_steps):
        obs, reward, *_ = env.step(env.action_space.sample())
        trace.append(np.concatenate([obs["state"], obs["population"], obs["time"], [reward]]))
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_agent_seed_determinism(env_id):
    n_steps = gym.make(env_id).unwrapped.model.n_steps
    runs = [_episode(gym.make(env_id, n_particles=100), seed, n_steps) for seed in (11, 11, 12)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0][1:], runs[2][1:]))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_batched_and_pettingzoo_seed_determinism(env_id):
    def batched(seed):
        venv = gym.make_vec(env_id, num_envs=50)
        obs, _ = venv.reset(seed=seed)
        rng, out = np.random.default_rng(0), []
        for _ in range(8):
            obs, rew, *_ = venv.step(rng.uniform(-1, 1, venv.action_space.shape))
            out.append(np.column_stack([obs["state"], obs["population"], rew]))
        return np.stack(out)

    def parallel(seed):
        env = mfg_envs.parallel_env(env_id, n_agents=6)
        env.reset(seed=seed)
        rng, out = np.random.default_rng(0), []
        for _ in range(8):
            actions = {a: rng.uniform(-1, 1, env.action_space(a).shape) for a in env.agents}
            obs, rew, *_ = env.step(actions)
            out.append([np.concatenate([obs[a]["state"], obs[a]["population"], [rew[a]]]) for a in sorted(obs)])
        return np.array(out)

    for rollout in (batched, parallel):
        assert np.array_equal(rollout(1), rollout(1))
        assert not np.array_equal(rollout(1), rollout(2))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_batched_env_shares_one_population_view(env_id):
    venv = gym.make_vec(env_id, num_envs=1000)
    obs, _ = venv.reset(seed=0)
    obs, *_ = venv.step(np.zeros(venv.action_space.shape))
    pop = obs["population"]
    assert pop.shape[0] == 1000 and pop.strides[0] == 0 and not pop.flags.writeable
    model = venv.unwrapped.model
    np.testing.assert_allclose(pop[0], independent_histogram(population_values(venv.unwrapped), model), atol=1e-6)


@pytest.mark.parametrize("autoreset_mode", ["next_step", "same_step"])
def test_batched_autoreset(autoreset_mode):
    venv = gym.make_vec("MFGLinearQuadratic-v0", num_envs=10, n_steps=3, autoreset_mode=autoreset_mode)
    obs, _ = venv.reset(seed=0)
    for _ in range(3):
        obs, _, terminated, _, info = venv.step(np.zeros((10, 1)))
    assert terminated.all()
    if autoreset_mode == "same_step":
        assert obs["time"][0, 0] == 0.0 and info["final_obs"]["time"][0, 0] == 1.0
    else:
        assert obs["time"][0, 0] == 1.0
        obs, reward, terminated, *_ = venv.step(np.zeros((10, 1)))
        assert obs["time"][0, 0] == 0.0 and not terminated.any() and not reward.any()


def test_a_million_particles():
    venv = gym.make_vec("MFGLinearQuadratic-v0", num_envs=10**6)
    obs, _ = venv.reset(seed=0)
    obs, rewards, *_ = venv.step(np.zeros((10**6, 1)))
    assert obs["state"].shape == (10**6, 1) and np.isfinite(rewards).all()
    assert obs["population"][0].sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("representation", ["moments", "kde"])
def test_population_representations(env_id, representation):
    env = gym.make(env_id, n_particles=300, population_representation=representation)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    pop = env.unwrapped.population
    values = population_values(env.unwrapped)
    if representation == "moments":
        np.testing.assert_allclose(obs["population"], np.concatenate([values.mean(0), values.std(0)]), rtol=1e-5)
    else:
        assert obs["population"].sum() == pytest.approx(1.0, abs=1e-5)
        assert obs["population"].shape == pop.hist.shape
        assert np.abs(obs["population"] - pop.hist).max() > 0  # smoothed, not the raw histogram


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_frozen_population_flow(env_id):
    """A frozen flow replays the recorded population; the live population policy no longer matters."""
    env = gym.make(env_id, n_particles=300)
    flow = env.unwrapped.record_population_flow(ConstantPolicy(np.full(env.action_space.shape, 0.4)), seed=2)
    env.unwrapped.set_population_flow(flow)
    traces = []
    for other in (-1.0, 1.0):
        env.unwrapped.set_population_policy(ConstantPolicy(np.full(env.action_space.shape, other)))
        obs, _ = env.reset(seed=5)
        trace = [obs["population"]]
        for _ in range(env.unwrapped.model.n_steps):
            obs, reward, *_ = env.step(np.full(env.action_space.shape, 0.1, np.float32))
            trace.append(np.append(obs["population"], reward))
        traces.append(trace)
        np.testing.assert_array_equal(np.stack([t[: flow.population.shape[1]] for t in trace]), flow.population)
    assert all(np.array_equal(a, b) for a, b in zip(*traces))
    env.unwrapped.set_population_flow(None)
    assert env.reset(seed=5)[0]["population"].shape == flow.population[0].shape


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("n_particles", 0),
        ("n_particles", -3),
        ("n_particles", 2.5),
        ("n_bins", 0),
        ("kde_bandwidth", 0.0),
        ("population_representation", "pixels"),
        ("not_a_parameter", 1),
    ],
)
def test_bad_keywords_raise_value_error_naming_them(env_id, keyword, value):
    with pytest.raises(ValueError, match=keyword):
        gym.make(env_id, **{keyword: value})


@pytest.mark.parametrize("env_id", mfg_envs.ALL_ENV_IDS)
def test_parallel_env_names_n_agents_when_given_n_particles(env_id):
    """Every particle is an agent: a population size given as gym.make's n_particles is refused, not ignored."""
    with pytest.raises(ValueError, match=r"takes n_agents .* not n_particles; got n_particles=5"):
        mfg_envs.parallel_env(env_id, n_particles=5)
    assert len(mfg_envs.parallel_env(env_id, n_agents=5).possible_agents) == 5 * (
        2 if env_id.endswith("Multi-v0") else 1
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, "shape"])
def test_bad_actions_raise_in_every_front_end(env_id, bad):
    env = gym.make(env_id, n_particles=5)
    env.reset(seed=0)
    dim = env.action_space.shape[0]
    single = np.zeros(dim + 1) if bad == "shape" else np.full(dim, bad)
    with pytest.raises(ValueError, match="action"):
        env.step(single)
    venv = gym.make_vec(env_id, num_envs=5)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        venv.step(np.zeros((4, dim)) if bad == "shape" else np.full((5, dim), bad))
    penv = mfg_envs.parallel_env(env_id, n_agents=3)
    penv.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        penv.step({agent: single for agent in penv.agents})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_out_of_range_actions_are_clipped(env_id):
    rewards = []
    for scale in (1.0, 7.0):
        env = gym.make(env_id, n_particles=20)
        env.reset(seed=0)
        rewards.append(env.step(np.full(env.action_space.shape, scale, np.float32))[1])
    assert rewards[0] == rewards[1]


def test_bad_population_policy_output_is_reported():
    env = gym.make("MFGLinearQuadratic-v0", n_particles=5)
    env.unwrapped.set_population_policy(lambda obs: np.zeros((1, 1)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="population policy output"):
        env.step(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="policy"):
        env.unwrapped.set_population_policy("not callable")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_batched_env_against_a_frozen_flow(env_id):
    """Every agent of a batched env plays against the flow it is frozen to."""
    env = gym.make(env_id, n_particles=200)
    flow = env.unwrapped.record_population_flow(ConstantPolicy(np.full(env.action_space.shape, 0.3)), seed=1)
    venv = gym.make_vec(env_id, num_envs=16, autoreset_mode="same_step")
    venv.set_population_flow(flow)
    obs, _ = venv.reset(seed=0)
    seen = [obs["population"][0]]
    for _ in range(env.unwrapped.model.n_steps - 1):
        obs, *_ = venv.step(np.zeros((16, env.action_space.shape[0])))
        seen.append(obs["population"][0])
    np.testing.assert_array_equal(np.stack(seen), flow.population[:-1])
