"""MFGLinearQuadratic-v0 against the closed-form oracles of docs/models.md ("MFGLinearQuadratic-v0")."""

import gymnasium as gym
import numpy as np
import pytest
from helpers import SYSTEMIC_RISK, rollout_population

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.core import ConstantPolicy, Population
from mfg_envs.equilibrium import AffinePolicy, solve_equilibrium
from mfg_envs.nash_gap import exact_nash_gap


@pytest.fixture(scope="module")
def env():
    return gym.make("MFGLinearQuadratic-v0")


@pytest.fixture(scope="module")
def equilibrium(env):
    return solve_equilibrium(env)


def feedback_policy(model, equilibrium, gain=1.0, mean_gain=1.0, bias=0.0):
    """``a = -gain K_n x - mean_gain C_n m_n - bias`` with ``m_n`` the flow this policy itself induces."""
    eq_means = np.array([mf["mean"] for mf in equilibrium.mean_fields])
    K, C = equilibrium.policy.gains[:, 0, 0], equilibrium.policy.offsets[:, 0] / eq_means[:-1]
    means = [model.init_mean]
    for n in range(model.n_steps):  # beta = 0 on the tracking preset
        means.append(means[-1] - model.dt * ((gain * K[n] + mean_gain * C[n]) * means[-1] + bias))
    offsets = mean_gain * C * np.array(means[:-1]) + bias
    return AffinePolicy(model, (gain * K).reshape(-1, 1, 1), offsets.reshape(-1, 1))


def analytic_gap(model, policy):
    """``J(pi; mu^pi) - J(BR; mu^pi)`` from the Riccati recursions (deterministic mean flow of an affine policy)."""
    K, k = policy.gains[:, 0, 0], policy.offsets[:, 0]
    means = [model.init_mean]
    for n in range(model.n_steps):
        means.append(means[-1] - model.dt * (K[n] * means[-1] + k[n]))
    own = model.solve_frozen_flow(np.array(means), K, k).expected_cost(model.init_mean, model.init_var)
    best = model.solve_frozen_flow(np.array(means)).expected_cost(model.init_mean, model.init_var)
    return own - best


@pytest.mark.parametrize(("kwargs", "cost"), [({}, 2.0506497738), (SYSTEMIC_RISK, 0.3374081622)])
def test_equilibrium_cost_matches_reference(kwargs, cost):
    assert -solve_equilibrium(gym.make("MFGLinearQuadratic-v0", **kwargs)).expected_return == pytest.approx(
        cost, abs=1e-9
    )


@pytest.mark.parametrize("kwargs", [{}, SYSTEMIC_RISK])
def test_equilibrium_mean_flow_is_the_fixed_point_of_the_best_response_map(kwargs):
    """Independent check: m -> mean flow of the best response to m is affine; solve (I - F) m = F(0)."""
    env = gym.make("MFGLinearQuadratic-v0", **kwargs)
    model, eq = env.unwrapped.model, solve_equilibrium(env)

    def best_response_mean_flow(means):
        solution = model.solve_frozen_flow(means)
        K, k = solution.gains, solution.offsets
        flow = [model.init_mean]
        for n in range(model.n_steps):
            drift = model.mean_reversion * (means[n] - flow[-1]) - K[n] * flow[-1] - k[n]
            flow.append(flow[-1] + model.dt * drift)
        return np.array(flow)

    size = model.n_steps + 1
    f0 = best_response_mean_flow(np.zeros(size))
    F = np.column_stack([best_response_mean_flow(np.eye(size)[j]) - f0 for j in range(size)])
    fixed_point = np.linalg.solve(np.eye(size) - F, f0)
    np.testing.assert_allclose([mf["mean"] for mf in eq.mean_fields], fixed_point, atol=1e-12)


def test_best_response_to_the_equilibrium_is_the_equilibrium(env, equilibrium):
    best = env.unwrapped.model.best_response(equilibrium.flow)
    assert best.expected_return == pytest.approx(equilibrium.expected_return, abs=1e-12)
    np.testing.assert_allclose(best.policy.gains, equilibrium.policy.gains, atol=1e-12)
    np.testing.assert_allclose(best.policy.offsets, equilibrium.policy.offsets, atol=1e-12)


@pytest.mark.parametrize(
    ("perturbation", "gap"),
    [
        ({"gain": 1.01}, 1.429e-4),
        ({"gain": 1.10}, 1.336e-2),
        ({"gain": 0.90}, 1.559e-2),
        ({"mean_gain": 1.10}, 1.740e-3),
        ({"bias": 0.1}, 3.486e-3),
        ({"bias": 0.01}, 3.486e-5),
    ],
)
def test_perturbation_gaps_match_reference(env, equilibrium, perturbation, gap):
    policy = feedback_policy(env.unwrapped.model, equilibrium, **perturbation)
    assert analytic_gap(env.unwrapped.model, policy) == pytest.approx(gap, rel=2e-3)


@pytest.mark.parametrize(("perturbation", "gap"), [({"gain": 1.10}, 1.336e-2), ({"bias": 0.1}, 3.486e-3)])
def test_exact_nash_gap_estimator_recovers_reference_gaps(env, equilibrium, perturbation, gap):
    estimate = exact_nash_gap(feedback_policy(env.unwrapped.model, equilibrium, **perturbation), env, 20_000, 0, False)
    assert estimate.gap > 0
    assert abs(estimate.gap - gap) < 4 * estimate.standard_error + 1e-4


def test_neutral_policy_gap_and_relative_scale(env):
    estimate = exact_nash_gap(ConstantPolicy(np.zeros(1)), env, 20_000, 1)
    assert estimate.gap == pytest.approx(1.350, abs=4 * estimate.standard_error + 1e-3)
    assert estimate.relative_gap == pytest.approx(1.0, abs=4 * estimate.standard_error / estimate.gap)


def test_equilibrium_gap_is_within_the_finite_population_floor(env, equilibrium):
    estimate = exact_nash_gap(equilibrium.policy, env, 10_000, 2)
    assert abs(estimate.gap) < 4 * estimate.standard_error + 1e-4
    assert abs(estimate.relative_gap) < 1e-3
    assert estimate.policy_return == pytest.approx(equilibrium.expected_return, abs=0.05)


def test_gaps_are_quadratic_for_small_perturbations(env, equilibrium):
    model = env.unwrapped.model
    gaps = [analytic_gap(model, feedback_policy(model, equilibrium, bias=b)) for b in (0.001, 0.01, 0.1)]
    assert all(g > 0 for g in gaps)
    assert gaps[1] / gaps[0] == pytest.approx(100, rel=1e-3)
    assert gaps[2] / gaps[1] == pytest.approx(100, rel=1e-3)


def test_particle_flows_match_the_solver(env, equilibrium):
    """The env's own particles under the equilibrium policy reproduce m_n, v_n and J* within sampling error."""
    model, n = env.unwrapped.model, 40_000
    population = Population(model, n)
    flow, returns = rollout_population(population, equilibrium.policy, 3)
    means = np.array([mf["mean"] for mf in flow.mean_fields])
    exact_means = np.array([mf["mean"] for mf in equilibrium.mean_fields])
    # v_n from the exact histogram would be binned; rebuild it from the recursion instead
    K = equilibrium.policy.gains[:, 0, 0]
    variances = [model.init_var]
    for n_step in range(model.n_steps):
        variances.append((1 - model.dt * K[n_step]) ** 2 * variances[-1] + model.sigma**2 * model.dt)
    assert np.abs(means - exact_means).max() < 5 * np.sqrt(max(variances) / n)
    np.testing.assert_allclose(population.states[:, 0].var(), variances[-1], rtol=5 * np.sqrt(2 / n))
    assert returns.mean() == pytest.approx(equilibrium.expected_return, abs=5 * returns.std() / np.sqrt(n))
    np.testing.assert_allclose(flow.population[-1], equilibrium.histograms[-1], atol=0.01)


def test_linear_policy_flow_matches_closed_form():
    """a = -0.5 x + 0.3 (inside the bounds): m' = m + dt (-0.5 m + 0.3), v' = (1 - 0.5 dt)^2 v + sigma^2 dt."""
    env = gym.make("MFGLinearQuadratic-v0", n_particles=50_000)
    model = env.unwrapped.model
    policy = AffinePolicy(model, np.full((model.n_steps, 1, 1), 0.5), np.full((model.n_steps, 1), -0.3))
    flow = env.unwrapped.record_population_flow(policy, seed=4)
    m, v = model.init_mean, model.init_var
    for n in range(model.n_steps):
        assert flow.mean_fields[n]["mean"] == pytest.approx(m, abs=5 * np.sqrt(v / 50_000))
        m, v = m + model.dt * (-0.5 * m + 0.3), (1 - 0.5 * model.dt) ** 2 * v + model.sigma**2 * model.dt
    assert flow.mean_fields[-1]["mean"] == pytest.approx(m, abs=5 * np.sqrt(v / 50_000))


def test_reward_ignores_the_population_when_coupling_is_off():
    """kappa = kappa_T = beta = 0: the coupling vanishes, so the others' policy cannot matter."""
    returns = []
    for action in (-1.0, 1.0):
        env = gym.make("MFGLinearQuadratic-v0", n_particles=100, kappa=0.0, kappa_terminal=0.0)
        env.unwrapped.set_population_policy(ConstantPolicy(np.array([action])))
        env.reset(seed=0)
        returns.append([env.step(np.array([0.2], np.float32))[1] for _ in range(env.unwrapped.model.n_steps)])
    assert np.array_equal(returns[0], returns[1])


def test_mean_reversion_couples_the_dynamics():
    states = []
    for action in (-1.0, 1.0):
        env = gym.make("MFGLinearQuadratic-v0", n_particles=100, mean_reversion=1.0)
        env.unwrapped.set_population_policy(ConstantPolicy(np.array([action])))
        env.reset(seed=0)
        states.append([env.step(np.zeros(1, np.float32))[0]["state"][0] for _ in range(5)])
    assert states[0][0] == states[1][0]  # m_0 does not depend on the policy
    assert states[0][-1] < states[1][-1]  # later, a higher population mean pulls the agent up


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("horizon", 0.0),
        ("n_steps", 0),
        ("sigma", -0.1),
        ("mean_reversion", -1.0),
        ("running_cost", 0.5),
        ("terminal_cost", -1.0),
        ("init_var", -0.1),
        ("action_bound", 0.0),
        ("histogram_range", (5.0, -3.0)),
        ("histogram_range", (1.0,)),
        ("kappa", float("nan")),
    ],
)
def test_bad_parameters_name_themselves(keyword, value):
    kwargs = {keyword: value}
    if keyword == "running_cost":
        kwargs["cross_cost"] = 1.0  # running_cost must be >= cross_cost^2 for a convex cost
    with pytest.raises(ValueError, match=keyword):
        gym.make("MFGLinearQuadratic-v0", **kwargs)


@pytest.mark.parametrize("representation", ["histogram", "kde", "moments"])
def test_equilibrium_flow_in_every_representation_freezes_the_env(representation):
    env = gym.make("MFGLinearQuadratic-v0", population_representation=representation)
    equilibrium = solve_equilibrium(env)
    flow = equilibrium.flow_for(env)
    env.unwrapped.set_population_flow(flow)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["population"], flow.population[0])
    if representation == "moments":  # the binned exact law's mean is the exact mean up to the bin width
        exact_means = [mf["mean"] for mf in equilibrium.mean_fields]
        np.testing.assert_allclose(flow.population[:, 0], exact_means, atol=0.2 / 2)
