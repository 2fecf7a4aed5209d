"""The multi-population core and its front ends, on MFGLinearQuadraticMulti-v0 (populations ``red`` and ``blue``).

Each test pins one promise of the product: every particle of every population moves under its own action, a
population's reward reads the other population, agents observe every population's histogram, the Gymnasium and
PettingZoo APIs hold, frozen flows replace the live populations, and the exact Nash gaps use common random numbers.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

import mfg_envs
from mfg_envs.core import ConstantPolicy, histogram
from mfg_envs.game import Game, game_of, population_rngs, rollout
from mfg_envs.nash_gap import exact_nash_gap

ENV_ID = "MFGLinearQuadraticMulti-v0"
NAMES = ("red", "blue")


def expected_rewards(game, k, physical_actions, means):
    """``r^k = -dt [a^2/2 + eps_k/2 (x - W_k . m)^2]`` of population ``k``'s particles at their current states."""
    member = game.members[k].model
    x = game.members[k].states[:, 0]
    target = member.coupling @ means
    return -member.dt * (0.5 * physical_actions**2 + 0.5 * member.running_cost * (x - target) ** 2)


def terminal_rewards(game, k, means):
    member = game.members[k].model
    return -0.5 * member.terminal_cost * (game.members[k].states[:, 0] - member.terminal_coupling @ means) ** 2


def current_means(game):
    return np.array([member.states[:, 0].mean() for member in game.members])


def joint_histogram(game):
    """Every population's histogram from its particles (``mfg_envs.core.histogram``), concatenated in name order."""
    parts = [histogram(m.states, m.model.histogram_bounds, m.model.n_bins).astype(np.float32) for m in game.members]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- registration and API
def test_registered_with_both_front_ends():
    assert ENV_ID in mfg_envs.MULTI_ENV_IDS
    assert ENV_ID not in mfg_envs.ENV_IDS
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, mfg_envs.MeanFieldEnv)
    assert game_of(env) is env.unwrapped.game and game_of(env).names == NAMES
    assert isinstance(mfg_envs.parallel_env(ENV_ID, n_agents=2), mfg_envs.MeanFieldParallelEnv)
    single = gym.make("MFGLinearQuadratic-v0")  # one population: the K = 1 game
    assert game_of(single).names == ("population",) and game_of(single).members == (single.unwrapped.population,)
    with pytest.raises(ValueError, match="mfg_envs environment"):
        game_of(object())


@pytest.mark.parametrize("learner", NAMES)
def test_gymnasium_checker(learner):
    env = gym.make(ENV_ID, learner_population=learner).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env, skip_render_check=True)
    assert env.observation_space["population"].shape == (2 * env.game.model.populations[0].n_bins,)


def test_pettingzoo_api_and_agent_names():
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2))
    assert env.possible_agents == ["red_0", "red_1", "red_2", "blue_0", "blue_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(env, num_cycles=60)
        api_test(parallel_to_aec(mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2))), num_cycles=60)
    assert [f"{name}_0" for name in NAMES] == mfg_envs.parallel_env(ENV_ID, n_agents=1).possible_agents


def test_episode_length_terminal_flags_and_reset_guard():
    env = gym.make(ENV_ID, n_particles=5, n_steps=4)
    env.reset(seed=0)
    for n in range(4):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert type(reward) is float and terminated == (n == 3) and not truncated
        assert obs["time"][0] == pytest.approx((n + 1) / 4)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    penv = mfg_envs.parallel_env(ENV_ID, n_agents=(2, 1), n_steps=2)
    penv.reset(seed=0)
    for _ in range(2):
        *_, terminations, truncations, _ = penv.step({a: np.zeros(1) for a in penv.agents})
    assert all(terminations.values()) and not any(truncations.values()) and penv.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        penv.step({})


# --------------------------------------------------------------------------- own actions, coupled rewards
def test_every_particle_of_every_population_moves_under_its_own_action():
    """sigma = 0: each agent's state moves by exactly dt * a_max * (its own action), and each reward is the formula
    at its own state and action with both populations' means."""
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2), sigma=0.0)
    game = env.game
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        actions = {agent: rng.uniform(-1, 1, 1).astype(np.float32) for agent in env.agents}
        before = [member.states[:, 0].copy() for member in game.members]
        means = current_means(game)
        physical = [
            5.0 * np.array([float(actions[f"{name}_{i}"][0]) for i in range(len(b))]) for name, b in zip(NAMES, before)
        ]
        rewards_expected = [expected_rewards(game, k, physical[k], means) for k in range(2)]
        obs, rewards, *_ = env.step(actions)
        for k, name in enumerate(NAMES):
            np.testing.assert_allclose(
                game.members[k].states[:, 0], before[k] + game.model.dt * physical[k], rtol=1e-14
            )
            for i in range(len(before[k])):
                agent = f"{name}_{i}"
                assert obs[agent]["state"][0] == np.float32(game.members[k].states[i, 0])
                assert rewards[agent] == pytest.approx(rewards_expected[k][i], rel=1e-12)
        displacements = np.concatenate([game.members[k].states[:, 0] - before[k] for k in range(2)])
        assert len(np.unique(np.round(displacements, 12))) == 5  # five agents, five different moves


def test_changing_one_agent_action_moves_only_that_agent():
    outcomes = []
    for delta in (0.0, 0.5):
        env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2), sigma=0.0)
        env.reset(seed=2)
        actions = {agent: np.full(1, -0.2) for agent in env.agents}
        actions["blue_1"] = actions["blue_1"] + delta
        obs, *_ = env.step(actions)
        outcomes.append({agent: obs[agent]["state"][0] for agent in obs})
    moved = [agent for agent in outcomes[0] if outcomes[0][agent] != outcomes[1][agent]]
    assert moved == ["blue_1"]
    assert outcomes[1]["blue_1"] - outcomes[0]["blue_1"] == pytest.approx(0.5 * 5.0 / 50, rel=1e-6)


def _learner_rewards(seed, **kwargs):
    """Rewards of the red learner (action 0.3) over a whole episode, each checked against the formula."""
    env = gym.make(ENV_ID, n_particles=40, **kwargs)
    game = env.unwrapped.game
    env.reset(seed=seed)
    rewards = []
    for n in range(game.model.n_steps):
        learner = 5.0 * float(np.float32(0.3))  # a_max * action, the other particles neutral
        physical = np.append(learner, np.zeros(game.members[0].states.shape[0] - 1))
        expected = expected_rewards(game, 0, physical, current_means(game))[0]
        reward = env.step(np.array([0.3], np.float32))[1]
        if n == game.model.n_steps - 1:
            expected += terminal_rewards(game, 0, current_means(game))[0]
        assert reward == pytest.approx(expected, rel=1e-12)
        rewards.append(reward)
    return np.array(rewards)


def test_reward_of_one_population_depends_on_the_other():
    """Only blue's initial mean changes; red's particles are the same, red's rewards follow blue's mean."""
    low, high = (_learner_rewards(5, init_mean=(2.0, blue)) for blue in (-1.0, 1.0))
    assert (np.abs(high - low) > 1e-6).all()
    blind = {"coupling": ((0.5, 0.0), (0.4, 0.2)), "terminal_coupling": ((0.5, 0.0), (0.4, 0.2))}
    low, high = (_learner_rewards(5, init_mean=(2.0, blue), **blind) for blue in (-1.0, 1.0))
    np.testing.assert_array_equal(low, high)  # red gives blue's mean no weight: nothing changes


def test_pettingzoo_rewards_depend_on_the_other_population():
    """init_var = sigma = 0, action 0: red agents sit at 2, blue agents at b; the first rewards are
    r_red = -dt eps_red/2 (2 - 0.5 * 2 - 0.3 b)^2 and r_blue = -dt eps_blue/2 (b - 0.4 * 2 - 0.2 b)^2."""
    dt = 1.0 / 50
    rewards = {}
    for blue in (-1.0, 1.0):
        env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2), init_mean=(2.0, blue), init_var=0.0, sigma=0.0)
        env.reset(seed=0)
        rewards[blue] = env.step({agent: np.zeros(1) for agent in env.agents})[1]
        for agent, reward in rewards[blue].items():
            if agent.startswith("red"):
                expected = -dt * 0.5 * 2.0 * (2.0 - 0.5 * 2.0 - 0.3 * blue) ** 2
            else:
                expected = -dt * 0.5 * 1.0 * (blue - 0.4 * 2.0 - 0.2 * blue) ** 2
            assert reward == pytest.approx(expected, rel=1e-12)
    assert all(rewards[-1.0][agent] != rewards[1.0][agent] for agent in ("red_0", "red_1", "red_2"))


# --------------------------------------------------------------------------- observations
@pytest.mark.parametrize("learner", [0, 1])
def test_observation_holds_both_populations_histograms(learner):
    env = gym.make(ENV_ID, learner_population=learner, n_particles=(300, 200))
    game = env.unwrapped.game
    seen_shapes = []

    def blue_policy(obs):
        seen_shapes.append(obs["population"].shape)
        return np.tanh(obs["state"] - 0.5)

    env.unwrapped.set_population_policy(blue_policy, "blue")
    obs, _ = env.reset(seed=1)
    n_bins = game.model.populations[0].n_bins
    for _ in range(5):
        np.testing.assert_array_equal(obs["population"], joint_histogram(game))
        assert obs["population"].dtype == np.float32
        np.testing.assert_allclose([obs["population"][:n_bins].sum(), obs["population"][n_bins:].sum()], 1.0, atol=1e-6)
        assert not np.array_equal(obs["population"][:n_bins], obs["population"][n_bins:])
        assert obs["state"][0] == np.float32(game.members[learner].states[0, 0])
        obs, *_ = env.step(env.action_space.sample())
    n_blue_policy = 199 if learner == 1 else 200  # the learner's own particle is not the policy's
    assert seen_shapes == [(n_blue_policy, 2 * n_bins)] * 5


def test_pettingzoo_observation_holds_both_populations_histograms():
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(30, 20))
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        expected = joint_histogram(env.game)
        for agent in env.agents:
            np.testing.assert_array_equal(obs[agent]["population"], expected)
        obs, *_ = env.step({agent: rng.uniform(-1, 1, 1) for agent in env.agents})


def test_moments_representation_concatenates_both_populations():
    env = gym.make(ENV_ID, n_particles=(300, 200), population_representation="moments")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(1, np.float32))
    states = [member.states[:, 0] for member in env.unwrapped.game.members]
    expected = [states[0].mean(), states[0].std(), states[1].mean(), states[1].std()]
    np.testing.assert_allclose(obs["population"], expected, rtol=1e-5)
    assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------- determinism
def _gym_episode(seed, learner):
    env = gym.make(ENV_ID, n_particles=(60, 40), learner_population=learner)
    env.unwrapped.set_population_policy(lambda obs: np.tanh(obs["state"]), "red")
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [np.concatenate([obs["state"], obs["population"], obs["time"], [0.0]])]
    terminated = False
    while not terminated:
        obs, reward, terminated, *_ = env.step(env.action_space.sample())
        trace.append(np.concatenate([obs["state"], obs["population"], obs["time"], [reward]]))
    return np.stack(trace)


def _parallel_episode(seed, n_steps=12):
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(4, 3))
    obs, _ = env.reset(seed=seed)
    rng, trace = np.random.default_rng(0), []
    for _ in range(n_steps):
        obs, rewards, *_ = env.step({a: rng.uniform(-1, 1, env.action_space(a).shape) for a in env.agents})
        trace.append([np.concatenate([obs[a]["state"], obs[a]["population"], [rewards[a]]]) for a in sorted(obs)])
    return np.array(trace)


@pytest.mark.parametrize("learner", NAMES)
def test_gym_episode_is_seed_deterministic(learner):
    first, again, other = (_gym_episode(seed, learner) for seed in (11, 11, 12))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[1:], other[1:])


def test_pettingzoo_episode_is_seed_deterministic():
    first, again, other = _parallel_episode(4), _parallel_episode(4), _parallel_episode(5)
    assert first.shape[0] == 12
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# --------------------------------------------------------------------------- frozen flows
@pytest.mark.parametrize("learner", NAMES)
def test_frozen_flows_replace_both_populations(learner):
    env = gym.make(ENV_ID, learner_population=learner, n_particles=200)
    game, k = env.unwrapped.game, env.unwrapped.learner
    equilibrium = game.model.solve_equilibrium()
    flows = env.unwrapped.record_population_flow(dict(zip(NAMES, equilibrium.policies)), seed=3)
    assert len(flows) == 2
    for flow in flows:
        assert flow.population.shape == (game.model.n_steps + 1, game.model.populations[0].n_bins)
        assert len(flow.mean_fields) == game.model.n_steps + 1
    means = np.array([[mf["mean"] for mf in flow.mean_fields] for flow in flows]).T  # (N+1, 2)
    assert not np.allclose(means[:, 0], means[:, 1])
    env.unwrapped.set_population_flow(flows)
    traces = []
    for other_action in (-1.0, 1.0):  # the live policies no longer matter
        env.unwrapped.set_population_policy(ConstantPolicy(np.array([other_action])), NAMES[1 - k])
        env.unwrapped.set_population_policy(ConstantPolicy(np.array([other_action])), NAMES[k])
        obs, _ = env.reset(seed=5)
        assert game.n_particles == (200, 200) and [m.states.shape[0] for m in game.members] == [1, 1]
        trace = []
        for n in range(game.model.n_steps):
            np.testing.assert_array_equal(
                obs["population"], np.concatenate([flows[0].population[n], flows[1].population[n]])
            )
            member = game.members[k].model
            x = game.members[k].states[0, 0]
            a = 5.0 * float(np.float32(0.2))
            expected = -member.dt * (0.5 * a**2 + 0.5 * member.running_cost * (x - member.coupling @ means[n]) ** 2)
            obs, reward, terminated, *_ = env.step(np.array([0.2], np.float32))
            if terminated:
                x_final = game.members[k].states[0, 0]
                expected -= 0.5 * member.terminal_cost * (x_final - member.terminal_coupling @ means[-1]) ** 2
            assert reward == pytest.approx(expected, rel=1e-12)
            trace.append(reward)
        traces.append(trace)
    assert traces[0] == traces[1]
    env.unwrapped.set_population_flow(None)
    env.reset(seed=5)
    assert [m.states.shape[0] for m in game.members] == [200, 200]


def test_recorded_flows_follow_the_policies_and_the_seed():
    env = gym.make(ENV_ID, n_particles=(4000, 3000))
    equilibrium = env.unwrapped.game.model.solve_equilibrium()
    flows = env.unwrapped.record_population_flow(equilibrium.policies, seed=0)
    again = env.unwrapped.record_population_flow(equilibrium.policies, seed=0)
    for k, (flow, exact) in enumerate(zip(flows, equilibrium.flows)):
        np.testing.assert_array_equal(flow.population, again[k].population)
        means = np.array([mf["mean"] for mf in flow.mean_fields])
        np.testing.assert_allclose(means, [mf["mean"] for mf in exact.mean_fields], atol=5 * 1.2 / np.sqrt(3000))
    neutral_blue = env.unwrapped.record_population_flow({"red": equilibrium.policies[0]}, seed=0)
    np.testing.assert_array_equal(neutral_blue[0].population[0], flows[0].population[0])
    assert neutral_blue[1].mean_fields[-1]["mean"] != flows[1].mean_fields[-1]["mean"]
    with pytest.raises(ValueError, match="green"):
        env.unwrapped.record_population_flow({"green": equilibrium.policies[0]})
    with pytest.raises(ValueError, match="one policy per population"):
        env.unwrapped.record_population_flow(equilibrium.policies[:1])
    with pytest.raises(ValueError, match="one PopulationFlow per population"):
        env.unwrapped.set_population_flow(flows[:1])


# --------------------------------------------------------------------------- exact Nash gaps, common random numbers
def test_population_rngs_are_one_reproducible_stream_per_population():
    first, again, other = population_rngs(3, 2), population_rngs(3, 2), population_rngs(4, 2)
    draws = [rng.standard_normal(4) for rng in first]
    np.testing.assert_array_equal(draws, [rng.standard_normal(4) for rng in again])
    assert not np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], other[0].standard_normal(4))


@pytest.mark.parametrize("k", [0, 1])
def test_best_response_cohort_shares_the_population_initial_states_and_noise(k):
    """The ghost cohort of population k (k full-size, the other population a single frozen particle) draws
    population k's initial states and noise exactly as the population did: same seed, same stream."""
    model = gym.make(ENV_ID).unwrapped.game.model
    game = Game(model, 500)
    neutral = [ConstantPolicy(np.zeros(1))] * 2
    game.reset(population_rngs(9, 2))
    initial = game.members[k].states.copy()
    np.testing.assert_array_equal(initial, model.populations[k].initial_states(500, population_rngs(9, 2)[k]))
    flows, _ = rollout(game, neutral, seed=9)
    ghosts = Game(model, [500 if j == k else 1 for j in range(2)])
    ghosts.freeze(flows)
    ghosts.reset(population_rngs(9, 2))
    np.testing.assert_array_equal(ghosts.members[k].states, initial)
    rollout(ghosts, neutral, seed=9)  # the state dynamics do not read the mean field: same noise, same end
    np.testing.assert_array_equal(ghosts.members[k].states, game.members[k].states)


def test_exact_nash_gaps_are_exactly_zero_with_common_random_numbers_when_nobody_interacts():
    """Zero coupling: the equilibrium is every flow's best response, so with the same initial states and the same
    noise every particle's best-response return equals its own return; independent draws would leave O(1/sqrt N)."""
    zero = ((0.0, 0.0), (0.0, 0.0))
    env = gym.make(ENV_ID, coupling=zero, terminal_coupling=zero)
    equilibrium = env.unwrapped.game.model.solve_equilibrium()
    gaps = exact_nash_gap(equilibrium.policies, env, n_particles=2000, seed=1)
    for gap in gaps.gaps.values():
        assert abs(gap.gap) < 1e-12 and gap.standard_error < 1e-12
        assert gap.policy_return == pytest.approx(gap.best_response_return, abs=1e-12)


def test_exact_nash_gaps_are_reproducible_and_accept_names():
    env = gym.make(ENV_ID)
    equilibrium = env.unwrapped.game.model.solve_equilibrium()
    policies = [ConstantPolicy(np.array([0.1])), equilibrium.policies[1]]
    first = exact_nash_gap(policies, env, n_particles=1000, seed=7)
    assert first == exact_nash_gap(dict(zip(NAMES, policies)), env, n_particles=1000, seed=7)
    assert first != exact_nash_gap(policies, env, n_particles=1000, seed=8)
    assert all(gap.gap > 10 * gap.standard_error for gap in first.gaps.values())
    assert first.gap == max(first.gaps["red"].gap, first.gaps["blue"].gap)
    neutral = exact_nash_gap([ConstantPolicy(np.zeros(1))] * 2, env, n_particles=1000, seed=7)
    for gap in neutral.gaps.values():  # relative to the neutral policy itself, one replicate of four
        assert gap.relative_gap == pytest.approx(1.0, abs=4 * gap.standard_error / gap.gap + 0.02)
    with pytest.raises(ValueError, match="n_replicates"):
        exact_nash_gap(policies, env, n_particles=100, n_replicates=1)
    with pytest.raises(ValueError, match="one policy per population"):
        exact_nash_gap(policies[:1], env, n_particles=100)


@pytest.mark.parametrize("representation", ["histogram", "kde", "moments"])
def test_equilibrium_flows_in_every_representation_freeze_the_env(representation):
    env = gym.make("MFGLinearQuadraticMulti-v0", population_representation=representation, n_particles=50)
    equilibrium = env.unwrapped.game.model.solve_equilibrium()
    flows = equilibrium.flows_for(env)
    env.unwrapped.set_population_flow(flows)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["population"], np.concatenate([flow.population[0] for flow in flows]))
    if representation == "moments":  # (mean, std) of the binned exact law: the exact mean up to the binning
        exact_means = [flow.mean_fields[0]["mean"] for flow in equilibrium.flows]
        np.testing.assert_allclose([flow.population[0][0] for flow in flows], exact_means, atol=0.02)


def test_per_population_values_accept_numpy_arrays():
    env = gym.make("MFGLinearQuadraticMulti-v0", sigma=np.array([1.0, 0.5]), n_particles=np.array([3, 4]))
    assert env.unwrapped.game.n_particles == (3, 4)
    assert [member.sigma for member in env.unwrapped.game.model.populations] == [1.0, 0.5]
