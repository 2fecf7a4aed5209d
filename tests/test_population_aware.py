"""MFGLinearQuadratic-v0 with a random population: a random initial mean (``init_mean_std``) and common noise
(``common_noise``), against the reference values of docs/population_aware.md and simulation."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from helpers import SYSTEMIC_RISK

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.common_noise import mean_feedback_best_response
from mfg_envs.core import ConstantPolicy
from mfg_envs.equilibrium import solve_equilibrium
from mfg_envs.game import Game, frozen_flows_returns, rollout
from mfg_envs.nash_gap import crn_nash_gap, exact_nash_gap

RANDOM = {"common_noise": 0.5, "init_mean_std": 1.0}

# (parameters, J*, J(time-only), exact gap of the time-only policy): an independent oracle's values
REFERENCE = [
    ({"common_noise": 0.5}, 2.107700524, 2.125098020, 0.006437222),
    ({"init_mean_std": 1.0}, 2.360149204, 2.455122900, 0.030492428),
    (RANDOM, 2.417199954, 2.529571146, 0.036929650),
    (SYSTEMIC_RISK | RANDOM, 0.3374081622, 0.6748281132, 0.261890966),
]


def make(**kwargs):
    return gym.make("MFGLinearQuadratic-v0", **kwargs)


def time_only_policy(model):
    """Today's equilibrium (the random keywords off) as a function of time, for ``model``'s env."""
    fixed = {key: getattr(model, key) for key in ("mean_reversion", "cross_cost", "kappa", "kappa_terminal")}
    fixed |= {"init_mean": model.init_mean, "init_var": model.init_var}
    return dataclasses.replace(solve_equilibrium(make(**fixed)).policy, model=model)


def test_defaults_are_bit_identical_to_the_fixed_law():
    """With the keywords at 0 nothing extra is drawn: the particles follow x' = x + dt a + sigma sqrt(dt) xi from
    x_0 = m_0 + sqrt(v_0) xi_0, every draw taken in order from default_rng(seed)."""
    model = make(init_mean_std=0.0, common_noise=0.0).unwrapped.model
    action = 0.3
    game = Game(model, 64)
    _, returns = rollout(game, ConstantPolicy(np.array([action])), seed=7)
    rng = np.random.default_rng(7)
    x = model.init_mean + np.sqrt(model.init_var) * rng.standard_normal((64, 1))
    expected = np.zeros(64)
    for _ in range(model.n_steps):
        gap = x[:, 0] - model.kappa * x[:, 0].mean()
        a = action * model.action_bound
        expected -= model.dt * (0.5 * a**2 + 0.5 * model.running_cost * gap**2)
        x = x + model.dt * a + model.sigma * np.sqrt(model.dt) * rng.standard_normal((64, 1))
    expected -= 0.5 * model.terminal_cost * (x[:, 0] - model.kappa_terminal * x[:, 0].mean()) ** 2
    np.testing.assert_array_equal(game.members[0].states, x)
    np.testing.assert_allclose(returns[0], expected, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "cost", "time_only_cost", "gap"), REFERENCE)
def test_exact_costs_match_the_reference(kwargs, cost, time_only_cost, gap):
    env = make(**kwargs)
    model = env.unwrapped.model
    assert -solve_equilibrium(env).expected_return == pytest.approx(cost, abs=1e-8)
    policy = time_only_policy(model)
    assert model.policy_cost(policy) == pytest.approx(time_only_cost, abs=1e-8)
    assert model.policy_cost(policy) + model.feedback_best_response(policy).expected_return == pytest.approx(
        gap, abs=1e-8
    )


@pytest.mark.parametrize("kwargs", [{}, SYSTEMIC_RISK])
def test_gains_do_not_depend_on_the_random_population(kwargs):
    """Certainty equivalence: the feedback gains on x and m are those of the fixed law."""
    fixed = solve_equilibrium(make(**kwargs)).policy
    random = solve_equilibrium(make(**kwargs, **RANDOM)).policy
    np.testing.assert_allclose(random.gains, fixed.gains, atol=1e-14)
    means = fixed.offsets[:, 0] / random.population_gains[:, 0, 0]
    assert random.offsets == pytest.approx(0.0, abs=1e-14)
    # the fixed law's time-only offsets are C_n m*_n along the nominal mean path
    equilibrium = solve_equilibrium(make(**kwargs))
    np.testing.assert_allclose(means, [mf["mean"] for mf in equilibrium.mean_fields[:-1]], rtol=1e-10)


def test_expected_return_matches_simulation_of_the_env():
    """J* averages over the initial mean and the common noise: the env's own particles, many episodes."""
    env = make(**RANDOM)
    equilibrium = solve_equilibrium(env)
    game = Game(env.unwrapped.model, 1000)
    returns = np.array([rollout(game, equilibrium.policy, seed)[1][0].mean() for seed in range(600)])
    error = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - equilibrium.expected_return) < 4 * error
    assert error < 0.1  # the check has teeth: J* differs from the fixed law's by 0.37


def test_the_population_mean_is_random_and_shared():
    model = make(init_mean_std=1.0, init_var=0.25).unwrapped.model
    means = np.array([model.initial_states(2000, np.random.default_rng(seed))[:, 0].mean() for seed in range(400)])
    assert means.mean() == pytest.approx(model.init_mean, abs=4 / np.sqrt(400))
    assert means.std() == pytest.approx(np.sqrt(1.0 + 0.25 / 2000), rel=4 / np.sqrt(2 * 400))
    # M0 is drawn first, then the particles: the same seed gives the same M0 for any population size
    rng = np.random.default_rng(5)
    shared = model.init_mean + rng.standard_normal()
    np.testing.assert_array_equal(
        model.initial_states(3, np.random.default_rng(5)), shared + 0.5 * rng.standard_normal((3, 1))
    )
    large = model.initial_states(40_000, np.random.default_rng(5))
    assert large[:, 0].mean() == pytest.approx(shared, abs=4 * 0.5 / np.sqrt(40_000))


def test_common_noise_moves_every_particle_alike():
    """With sigma = 0 only the common shock moves the particles: their spread never changes, their mean does."""
    model = make(sigma=0.0, common_noise=0.5).unwrapped.model
    game = Game(model, 500)
    flows, _ = rollout(game, ConstantPolicy(np.zeros(1)), seed=3)
    assert game.members[0].states[:, 0].std() == pytest.approx(np.sqrt(model.init_var), rel=0.1)
    initial = model.initial_states(500, np.random.default_rng(3))
    np.testing.assert_allclose(
        (game.members[0].states - initial)[:, 0], (game.members[0].states - initial)[0, 0], atol=1e-12
    )
    assert flows[0].mean_fields[-1]["mean"] != pytest.approx(flows[0].mean_fields[0]["mean"], abs=1e-3)


def test_equilibrium_policy_reads_the_population_mean():
    env = make(**RANDOM, population_representation="moments")
    policy = solve_equilibrium(env).policy
    obs = {"state": np.zeros((2, 1), np.float32), "time": np.zeros((2, 1), np.float32)}
    obs["population"] = np.array([[1.0, 0.5], [2.0, 0.5]], np.float32)
    actions = policy(obs)[:, 0] * env.unwrapped.model.action_bound
    assert actions[1] - actions[0] == pytest.approx(-policy.population_gains[0, 0, 0], rel=1e-6)
    assert policy.population_gains[0, 0, 0] != 0.0


@pytest.mark.parametrize("representation", ["histogram", "moments"])
def test_simulated_gap_of_the_time_only_policy_matches_its_closed_form(representation):
    env = make(**RANDOM, population_representation=representation)
    model = env.unwrapped.model
    policy = time_only_policy(model)
    exact = model.policy_cost(policy) + model.feedback_best_response(policy).expected_return
    estimate = exact_nash_gap(policy, env, n_particles=2000, relative=False, n_replicates=40)
    assert exact > 0.03
    assert abs(estimate.gap - exact) < 4 * estimate.standard_error + 0.003


def test_equilibrium_gap_is_at_the_floor():
    for kwargs in (RANDOM, {"init_mean_std": 1.0}):
        env = make(**kwargs)
        estimate = exact_nash_gap(solve_equilibrium(env).policy, env, n_particles=2000, n_replicates=8)
        assert abs(estimate.gap) < 4 * estimate.standard_error + 1e-3
        assert abs(estimate.relative_gap) < 0.01


def test_common_noise_refuses_best_responses_to_one_flow():
    env = make(common_noise=0.5)
    with pytest.raises(ValueError, match="feedback_best_response"):
        env.unwrapped.model.best_response(solve_equilibrium(env).flow)
    game = env.unwrapped.game
    with pytest.raises(NotImplementedError, match="common noise"):
        crn_nash_gap(game, [ConstantPolicy(np.zeros(1))], lambda: None, "dp", 100)


@pytest.mark.parametrize("keyword", ["init_mean_std", "common_noise"])
def test_bad_values_name_themselves(keyword):
    with pytest.raises(ValueError, match=keyword):
        make(**{keyword: -0.5})


def test_numerical_best_response_matches_the_exact_one_on_an_affine_policy():
    """A plain callable hides that the policy is affine: the numerical best response must then find the exact
    best response's return (same replicates, same shocks)."""
    env = make(**RANDOM)
    policy = time_only_policy(env.unwrapped.model)
    exact = exact_nash_gap(policy, env, n_particles=2000, relative=False, n_replicates=8)
    numerical = exact_nash_gap(lambda obs: policy(obs), env, n_particles=2000, relative=False, n_replicates=8)
    assert numerical.policy_return == exact.policy_return
    assert numerical.best_response_return == pytest.approx(exact.best_response_return, abs=1e-3)
    assert exact.gap > 0.01  # the tolerance is small against what the best response gains


def pushed_equilibrium(env, push=0.1):
    """The equilibrium plus a push that is nonlinear in the observed population mean."""
    equilibrium = solve_equilibrium(env).policy

    def policy(obs):
        means = equilibrium.population_means(obs["population"])
        return np.clip(equilibrium(obs) + push * np.tanh(means - 2.0), -1.0, 1.0)

    return policy


def test_numerical_best_response_is_stable_under_refinement():
    env = make(**RANDOM)
    game, policy = env.unwrapped.game, pushed_equilibrium(env)
    coarse = mean_feedback_best_response(game, policy, seed=11, n_episodes=32, grid_points=101)
    fine = mean_feedback_best_response(game, policy, seed=12, n_episodes=128, grid_points=801)
    returns = [
        frozen_flows_returns(game, rollout(game.clone(2000), policy, 5)[0], 0, br, 2000, 5) for br in (coarse, fine)
    ]
    assert returns[0].mean() == pytest.approx(returns[1].mean(), abs=2e-3)
    estimate = exact_nash_gap(policy, env, n_particles=2000, relative=False, n_replicates=8)
    assert estimate.gap > 4 * estimate.standard_error


def test_relative_gap_divides_by_the_neutral_gap_averaged_over_the_draws():
    env = make(**RANDOM)
    neutral = ConstantPolicy(np.zeros(1))
    scale = env.unwrapped.model.exact_gap(neutral)
    estimate = exact_nash_gap(neutral, env, n_particles=2000, n_replicates=40)
    assert abs(estimate.gap - scale) < 4 * estimate.standard_error
    assert estimate.relative_gap == pytest.approx(estimate.gap / scale, rel=1e-12)
