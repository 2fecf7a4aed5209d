"""MFGResource-v0 against its section of docs/models.md, Monte Carlo, quadrature and the particle simulator."""

import math

import numpy as np
import pytest
from helpers import rollout_population

from mfg_envs import solve_equilibrium
from mfg_envs.core import ConstantPolicy, Population, histogram
from mfg_envs.equilibrium import AffinePolicy
from mfg_envs.game import Game, rollout
from mfg_envs.nash_gap import exact_nash_gap
from mfg_envs.resource import ResourceEnv, ResourceModel
from mfg_envs.vector import MeanFieldVectorEnv

ABAR_STAR, RETURN_STAR = 0.487776595332259, 4.599747402953  # docs/models.md, "MFGResource-v0", defaults


@pytest.fixture(scope="module")
def model():
    return ResourceModel()


@pytest.fixture(scope="module")
def equilibrium(model):
    return model.solve_equilibrium()


@pytest.fixture(scope="module")
def env():
    return ResourceEnv(n_particles=10)


def draw_demand_and_capacity(model, n, seed):
    """``n`` i.i.d. draws of ``(theta, c)`` from the stationary demand law and the uniform capacity law."""
    rng = np.random.default_rng(seed)
    tau = model.demand_noise / math.sqrt(1.0 - model.demand_persistence**2)
    return model.demand_mean + tau * rng.standard_normal(n), rng.uniform(model.capacity_min, model.capacity_max, n)


def clipped_affine(model, gain, offset):
    """``a = clip(gain theta - offset, 0, c)`` at every step (the normalized clip of :class:`AffinePolicy`)."""
    gains = np.zeros((model.n_steps, 1, 3))
    gains[:, 0, 0] = -gain
    return AffinePolicy(model, gains, np.full((model.n_steps, 1), offset))


def quadrature_gap(model, gain, offset, n_demand=4001, n_capacity=400):
    """Nash gap of ``clip(gain theta - offset, 0, c)`` by the per-step formula of docs/models.md, on a fine grid.

    ``N E[(pi - Y)^2/2 - (clip(Y, 0, c) - Y)^2/2]``, ``Y = theta - kappa E[pi]``; trapezoid on +-10 tau in
    ``theta``, midpoints in ``c`` (converged to ~1e-6 on these policies).
    """
    tau = model.demand_noise / math.sqrt(1.0 - model.demand_persistence**2)
    theta = model.demand_mean + tau * np.linspace(-10.0, 10.0, n_demand)[:, None]
    weights = np.exp(-0.5 * ((theta - model.demand_mean) / tau) ** 2)
    weights /= weights.sum() * n_capacity
    width = model.capacity_max - model.capacity_min
    capacity = model.capacity_min + width * (np.arange(n_capacity)[None, :] + 0.5) / n_capacity
    policy = np.clip(gain * theta - offset, 0.0, capacity)
    Y = theta - model.congestion * (weights * policy).sum()
    per_step = (weights * ((policy - Y) ** 2 - (np.clip(Y, 0.0, capacity) - Y) ** 2)).sum() / 2
    return model.n_steps * per_step


def replicated_gap(env, policy, n_replicates=8, n_particles=40_000):
    """``exact_nash_gap`` over 8 replicates: its error is the replicate spread (the flow is estimated from the
    same particles, so the per-particle spread alone would understate it)."""
    estimate = exact_nash_gap(policy, env, n_particles=n_particles, seed=0, relative=False, n_replicates=n_replicates)
    return estimate.gap, estimate.standard_error


def models_gap_policies(model):
    """The perturbations of docs/models.md as ``(gain, offset)`` of ``clip(gain theta - offset, 0, c)``, with the quoted
    gap and half a unit of its last quoted digit."""
    kappa = model.congestion
    social = ResourceModel(congestion=2 * kappa).equilibrium_mean_allocation()  # the planner's own fixed point
    return {
        "bias +0.1": ((1.0, kappa * ABAR_STAR - 0.1), 0.1734, 5e-5),
        "gain x1.1": ((1.1, 1.1 * kappa * ABAR_STAR), 4.508e-2, 5e-6),
        "ignoring congestion": ((1.0, 0.0), 3.468, 5e-4),
        "social optimum": ((1.0, 2 * kappa * social), 0.782, 5e-4),
        "a = 0": ((0.0, 0.0), 10.82, 5e-3),
    }


# --------------------------------------------------------------------------- the equilibrium
def test_equilibrium_matches_reference(model, equilibrium):
    assert equilibrium.mean_fields[0]["mean_allocation"] == pytest.approx(ABAR_STAR, abs=1e-9)
    assert equilibrium.expected_return == pytest.approx(RETURN_STAR, abs=1e-9)
    assert all(
        mf["mean_allocation"] == equilibrium.mean_fields[0]["mean_allocation"] for mf in equilibrium.mean_fields[:-1]
    )
    # docs/models.md: the box binds, so the interior formula thbar / (1 + kappa) = 0.5 is not the equilibrium ...
    assert abs(ABAR_STAR - model.demand_mean / (1 + model.congestion)) > 0.01
    # ... and is not a fixed point either: clip(theta - 0.5 kappa, 0, c) does not average 0.5
    theta, capacity = draw_demand_and_capacity(model, 1_000_000, 0)
    interior = np.clip(theta - 0.5 * model.congestion, 0.0, capacity)
    assert abs(interior.mean() - 0.5) > 10 * interior.std() / 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"demand_persistence": -0.5, "demand_noise": 0.6, "capacity_min": 0.0, "congestion": 0.3},
        {"demand_noise": 0},
    ],
)
@pytest.mark.parametrize("mean_allocation", [0.0, ABAR_STAR, 1.2])
def test_closed_forms_match_monte_carlo(kwargs, mean_allocation):
    """``E clip(Y, 0, c)``, ``J_n`` and the allocation histogram against 10^6 draws of ``(theta, c)``."""
    model, n = ResourceModel(**kwargs), 1_000_000
    theta, capacity = draw_demand_and_capacity(model, n, 1)
    Y = theta - model.congestion * mean_allocation
    allocation = np.clip(Y, 0.0, capacity)
    reward = theta * allocation - allocation**2 / 2 - model.congestion * mean_allocation * allocation
    expected_allocation, step_return = model.best_response_statistics(mean_allocation)
    assert expected_allocation == pytest.approx(allocation.mean(), abs=5 * allocation.std() / math.sqrt(n) + 1e-12)
    assert step_return == pytest.approx(reward.mean(), abs=5 * reward.std() / math.sqrt(n) + 1e-12)
    exact_hist = model.allocation_histogram(mean_allocation)
    assert exact_hist.sum() == pytest.approx(1.0, abs=1e-12) and (exact_hist >= 0).all()
    sampled_hist = histogram(allocation[:, None], model.histogram_bounds, model.n_bins)
    np.testing.assert_allclose(exact_hist, sampled_hist, atol=5 * math.sqrt(0.25 / n) + 1e-12)


def test_the_box_binds(model):
    """docs/models.md, "MFGResource-v0": P(a* = 0) = 0.153 and P(a* = c) = 0.201 (3 decimals)."""
    n = 1_000_000
    theta, capacity = draw_demand_and_capacity(model, n, 2)
    Y = theta - model.congestion * ABAR_STAR
    tau = model.demand_noise / math.sqrt(1.0 - model.demand_persistence**2)
    exact_zero = 0.5 * (1.0 + math.erf(-(model.demand_mean - model.congestion * ABAR_STAR) / (tau * math.sqrt(2))))
    assert exact_zero == pytest.approx(0.153, abs=5e-4)
    for frequency, reference in (((Y <= 0).mean(), 0.153), ((capacity <= Y).mean(), 0.201)):
        assert frequency == pytest.approx(reference, abs=5e-4 + 5 * math.sqrt(reference * (1 - reference) / n))


def test_equilibrium_flow_and_histograms(model, equilibrium):
    hist = equilibrium.histograms
    assert hist.shape == (model.n_steps + 1, model.n_bins)
    np.testing.assert_allclose(hist.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(hist[0], 1.0 / model.n_bins)  # no allocation yet: the env's uniform histogram
    assert equilibrium.mean_fields[-1] == {}
    centers = (np.arange(model.n_bins) + 0.5) * model.capacity_max / model.n_bins
    assert (hist[1:] @ centers) == pytest.approx(
        np.full(model.n_steps, ABAR_STAR), abs=model.capacity_max / model.n_bins
    )


def test_best_response_to_the_equilibrium_is_the_equilibrium(model, equilibrium):
    best = model.best_response(equilibrium.flow)
    assert best.expected_return == pytest.approx(equilibrium.expected_return, abs=1e-12)
    np.testing.assert_array_equal(best.policy.gains, equilibrium.policy.gains)
    np.testing.assert_allclose(best.policy.offsets, equilibrium.policy.offsets, atol=1e-15)


def test_best_response_return_matches_a_ghost_cohort(env, model):
    """The closed-form return of the best response to a frozen flow against ghosts playing it on that flow."""
    n = 20_000
    flow = env.record_population_flow(ConstantPolicy(np.array([0.3])), seed=3)
    best = model.best_response(flow)
    ghosts = ResourceEnv(n_particles=n)
    ghosts.population.flow = flow
    _, returns = rollout_population(ghosts.population, best.policy, 4)
    assert best.expected_return == pytest.approx(returns.mean(), abs=5 * returns.std() / math.sqrt(n))


# --------------------------------------------------------------------------- Nash gaps
@pytest.mark.parametrize("name", ["bias +0.1", "gain x1.1", "ignoring congestion", "social optimum", "a = 0"])
def test_gap_formula_matches_reference(model, name):
    (gain, offset), reference, rounding = models_gap_policies(model)[name]
    assert quadrature_gap(model, gain, offset) == pytest.approx(reference, abs=rounding + 1e-5)


@pytest.mark.parametrize("name", ["bias +0.1", "gain x1.1", "ignoring congestion", "social optimum", "a = 0"])
def test_exact_nash_gap_recovers_reference(env, model, name):
    (gain, offset), reference, rounding = models_gap_policies(model)[name]
    gap, standard_error = replicated_gap(env, clipped_affine(model, gain, offset))
    assert gap > 0
    # 2e-4 covers the O(1/N) finite-population bias (~3e-5 at N = 4e4, see the equilibrium floor test)
    assert gap == pytest.approx(reference, abs=4 * standard_error + rounding + 2e-4)


def test_per_step_gap_formula_matches_exact_nash_gap(env, model):
    """A policy outside the docs/models.md table: the formula (quadrature) and the particle estimate agree."""
    gain, offset = 0.8, 0.8 * model.congestion * ABAR_STAR - 0.05
    gap, standard_error = replicated_gap(env, clipped_affine(model, gain, offset))
    assert gap == pytest.approx(quadrature_gap(model, gain, offset), abs=4 * standard_error + 2e-4)


def test_equilibrium_gap_is_within_the_finite_population_floor(env, model, equilibrium):
    """Against an N-particle flow, ``abar_n`` is off by ``delta_n ~ sd(a*)/sqrt(N)``; the best response gains
    ``<= kappa^2 delta_n^2 / 2`` per step, so the gap is ``<= n_steps kappa^2 Var(a*) / (2N)`` on average."""
    n = 20_000
    estimate = exact_nash_gap(equilibrium.policy, env, n_particles=n, seed=5, relative=False)
    theta, capacity = draw_demand_and_capacity(model, 100_000, 6)
    variance = np.clip(theta - model.congestion * ABAR_STAR, 0.0, capacity).var()
    floor = model.n_steps * model.congestion**2 * variance / (2 * n)
    assert -4 * estimate.standard_error <= estimate.gap < 10 * floor
    assert estimate.policy_return == pytest.approx(RETURN_STAR, abs=0.05)


# --------------------------------------------------------------------------- the simulator
def test_particle_simulation_reproduces_the_equilibrium(model, equilibrium):
    n = 20_000
    venv = MeanFieldVectorEnv(ResourceModel, "MFGResource-v0", num_envs=n)
    obs, _ = venv.reset(seed=7)
    returns, influence = np.zeros(n), np.zeros(n)
    for step in range(model.n_steps):
        np.testing.assert_allclose(obs["state"][:, 2], step / model.n_steps)
        obs, rewards, *_ = venv.step(equilibrium.policy(obs))
        allocation, mean_allocation = (
            venv.population.last_actions[:, 0],
            venv.population.last_mean_field["mean_allocation"],
        )
        assert mean_allocation == pytest.approx(ABAR_STAR, abs=5 * allocation.std() / math.sqrt(n))
        returns += rewards
        # the reward's abar_n is the mean of these same particles: linearize it into each particle's share
        influence += rewards - model.congestion * mean_allocation * allocation
    assert returns.mean() == pytest.approx(RETURN_STAR, abs=5 * influence.std() / math.sqrt(n))
    np.testing.assert_allclose(obs["population"][0], equilibrium.histograms[-1], atol=5 * math.sqrt(0.25 / n))


def test_reward_depends_on_the_population():
    """Same seed and learner action; only the others' allocations differ: ``r`` moves by ``-kappa (abar - abar') a``."""
    for congestion in (1.0, 0.0):
        rewards, means, allocations = [], [], []
        for others in (-0.8, 0.8):
            env = ResourceEnv(n_particles=200, congestion=congestion)
            env.set_population_policy(ConstantPolicy(np.array([others])))
            obs, _ = env.reset(seed=8)
            rewards.append(env.step(np.array([0.3], np.float32))[1])
            means.append(env.population.last_mean_field["mean_allocation"])
            allocations.append(env.population.last_actions[0, 0])
        theta, a = obs["state"][0], allocations[0]
        assert allocations[0] == allocations[1] == pytest.approx(0.65 * obs["state"][1])
        assert rewards[0] == pytest.approx(theta * a - a**2 / 2 - congestion * means[0] * a, rel=1e-6)
        assert rewards[0] - rewards[1] == pytest.approx(-congestion * (means[0] - means[1]) * a, abs=1e-12)
        assert (rewards[0] != rewards[1]) == (congestion > 0)


def test_allocations_respect_each_agent_capacity():
    n = 1000
    venv = MeanFieldVectorEnv(ResourceModel, "MFGResource-v0", num_envs=n)
    for actions in (np.full((n, 1), -5.0), np.full((n, 1), 1.0), np.full((n, 1), 9.0), np.linspace(-1, 1, n)[:, None]):
        venv.reset(seed=9)
        capacity = venv.population.states[:, 1]
        venv.step(actions)
        allocation = venv.population.last_actions[:, 0]
        assert ((capacity >= 0.5) & (capacity < 1.5)).all()
        assert (allocation >= 0).all() and (allocation <= capacity).all()
        np.testing.assert_allclose(allocation, (np.clip(actions[:, 0], -1, 1) + 1) / 2 * capacity, atol=1e-15)


def test_allocations_do_not_move_the_states():
    """What MF-DDPG/TD3/SAC's ``gamma = 0`` on this id rests on (``sb3_meanfield.hyperparams.RESOURCE``): from the
    same particles and noise, any allocations lead to the same next states, so the future does not depend on the
    action and every discount has the same best responses."""
    model = ResourceModel()
    next_states = []
    for actions in (np.full((500, 1), -1.0), np.full((500, 1), 1.0), np.linspace(-1, 1, 500)[:, None]):
        game = Game.of(Population(model, 500))
        rng = np.random.default_rng(4)
        game.reset([rng])
        for _ in range(3):
            game.step([actions], [model.noise(500, rng)])
        next_states.append(game.members[0].states.copy())
    for states in next_states[1:]:
        np.testing.assert_array_equal(states, next_states[0])


# --------------------------------------------------------------------------- random initial demand
def test_a_fixed_demand_level_draws_exactly_the_stationary_law():
    """``init_mean_std = 0``: no draw for ``M_0``; demand from the stationary law, then capacities, bit for bit."""
    model = ResourceModel()
    rng = np.random.default_rng(3)
    theta = 1.0 + 0.3 / math.sqrt(1.0 - 0.8**2) * rng.standard_normal(500)
    np.testing.assert_array_equal(
        model.initial_states(500, np.random.default_rng(3))[:, :2].T, [theta, rng.uniform(0.5, 1.5, 500)]
    )


def test_the_demand_level_is_drawn_first_and_shared_by_the_agents():
    model, tau = ResourceModel(init_mean_std=0.6), 0.3 / math.sqrt(1.0 - 0.8**2)
    rng = np.random.default_rng(4)  # the documented order: M_0 first, then the demands, then the capacities
    drawn = 1.0 + 0.6 * rng.standard_normal()
    states = model.initial_states(4000, np.random.default_rng(4))
    np.testing.assert_array_equal(states[:, 0], drawn + tau * rng.standard_normal(4000))
    np.testing.assert_array_equal(states[:, 1], rng.uniform(0.5, 1.5, 4000))
    assert abs(states[:, 0].mean() - drawn) < 4 * tau / np.sqrt(4000)
    assert model.initial_states(3, np.random.default_rng(4))[0, 0] == states[0, 0]  # any n: the same M_0
    means = np.array([model.initial_states(50, np.random.default_rng(seed))[:, 0].mean() for seed in range(800)])
    assert means.std() == pytest.approx(np.sqrt(0.6**2 + tau**2 / 50), rel=0.15)


def test_random_demand_level_has_no_equilibrium_policy():
    with pytest.raises(NotImplementedError, match="step-0 population entry"):
        solve_equilibrium(ResourceEnv(n_particles=10, init_mean_std=0.6))


def test_random_demand_level_best_response_return_matches_monte_carlo():
    """Ghosts play the exact best response to a recorded flow, each episode with its own ``M_0``: the mean return is
    the closed form with ``theta_n ~ N(thbar, tau^2 + phi^(2n) s_0^2)``, not the stationary law's."""
    model = ResourceModel(init_mean_std=0.6)
    flow = rollout(Game(model, 2000), ConstantPolicy(np.array([0.3])), 0)[0][0]
    best = model.best_response(flow)
    np.testing.assert_array_equal(best.policy.offsets, ResourceModel().best_response(flow).policy.offsets)
    ghosts = Population(model, 100)
    ghosts.freeze(flow)
    returns = np.array([rollout(Game.of(ghosts), best.policy, seed)[1][0].mean() for seed in range(400)])
    error = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - best.expected_return) < 4 * error
    assert abs(returns.mean() - ResourceModel().best_response(flow).expected_return) > 4 * error


@pytest.mark.parametrize(
    ("keyword", "value", "accepted"),
    [
        ("n_steps", 0, ">= 1"),
        ("demand_mean", float("nan"), "finite"),
        ("demand_persistence", 1.0, r"\(-1, 1\)"),
        ("demand_persistence", -1.0, r"\(-1, 1\)"),
        ("demand_noise", -0.1, r"\[0, inf\]"),
        ("init_mean_std", -0.6, r"\[0, inf\]"),
        ("capacity_min", -0.1, r"\[0, inf\]"),
        ("capacity_max", 0.5, r"\(0.5, inf\]"),
        ("congestion", -1.0, r"\[0, inf\]"),
        ("n_bins", 0, ">= 1"),
        ("horizon", 2.0, "accepted model keywords"),
    ],
)
def test_bad_keywords_name_themselves(keyword, value, accepted):
    with pytest.raises(ValueError, match=keyword) as info:
        ResourceEnv(**{keyword: value})
    assert info.match(accepted)
