"""MFGLinearQuadraticMulti-v0: the two-population exact solver against independent checks.

The same oracles as the one-population solvers (tests/test_linear_quadratic.py): the docs/models.md reference J*
on a decoupled game, the equilibrium mean flow as the fixed point of the exact best-response map, the best
response to the equilibrium flow, particle simulations, and the exact Nash gap with common random numbers.
"""

import itertools

import gymnasium as gym
import numpy as np
import pytest

import mfg_envs  # registers the ids
from mfg_envs.core import PopulationFlow, histogram_moments
from mfg_envs.equilibrium import AffinePolicy, solve_equilibrium
from mfg_envs.game import Game, rollout
from mfg_envs.linear_quadratic_multi import LinearQuadraticMultiModel
from mfg_envs.nash_gap import exact_nash_gap

ENV_ID = "MFGLinearQuadraticMulti-v0"
#: Two copies of MFGLinearQuadratic-v0's tracking preset that do not see each other.
DECOUPLED = {
    "coupling": ((0.5, 0.0), (0.0, 0.5)),
    "terminal_coupling": ((0.5, 0.0), (0.0, 0.5)),
    "sigma": (1.0, 1.0),
    "running_cost": (2.0, 2.0),
    "terminal_cost": (1.0, 1.0),
    "init_mean": (2.0, 2.0),
    "init_var": (0.25, 0.25),
}
TRACKING_REFERENCE_COST = 2.0506497738  # docs/models.md, "MFGLinearQuadratic-v0", tracking preset
DEFAULT_COSTS = (2.304856400814768, 1.5713557911200344)


@pytest.fixture(scope="module")
def env():
    return gym.make(ENV_ID)


@pytest.fixture(scope="module")
def model(env):
    return env.unwrapped.game.model


@pytest.fixture(scope="module")
def equilibrium(model):
    return model.solve_equilibrium()


def eq_means(equilibrium):
    """``(N+1, K)``: the equilibrium mean of every population at every step."""
    return np.array([[mf["mean"] for mf in flow.mean_fields] for flow in equilibrium.flows]).T


def mean_flow(model, means):
    """A frozen flow that carries only the mean path ``means`` (``(N+1,)``): all the LQ game reads."""
    population = np.zeros((model.n_steps + 1, model.populations[0].n_bins), np.float32)
    return PopulationFlow(population, tuple({"mean": float(m)} for m in means))


def affine_mean_path(model, k, gains, offsets):
    """``m_{n+1} = m_n - dt (K_n m_n + k_n)`` from population ``k``'s initial mean (``x' = x + dt a``)."""
    means = [model.populations[k].init_mean]
    for n in range(model.n_steps):
        means.append(means[-1] - model.dt * (gains[n] * means[-1] + offsets[n]))
    return np.array(means)


def exact_variances(model, k, gains):
    """``v_{n+1} = (1 - dt K_n)^2 v_n + sigma_k^2 dt`` from population ``k``'s initial variance."""
    member, variances = model.populations[k], [model.populations[k].init_var]
    for n in range(model.n_steps):
        variances.append((1.0 - model.dt * gains[n]) ** 2 * variances[-1] + member.sigma**2 * model.dt)
    return np.array(variances)


def perturbed(equilibrium, gain=1.0, bias=0.0):
    """Every population plays ``a = -gain K_n x - k_n - bias`` (the equilibrium's offsets, shifted)."""
    return [AffinePolicy(p.model, gain * p.gains, p.offsets + bias) for p in equilibrium.policies]


def analytic_gaps(model, policies):
    """Per population ``J^k(pi_k; mu^pi) - J^k(BR; mu^pi)``: the affine policies' deterministic mean flows, then
    the cost of each policy and of the best response against them (Riccati recursions, no sampling)."""
    means = np.column_stack(
        [affine_mean_path(model, k, p.gains[:, 0, 0], p.offsets[:, 0]) for k, p in enumerate(policies)]
    )
    gaps = []
    for member, policy in zip(model.populations, policies):
        targets = member.targets(means)
        own = member.solve_frozen_targets(targets, policy.gains[:, 0, 0], policy.offsets[:, 0])
        best = member.solve_frozen_targets(targets)
        gaps.append(
            own.expected_cost(member.init_mean, member.init_var) - best.expected_cost(member.init_mean, member.init_var)
        )
    return np.array(gaps)


# --------------------------------------------------------------------------- reference values
def test_decoupled_game_is_two_copies_of_the_tracking_reference():
    equilibrium = gym.make(ENV_ID, **DECOUPLED).unwrapped.game.model.solve_equilibrium()
    assert equilibrium.names == ("red", "blue")
    for expected_return in equilibrium.expected_returns:
        assert -expected_return == pytest.approx(TRACKING_REFERENCE_COST, abs=1e-9)
    red, blue = equilibrium.policies
    np.testing.assert_array_equal(red.gains, blue.gains)
    np.testing.assert_array_equal(red.offsets, blue.offsets)


def test_decoupled_game_matches_the_one_population_solver():
    single = solve_equilibrium(gym.make("MFGLinearQuadratic-v0"))
    multi = LinearQuadraticMultiModel(**DECOUPLED).solve_equilibrium()
    for policy, flow in zip(multi.policies, multi.flows):
        np.testing.assert_allclose(policy.gains, single.policy.gains, atol=1e-12)
        np.testing.assert_allclose(policy.offsets, single.policy.offsets, atol=1e-12)
        np.testing.assert_allclose(
            [mf["mean"] for mf in flow.mean_fields], [mf["mean"] for mf in single.mean_fields], atol=1e-12
        )
        np.testing.assert_allclose(flow.population, single.histograms.astype(np.float32), atol=1e-7)


def test_default_equilibrium_costs(equilibrium):
    np.testing.assert_allclose([-r for r in equilibrium.expected_returns], DEFAULT_COSTS, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- independent checks
def test_equilibrium_means_are_the_fixed_point_of_the_best_response_map(model, equilibrium):
    """m = (m^red_0..N, m^blue_0..N) -> mean flows of both exact best responses to m is affine: build it column by
    column and solve (I - F) m = F(0) directly."""
    size = model.n_steps + 1

    def best_response_means(stacked):
        flows = [mean_flow(model, stacked[k * size : (k + 1) * size]) for k in range(2)]
        paths = []
        for k in range(2):
            policy = model.best_response(k, flows).policy
            paths.append(affine_mean_path(model, k, policy.gains[:, 0, 0], policy.offsets[:, 0]))
        return np.concatenate(paths)

    f0 = best_response_means(np.zeros(2 * size))
    F = np.column_stack([best_response_means(np.eye(2 * size)[j]) - f0 for j in range(2 * size)])
    fixed_point = np.linalg.solve(np.eye(2 * size) - F, f0)
    np.testing.assert_allclose(fixed_point.reshape(2, size).T, eq_means(equilibrium), atol=1e-10)


@pytest.mark.parametrize("kwargs", [{}, DECOUPLED, {"coupling": ((0.2, -0.6), (0.9, 0.1)), "sigma": 0.0}])
def test_equilibrium_solves_the_joint_open_loop_quadratic_program(kwargs):
    """A second, Riccati-free oracle. By certainty equivalence the mean paths are the deterministic optimal paths
    from x_0 = m_0: with x^k = m^k_0 + L a^k (L lower triangular, entries dt), population k minimizes
    dt/2 |a^k|^2 + 1/2 (x^k - y^k)' Q_k (x^k - y^k) at fixed y^k = sum_j D_kj x^j; stacking both first-order
    conditions gives one linear system. J^k* = that deterministic cost + the regulator's variance cost."""
    model = LinearQuadraticMultiModel(**kwargs)
    equilibrium = model.solve_equilibrium()
    n, dt, members = model.n_steps, model.dt, model.populations
    L = np.tril(np.full((n + 1, n), dt), -1)
    m0 = np.array([member.init_mean for member in members])
    Q = [np.diag(np.append(np.full(n, dt * m.running_cost), m.terminal_cost)) for m in members]

    def difference(k, j):  # x^k - y^k = sum_j M[k][j] x^j, with D_kj = diag(W_kj (n < N), WT_kj (n = N))
        own = float(k == j)
        return np.diag(np.append(np.full(n, own - model.coupling[k, j]), own - model.terminal_coupling[k, j]))

    M = [[difference(k, j) for j in range(2)] for k in range(2)]
    lhs = np.block([[dt * np.eye(n) * (k == j) + L.T @ Q[k] @ M[k][j] @ L for j in range(2)] for k in range(2)])
    rhs = np.concatenate([-L.T @ Q[k] @ sum(M[k][j] @ np.full(n + 1, m0[j]) for j in range(2)) for k in range(2)])
    actions = np.linalg.solve(lhs, rhs).reshape(2, n)
    paths = np.column_stack([m0[k] + L @ actions[k] for k in range(2)])
    np.testing.assert_allclose(paths, eq_means(equilibrium), atol=1e-10)
    for k, member in enumerate(members):
        deviation = sum(M[k][j] @ paths[:, j] for j in range(2))
        mean_cost = 0.5 * dt * actions[k] @ actions[k] + 0.5 * deviation @ Q[k] @ deviation
        P, variance_cost = member.terminal_cost, 0.0  # regulator x' = x + dt a + noise, cost dt (a^2 + eps x^2)/2
        for _ in range(n):
            variance_cost += 0.5 * P * member.sigma**2 * dt
            K = P / (1.0 + P * dt)
            P = dt * (K**2 + member.running_cost) + P * (1.0 - dt * K) ** 2
        variance_cost += 0.5 * P * member.init_var
        assert -equilibrium.expected_returns[k] == pytest.approx(mean_cost + variance_cost, abs=1e-10)


def test_best_response_to_the_equilibrium_is_the_equilibrium(model, equilibrium):
    for k, (policy, expected_return) in enumerate(zip(equilibrium.policies, equilibrium.expected_returns)):
        best = model.best_response(k, equilibrium.flows)
        assert best.expected_return == pytest.approx(expected_return, abs=1e-12)
        np.testing.assert_allclose(best.policy.gains, policy.gains, atol=1e-12)
        np.testing.assert_allclose(best.policy.offsets, policy.offsets, atol=1e-12)


def test_equilibrium_flows_are_consistent_with_the_policies(model, equilibrium):
    """The exact mean flow is the mean path of the equilibrium's own affine policies."""
    for k, policy in enumerate(equilibrium.policies):
        path = affine_mean_path(model, k, policy.gains[:, 0, 0], policy.offsets[:, 0])
        np.testing.assert_allclose(path, eq_means(equilibrium)[:, k], atol=1e-12)
        assert equilibrium.flows[k].population.shape == (model.n_steps + 1, model.populations[k].n_bins)
        np.testing.assert_allclose(equilibrium.flows[k].population.sum(axis=1), 1.0, atol=1e-6)


def test_particle_flows_match_the_solver(model, equilibrium):
    """10^4 particles per population under the equilibrium policies reproduce m_n, v_n and J* within sampling error."""
    n = 10_000
    game = Game(model, n)
    flows, returns = rollout(game, equilibrium.policies, seed=3)
    exact_means = eq_means(equilibrium)
    for k, policy in enumerate(equilibrium.policies):
        variances = exact_variances(model, k, policy.gains[:, 0, 0])
        means = np.array([mf["mean"] for mf in flows[k].mean_fields])
        assert np.abs(means - exact_means[:, k]).max() < 5 * np.sqrt(variances.max() / n)
        final = game.members[k].states[:, 0]
        assert final.var() == pytest.approx(variances[-1], rel=5 * np.sqrt(2 / n))
        assert returns[k].mean() == pytest.approx(
            equilibrium.expected_returns[k], abs=5 * returns[k].std() / np.sqrt(n)
        )
        # the binned variance functional on the particles' and on the exact histograms, at every step
        particle_var = histogram_variance(flows[k].population, model.populations[k])
        exact_var = histogram_variance(equilibrium.flows[k].population, model.populations[k])
        assert np.abs(particle_var - exact_var).max() < 5 * variances.max() * np.sqrt(2 / n) + 1e-4
        np.testing.assert_allclose(flows[k].population[-1], equilibrium.flows[k].population[-1], atol=0.01)


def histogram_variance(histograms, member):
    return histogram_moments(histograms, member.histogram_bounds, member.n_bins)[1][:, 0]


# --------------------------------------------------------------------------- Nash gaps
def test_equilibrium_gap_is_within_the_finite_population_floor(env, equilibrium):
    gaps = exact_nash_gap(equilibrium.policies, env, n_particles=10_000)
    assert set(gaps.gaps) == {"red", "blue"}
    for k, gap in enumerate(gaps.gaps.values()):
        assert abs(gap.gap) < 4 * gap.standard_error + 1e-4
        assert abs(gap.relative_gap) < 1e-3
        assert gap.policy_return == pytest.approx(equilibrium.expected_returns[k], abs=0.05)
    assert gaps.gap < 1e-4


@pytest.mark.parametrize("perturbation", [{"gain": 1.1}, {"gain": 0.9}, {"bias": 0.1}])
def test_perturbed_equilibria_have_positive_gaps_matching_the_analytic_ones(env, model, equilibrium, perturbation):
    policies = perturbed(equilibrium, **perturbation)
    exact = analytic_gaps(model, policies)
    estimate = exact_nash_gap(policies, env, n_particles=10_000, relative=False)
    for k, gap in enumerate(estimate.gaps.values()):
        assert exact[k] > 1e-3
        assert gap.gap > 4 * gap.standard_error
        assert abs(gap.gap - exact[k]) < 4 * gap.standard_error + 1e-4


def test_analytic_gaps_vanish_at_the_equilibrium_and_are_quadratic(model, equilibrium):
    np.testing.assert_allclose(analytic_gaps(model, equilibrium.policies), 0.0, atol=1e-12)
    for size in (0.01, 0.02):  # a bias shifts the mean flow linearly: the gap is exactly quadratic
        ratio = analytic_gaps(model, perturbed(equilibrium, bias=2 * size)) / analytic_gaps(
            model, perturbed(equilibrium, bias=size)
        )
        np.testing.assert_allclose(ratio, 4.0, rtol=1e-6)
    gain_gaps = [analytic_gaps(model, perturbed(equilibrium, gain=1 + delta)) for delta in (0.005, 0.01, 0.02, 0.04)]
    assert all((g > 0).all() for g in gain_gaps)
    ratios = [b / a for a, b in itertools.pairwise(gain_gaps)]
    for ratio, tolerance in zip(ratios, (0.01, 0.02, 0.04)):  # 4 + O(delta)
        np.testing.assert_allclose(ratio, 4.0, rtol=tolerance)


def test_estimated_gap_is_quadratic_in_the_gain_perturbation(env, equilibrium):
    small, large = (
        exact_nash_gap(perturbed(equilibrium, gain=gain), env, n_particles=40_000, relative=False)
        for gain in (1.02, 1.04)
    )
    for name in ("red", "blue"):
        assert small.gaps[name].gap > 4 * small.gaps[name].standard_error
        assert 3.5 < large.gaps[name].gap / small.gaps[name].gap < 4.5


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sigma": (1, -1)}, r"sigma\[1\]"),
        ({"sigma": -0.5}, r"sigma\[0\]"),
        ({"running_cost": (1.0, float("nan"))}, r"running_cost\[1\]"),
        ({"terminal_cost": (-1.0, 1.0)}, r"terminal_cost\[0\]"),
        ({"init_var": (0.25, -0.1)}, r"init_var\[1\]"),
        ({"init_mean": ("a", 0.0)}, r"init_mean\[0\]"),
        ({"sigma": (1.0, 0.5, 0.2)}, "sigma"),
        ({"init_mean": (2.0,)}, "init_mean"),
        ({"running_cost": ()}, "running_cost"),
        ({"coupling": ((0.5, 0.3), (0.4, 0.2), (0.1, 0.1))}, "coupling"),
        ({"coupling": (0.5, 0.3)}, "coupling"),
        ({"terminal_coupling": ((0.5, np.inf), (0.4, 0.2))}, "terminal_coupling"),
        ({"horizon": 0.0}, "horizon"),
        ({"n_steps": 0}, "n_steps"),
        ({"action_bound": 0.0}, "action_bound"),
        ({"n_bins": 0}, "n_bins"),
        ({"histogram_range": (5.0, -3.0)}, "histogram_range"),
        ({"n_particles": 0}, "n_particles"),
        ({"n_particles": (10, 10, 10)}, "n_particles"),
        ({"population_representation": "pixels"}, "population_representation"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make(ENV_ID, **kwargs)


def test_wrong_number_of_values_says_one_per_population():
    with pytest.raises(ValueError, match="one per population"):
        LinearQuadraticMultiModel(terminal_cost=(1.0, 2.0, 3.0))


@pytest.mark.parametrize("keyword", ["kappa", "not_a_parameter"])
def test_unknown_keywords_are_rejected(keyword):
    with pytest.raises(ValueError, match=f"unknown keyword.*{keyword}.*coupling"):
        gym.make(ENV_ID, **{keyword: 0.5})
    with pytest.raises(ValueError, match="unknown keyword"):
        mfg_envs.parallel_env(ENV_ID, n_agents=2, **{keyword: 0.5})


@pytest.mark.parametrize("population", ["green", 2, -1, True, None])
def test_unknown_learner_population_lists_the_names(population):
    with pytest.raises(ValueError, match=r"\('red', 'blue'\)"):
        gym.make(ENV_ID, learner_population=population)


@pytest.mark.parametrize(("population", "index"), [("red", 0), ("blue", 1), (0, 0), (1, 1)])
def test_learner_population_by_name_or_index(population, index):
    assert gym.make(ENV_ID, learner_population=population).unwrapped.learner == index


def test_scalars_apply_to_both_populations():
    model = LinearQuadraticMultiModel(sigma=0.3, running_cost=1.5, terminal_cost=0.5, init_mean=1.0, init_var=0.1)
    for member in model.populations:
        assert (member.sigma, member.running_cost, member.terminal_cost) == (0.3, 1.5, 0.5)
        assert (member.init_mean, member.init_var) == (1.0, 0.1)
