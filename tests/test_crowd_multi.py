"""MFGCrowdMulti-v0: two crowds crossing, each averse to both densities (API checkers, dynamics, coupling, walls)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import mfg_envs
from mfg_envs import exactly_solvable
from mfg_envs.core import ConstantPolicy, Population, cell_index, histogram
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_multi import CrowdMultiEnv, CrowdMultiModel
from mfg_envs.game import Game, population_rngs, rollout
from mfg_envs.nash_gap import exact_nash_gap

ENV_ID = "MFGCrowdMulti-v0"
AT_REST = ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))  # zero initial variance: every particle on its mean
RED_START, FAR_AWAY = (-1.0, 0.5, 0.0, 0.0), (1.5, -1.5, 0.0, 0.0)
CELL_AREA = (4.0 / 20) ** 2  # default domain (-2, 2), n_bins 20


def first_rewards(**kwargs):
    """Every particle's reward of step 0 under the neutral action, per population (sigma 0, core API)."""
    game = Game(CrowdMultiModel(sigma=0.0, **kwargs), 5)
    game.reset(population_rngs(0, 2))
    zeros = [np.zeros((5, 2)), np.zeros((5, 2))]
    return game.step(zeros, zeros)


# --------------------------------------------------------------------------- API checkers and registration
def test_registered_as_a_multi_population_env():
    assert mfg_envs.MULTI_ENV_CLASSES[ENV_ID] is CrowdMultiEnv
    assert ENV_ID in mfg_envs.MULTI_ENV_IDS
    assert isinstance(gym.make(ENV_ID).unwrapped, CrowdMultiEnv)


@pytest.mark.parametrize(("learner", "start"), [("red", (-1.0, 0.5)), ("blue", (1.0, -0.5))])
def test_gymnasium_check_env(learner, start):
    env = gym.make(ENV_ID, learner_population=learner, n_particles=30).unwrapped
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["population"].shape == (2 * 20**2,)
    assert np.linalg.norm(obs["state"][:2] - start) < 0.6  # the learner belongs to its own population
    assert env.learner == env.game.model.index(learner)


def test_pettingzoo_parallel_api():
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2))
    assert env.possible_agents == ["red_0", "red_1", "red_2", "blue_0", "blue_1"]
    parallel_api_test(env, num_cycles=50)


def test_no_exact_equilibrium_or_best_response():
    """Only a numerical reference (solve_equilibrium: tests/test_crowd_equilibrium.py), no exact best response."""
    assert not exactly_solvable(CrowdMultiModel())
    env = gym.make(ENV_ID)
    with pytest.raises(NotImplementedError, match="CrowdMultiModel has no exact best response"):
        exact_nash_gap([ConstantPolicy(np.zeros(2))] * 2, env, n_particles=10)


# --------------------------------------------------------------------------- dynamics
def test_every_particle_of_both_populations_moves_under_its_own_action():
    env = mfg_envs.parallel_env(ENV_ID, n_agents=(3, 2), sigma=0.0, init_var=((0.02, 0.02, 0.01, 0.01),) * 2)
    env.reset(seed=1)
    game, rng = env.game, np.random.default_rng(2)
    dt, bound = game.model.dt, 2.0
    for _ in range(3):
        before = [member.states.copy() for member in game.members]
        actions = {agent: rng.uniform(-1, 1, 2).astype(np.float32) for agent in env.agents}
        observations, *_ = env.step(actions)
        for k, name in enumerate(game.names):
            own = np.stack([actions[f"{name}_{i}"] for i in range(game.n_particles[k])]).astype(np.float64)
            velocity = before[k][:, 2:] + dt * bound * own
            expected = np.hstack([before[k][:, :2] + dt * velocity, velocity])
            np.testing.assert_allclose(game.members[k].states, expected, rtol=0, atol=1e-12)
            for i in range(game.n_particles[k]):
                np.testing.assert_array_equal(observations[f"{name}_{i}"]["state"], expected[i].astype(np.float32))


@pytest.mark.parametrize("learner", ["red", "blue"])
def test_gymnasium_learner_moves_under_the_action_and_the_others_under_the_neutral_policy(learner):
    env = gym.make(ENV_ID, learner_population=learner, n_particles=(4, 3), sigma=0.0).unwrapped
    env.reset(seed=3)
    game, k = env.game, env.game.model.index(learner)
    before = [member.states.copy() for member in game.members]
    action = np.array([0.5, -0.25], dtype=np.float32)
    env.step(action)
    dt = game.model.dt
    for j, member in enumerate(game.members):
        pushed = np.zeros((member.n_particles, 2))
        if j == k:
            pushed[0] = 2.0 * action
        velocity = before[j][:, 2:] + dt * pushed
        np.testing.assert_allclose(member.states[:, 2:], velocity, atol=1e-12)
        np.testing.assert_allclose(member.states[:, :2], before[j][:, :2] + dt * velocity, atol=1e-12)


def test_walls_keep_both_populations_inside_the_domain():
    game = Game(CrowdMultiModel(domain=(-1.5, 1.5)), (200, 150))
    policies = [ConstantPolicy(np.array([-1.0, 1.0])), ConstantPolicy(np.array([1.0, -1.0]))]
    rollout(game, policies, seed=4)
    for member, corner in zip(game.members, [(-1.5, 1.5), (1.5, -1.5)]):
        positions, velocities = member.states[:, :2], member.states[:, 2:]
        assert ((positions >= -1.5) & (positions <= 1.5)).all()
        at_wall = positions == corner  # per coordinate: on the wall the population is pushed into
        assert at_wall.mean() > 0.5  # the wall rule is exercised
        assert ((velocities * np.sign(corner))[at_wall] <= 0).all()  # no velocity component into the wall


# --------------------------------------------------------------------------- rewards and the coupling
def test_red_reward_moves_by_exactly_the_cross_aversion_times_blues_density():
    aversion = ((0.2, 0.3), (0.1, 0.05))
    kwargs = {"aversion": aversion, "init_var": AT_REST}
    red_near, blue_near = first_rewards(init_mean=(RED_START, RED_START), **kwargs)
    red_far, _ = first_rewards(init_mean=(RED_START, FAR_AWAY), **kwargs)
    # blue's whole mass on red's cell: density 1 / cell area there, 0 when far away
    np.testing.assert_allclose(red_near - red_far, -0.3 / CELL_AREA, rtol=1e-12)
    # red itself is alone on its cell in both cases: its own term is -0.2 / cell area
    distance = np.linalg.norm(np.array(RED_START) - (1.0, 0.0, 0.0, 0.0))
    np.testing.assert_allclose(red_far, -distance - 0.2 / CELL_AREA, rtol=1e-12)
    # and blue, on red's cell, pays both densities with its own row (0.1, 0.05)
    blue_distance = np.linalg.norm(np.array(RED_START) - (-1.0, 0.0, 0.0, 0.0))
    np.testing.assert_allclose(blue_near, -blue_distance - (0.1 + 0.05) / CELL_AREA, rtol=1e-12)


def test_rewards_match_the_formula_with_both_histograms():
    aversion = np.array([[0.15, 0.4], [0.3, 0.07]])
    spread = ((0.3, 0.3, 0.05, 0.05), (0.3, 0.3, 0.05, 0.05))
    game = Game(CrowdMultiModel(aversion=aversion, init_var=spread, action_cost=0.2), (300, 200))
    rngs = population_rngs(5, 2)
    game.reset(rngs)
    model, bounds = game.model, np.array([(-2.0, 2.0)] * 2)
    for n in range(3):
        states = [member.states.copy() for member in game.members]
        densities = [histogram(s[:, :2], bounds, 20) / CELL_AREA for s in states]
        actions = [rngs[k].uniform(-1, 1, (len(s), 2)) for k, s in enumerate(states)]
        rewards = game.step(
            actions, [member.noise(len(s), rngs[k]) for k, (member, s) in enumerate(zip(model.populations, states))]
        )
        for k, (goal, s, a) in enumerate(zip([(1.0, 0.0), (-1.0, 0.0)], states, actions)):
            cells = cell_index(s[:, :2], bounds, 20)
            crowding = aversion[k, 0] * densities[0][cells] + aversion[k, 1] * densities[1][cells]
            distance = np.linalg.norm(s - np.array([*goal, 0.0, 0.0]), axis=1)
            expected = -distance - 0.2 * np.linalg.norm(2.0 * a, axis=1) - crowding
            np.testing.assert_allclose(
                rewards[k], expected, rtol=1e-12, atol=1e-12, err_msg=f"population {k}, step {n}"
            )


def test_without_cross_aversion_red_does_not_depend_on_blue():
    def red_returns(blue_start, cross, blue_action):
        model = CrowdMultiModel(aversion=((0.1, cross), (0.1, 0.1)), init_mean=(RED_START, blue_start))
        game = Game(model, (200, 100))
        policies = [lambda obs: np.clip(-obs["state"][:, 2:], -1, 1), ConstantPolicy(np.array(blue_action))]
        flows, returns = rollout(game, policies, seed=6)
        return flows[0], returns[0]

    on_red = ((-1.0, 0.5, 0.0, 0.0), 0.0, (0.0, 0.0))
    elsewhere = ((1.0, -0.5, 0.0, 0.0), 0.0, (-1.0, 1.0))
    flow_a, returns_a = red_returns(*on_red)
    flow_b, returns_b = red_returns(*elsewhere)
    np.testing.assert_array_equal(returns_a, returns_b)
    np.testing.assert_array_equal(flow_a.population, flow_b.population)
    # the same red particles in a single-population MFGCrowd-v0 with l2 = A_rr get the same rewards
    single = Population(CrowdModel(crowd_aversion=0.1), 200)
    single.reset(population_rngs(6, 2)[0])
    game = Game(CrowdMultiModel(aversion=((0.1, 0.0), (0.1, 0.1))), (200, 100))
    game.reset(population_rngs(6, 2))
    np.testing.assert_array_equal(single.states, game.members[0].states)
    zeros = [np.zeros((200, 2)), np.zeros((100, 2))]
    np.testing.assert_array_equal(Game.of(single).step(zeros[:1], zeros[:1])[0], game.step(zeros, zeros)[0])
    # positive control: with cross aversion the same two cases differ for red
    assert not np.array_equal(
        red_returns(on_red[0], 0.3, on_red[2])[1], red_returns(elsewhere[0], 0.3, elsewhere[2])[1]
    )


# --------------------------------------------------------------------------- observation and determinism
def test_observation_holds_both_populations_histograms():
    env = gym.make(ENV_ID, learner_population="blue", n_particles=(120, 80), n_bins=8)
    obs, _ = env.reset(seed=7)
    game, bounds = env.unwrapped.game, np.array([(-2.0, 2.0)] * 2)
    for _ in range(4):
        expected = np.concatenate([histogram(member.states[:, :2], bounds, 8) for member in game.members])
        np.testing.assert_array_equal(obs["population"], expected.astype(np.float32))
        red, blue = obs["population"][:64], obs["population"][64:]
        assert red.sum() == pytest.approx(1.0) and blue.sum() == pytest.approx(1.0)
        assert not np.array_equal(red, blue)
        obs, *_ = env.step(env.action_space.sample())


def test_seeded_episodes_are_deterministic():
    def episode(seed):
        env = gym.make(ENV_ID, n_particles=(40, 30))
        obs, _ = env.reset(seed=seed)
        trace = [np.concatenate([obs["state"], obs["population"]])]
        actions = np.random.default_rng(8).uniform(-1, 1, (6, 2)).astype(np.float32)
        for action in actions:
            obs, reward, *_ = env.step(action)
            trace.append(np.concatenate([obs["state"], obs["population"], [reward]]))
        return trace

    first, second, other = episode(9), episode(9), episode(10)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


# --------------------------------------------------------------------------- keywords
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goal": ((3.0, 0.0), (-1.0, 0.0))}, r"goal\[0\]\[0\] must be a finite real in \[-2, 2\]"),
        ({"goal": ((1.0, 0.0), (-1.0, -2.5))}, r"goal\[1\]\[1\] must be a finite real in \[-2, 2\]"),
        ({"goal": (1.0, 0.0)}, r"goal\[0\] must be a sequence of 2 finite reals"),
        ({"goal": ((1.0, 0.0),)}, r"goal must hold one sequence of 2 finite reals per population"),
        ({"aversion": ((0.1, -0.1), (0.1, 0.1))}, r"aversion\[0\]\[1\] must be a finite real in \[0, inf\]"),
        ({"aversion": ((0.1, 0.1), (np.nan, 0.1))}, r"aversion must be a 2x2 matrix of finite reals"),
        ({"aversion": (0.1, 0.1)}, r"aversion must be a 2x2 matrix"),
        ({"init_mean": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))}, r"init_mean\[0\] must be a sequence of 4 finite"),
        ({"init_var": ((0.0,) * 4, (0.0, 0.0, 0.0, -0.1))}, r"init_var\[1\]\[3\] must be a finite real in \[0, inf\]"),
        ({"sigma": -0.1}, r"sigma must be a finite real in \[0, inf\]"),
        ({"action_cost": -1.0}, r"action_cost must be a finite real in \[0, inf\]"),
        ({"action_bound": 0.0}, r"action_bound must be a finite real in \(0, inf\]"),
        ({"domain": (1.0, -1.0)}, r"domain must satisfy low < high"),
        ({"n_bins": 0}, r"n_bins must be an integer >= 1"),
        ({"horizon": 0.0}, r"horizon must be a finite real in \(0, inf\]"),
        ({"n_steps": 2.5}, r"n_steps must be an integer >= 1"),
        ({"crowd_aversion": 0.1}, r"unknown keyword\(s\) \['crowd_aversion'\]"),
        ({"learner_population": "green"}, r"population must be one of \('red', 'blue'\)"),
    ],
)
def test_bad_keywords_raise_value_errors_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)
