"""MFGPrice-v0: dynamics, coupling, and the exact solver against independent truth (docs/models.md, "MFGPrice-v0")."""

import numpy as np
import pytest

from mfg_envs import solve_equilibrium
from mfg_envs.core import ConstantPolicy, Population, PopulationFlow
from mfg_envs.equilibrium import AffinePolicy
from mfg_envs.game import Game, rollout
from mfg_envs.nash_gap import exact_nash_gap
from mfg_envs.price import PriceEnv, PriceModel
from mfg_envs.vector import MeanFieldVectorEnv

J_STAR = 0.8648133111  # docs/models.md, "MFGPrice-v0", defaults (expected return: the firm's profit is positive)


@pytest.fixture(scope="module")
def model():
    return PriceModel()


@pytest.fixture(scope="module")
def equilibrium(model):
    return model.solve_equilibrium()


def mean_prices(eq):
    return np.array([mf["mean_price"] for mf in eq.mean_fields[:-1]])


def test_dynamics_and_rewards_follow_the_model_equations(model):
    rng = np.random.default_rng(0)
    states = model.initial_states(4, rng)
    states[:, 1] = rng.normal(size=4)
    prices = np.array([[0.5], [1.0], [1.5], [2.9]])
    noise = rng.standard_normal((4, 1))
    n, dt = 7, model.dt
    mf = model.mean_field(states, prices, np.zeros(model.n_bins))
    assert mf["mean_price"] == pytest.approx(1.475)
    d = 2.0 + 0.5 * np.sin(2 * np.pi * n / 50)
    states[:, 2] = d
    q = d - 1.0 * prices[:, 0] + 0.5 * 1.475
    nxt = model.transition(states, prices, mf, n, noise)
    np.testing.assert_allclose(nxt[:, 0], states[:, 0] + dt * (1.2 - q) + 0.3 * np.sqrt(dt) * noise[:, 0])
    np.testing.assert_allclose(nxt[:, 1], states[:, 1] + dt * (prices[:, 0] * q - 0.5 * 1.2))
    np.testing.assert_allclose(nxt[:, 2], 2.0 + 0.5 * np.sin(2 * np.pi * (n + 1) / 50))
    reward = dt * (prices[:, 0] * q - 0.6 - 0.5 * states[:, 0] ** 2 - 0.25 * (prices[:, 0] - 1.475) ** 2)
    np.testing.assert_allclose(model.reward(states, prices, mf, n), reward)
    np.testing.assert_allclose(model.terminal_reward(states, {}), -0.5 * states[:, 0] ** 2)
    np.testing.assert_allclose(
        model.physical_action(states, np.array([[-1.0], [0.0], [1.0], [0.2]]))[:, 0], [0, 1.5, 3, 1.8]
    )


def test_initial_state_and_price_histogram():
    env = MeanFieldVectorEnv(PriceModel, "MFGPrice-v0", num_envs=2000)
    obs, _ = env.reset(seed=1)
    states = obs["state"].astype(float)
    assert np.all(states[:, 1] == 0.0) and np.all(states[:, 2] == 2.0)
    assert states[:, 0].mean() == pytest.approx(0.5, abs=5 * 0.2 / np.sqrt(2000))
    assert states[:, 0].std() == pytest.approx(0.2, rel=0.1)
    np.testing.assert_allclose(obs["population"][0], np.full(30, 1 / 30), rtol=1e-6)  # no price posted yet
    actions = np.where(np.arange(2000) < 500, -1.0, 0.0)[:, None]  # prices 0 (bin 0) and 1.5 (bin 15)
    obs, *_ = env.step(actions)
    expected = np.zeros(30)
    expected[[0, 15]] = [0.25, 0.75]
    np.testing.assert_allclose(obs["population"][0], expected, rtol=1e-6)


def test_reward_depends_on_the_others_prices():
    rewards, mean_fields = [], []
    for others in (-0.5, 0.5):
        env = PriceEnv(n_particles=50)
        env.set_population_policy(lambda obs, others=others: np.full((obs["state"].shape[0], 1), others))
        env.reset(seed=3)
        rewards.append(env.step(np.array([0.0], dtype=np.float32))[1])
        mean_fields.append(env.population.last_mean_field["mean_price"])
    # Same own state and price a = 1.5; only pbar moved: r changes by dt [a gamma dpbar - lam/2 d(a - pbar)^2].
    (p1, p2), a, dt = mean_fields, 1.5, 1 / 50
    assert p2 > p1
    expected = dt * (a * 0.5 * (p2 - p1) - 0.25 * ((a - p2) ** 2 - (a - p1) ** 2))
    assert rewards[1] - rewards[0] == pytest.approx(expected, rel=1e-9)


def test_equilibrium_value_and_best_response_consistency(model, equilibrium):
    assert equilibrium.expected_return == pytest.approx(J_STAR, abs=1e-8)
    best = model.best_response(equilibrium.flow)
    # The Pontryagin policy is the Riccati best response to its own flow.
    assert best.expected_return == pytest.approx(equilibrium.expected_return, abs=1e-12)
    np.testing.assert_allclose(best.policy.gains, equilibrium.policy.gains, atol=1e-12)
    np.testing.assert_allclose(best.policy.offsets, equilibrium.policy.offsets, atol=1e-12)
    assert equilibrium.histograms.shape == (51, 30)
    np.testing.assert_allclose(equilibrium.histograms.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(equilibrium.histograms[0], 1 / 30)


def test_without_holding_costs_the_equilibrium_price_is_static():
    model = PriceModel(holding_cost=0.0, terminal_holding_cost=0.0)
    eq = model.solve_equilibrium()
    signal = 2.0 + 0.5 * np.sin(2 * np.pi * np.arange(50) / 50)
    np.testing.assert_allclose(mean_prices(eq), signal / (2 * 1.0 - 0.5), atol=1e-12)
    np.testing.assert_allclose(eq.policy.gains, 0.0, atol=1e-12)


def test_pontryagin_matches_the_direct_fixed_point_of_the_best_response_map(model, equilibrium):
    """pbar -> mean price of the best-response population is affine: build it column by column and solve."""

    def best_response_mean_price(pbar):
        flow = PopulationFlow(np.zeros((51, 30)), (*({"mean_price": p} for p in pbar), {}))
        policy = model.best_response(flow).policy
        # A noiseless particle at the mean inventory moves like the population mean (linear dynamics, affine policy).
        state, prices = model.initial_states(1, np.random.default_rng(0)), np.zeros(50)
        state[0, 0] = model.init_mean
        for n in range(50):
            prices[n] = -(policy.gains[n, 0] @ state[0]) - policy.offsets[n, 0]
            state = model.transition(state, prices[n : n + 1, None], {"mean_price": pbar[n]}, n, np.zeros((1, 1)))
        return prices

    base = best_response_mean_price(np.zeros(50))
    jacobian = np.stack([best_response_mean_price(np.eye(50)[j]) - base for j in range(50)], axis=1)
    fixed_point = np.linalg.solve(np.eye(50) - jacobian, base)
    np.testing.assert_allclose(fixed_point, mean_prices(equilibrium), atol=1e-10)


def perturbed_policies(model, eq):
    gains, offsets = eq.policy.gains, eq.policy.offsets
    signal = model.signal(np.arange(model.n_steps))
    return {
        "slope x1.1": (AffinePolicy(model, 1.1 * gains, offsets), 2.963e-4),
        "a = 1.1 a*": (AffinePolicy(model, 1.1 * gains, 1.1 * offsets), 6.035e-3),
        "bias +0.1": (AffinePolicy(model, gains, offsets - 0.1), 4.929e-3),
        "myopic": (AffinePolicy(model, 0.0 * gains, -(signal / 1.5)[:, None]), 6.36e-2),
    }


def test_exact_nash_gaps_match_models_md(model, equilibrium):
    """N = 4 x 25,000 (replicates) with common random numbers; the standard error is the replicate spread."""
    env, n_particles = PriceEnv(n_particles=10), 25_000
    for name, (policy, exact) in perturbed_policies(model, equilibrium).items():
        gap = exact_nash_gap(policy, env, n_particles=n_particles, seed=0, relative=False)
        assert gap.gap > 5 * gap.standard_error, name
        # + 1e-3 relative: docs/models.md ("MFGPrice-v0") prints the exact gaps to 3-4 significant digits.
        assert abs(gap.gap - exact) < 5 * gap.standard_error + 1e-3 * exact, (name, gap)
    # The equilibrium's own gap is only the finite-N floor (measured |gap| < 1e-6 at N = 25,000).
    own = exact_nash_gap(equilibrium.policy, env, n_particles=n_particles, seed=0, relative=False)
    assert abs(own.gap) < 1e-6


def test_small_perturbation_gaps_are_quadratic(equilibrium, model):
    env, gains, offsets = PriceEnv(n_particles=10), equilibrium.policy.gains, equilibrium.policy.offsets
    gaps = [
        exact_nash_gap(AffinePolicy(model, gains, offsets - bias), env, n_particles=25_000, seed=1, relative=False)
        for bias in (0.1, 0.01)
    ]
    assert gaps[1].gap > 0 and gaps[0].gap > 0
    # Quadratic: ratio 100 (linear would be 10). Seeds spread the small gap by ~10% (sd) at this N.
    assert 70 < gaps[0].gap / gaps[1].gap < 140


def test_particle_simulation_matches_the_exact_flow(model, equilibrium):
    n_agents = 20_000
    env = MeanFieldVectorEnv(PriceModel, "MFGPrice-v0", num_envs=n_agents)
    obs, _ = env.reset(seed=7)
    gains = equilibrium.policy.gains[:, 0, 0]
    returns, variance = np.zeros(n_agents), model.init_var
    # Sampling sd of the population mean inventory: the closed-loop factor 1 - dt (beta - gamma) K <= 1 keeps it
    # below sqrt((v_0 + sigma^2 T) / N); the mean price deviates by K times that.
    mean_sd = np.sqrt((model.init_var + model.sigma**2 * model.horizon) / n_agents)
    for n in range(model.n_steps):
        inventory = env.population.states[:, 0]
        exact = equilibrium.mean_fields[n]
        assert abs(inventory.mean() - exact["mean_inventory"]) < 5 * mean_sd, n
        # Inventory variance flow v_{n+1} = (1 - dt beta K_n)^2 v_n + sigma^2 dt (sample variance: rel. sd sqrt(2/N)).
        assert inventory.var() == pytest.approx(variance, rel=5 * np.sqrt(2 / n_agents)), n
        obs, rewards, *_ = env.step(equilibrium.policy(obs))
        returns += rewards
        assert abs(env.population.last_mean_field["mean_price"] - exact["mean_price"]) < 5 * gains[n] * mean_sd + 1e-9
        total_variation = 0.5 * np.abs(obs["population"][0] - equilibrium.histograms[n + 1]).sum()
        assert total_variation < 0.03, n
        variance = (1 - model.dt * model.demand_slope * gains[n]) ** 2 * variance + model.sigma**2 * model.dt
    assert abs(env.population.states[:, 0].mean() - equilibrium.mean_fields[-1]["mean_inventory"]) < 5 * mean_sd
    assert returns.mean() == pytest.approx(equilibrium.expected_return, abs=5 * returns.std() / np.sqrt(n_agents))


# --------------------------------------------------------------------------- random initial mean
def test_a_fixed_initial_mean_draws_exactly_the_fixed_law():
    """``init_mean_std = 0``: no draw for ``M_0``; inventories ``init_mean + sqrt(init_var) xi``, bit for bit."""
    expected = 0.5 + 0.2 * np.random.default_rng(3).standard_normal(500)
    np.testing.assert_array_equal(PriceModel().initial_states(500, np.random.default_rng(3))[:, 0], expected)


def test_the_initial_mean_is_drawn_first_and_shared_by_the_firms():
    model = PriceModel(init_mean_std=0.5)
    rng = np.random.default_rng(4)  # the documented order: M_0 first, then the firms
    drawn = 0.5 + 0.5 * rng.standard_normal()
    states = model.initial_states(4000, np.random.default_rng(4))
    np.testing.assert_array_equal(states[:, 0], drawn + 0.2 * rng.standard_normal(4000))
    assert abs(states[:, 0].mean() - drawn) < 4 * 0.2 / np.sqrt(4000)
    assert np.all(states[:, 1] == 0.0) and np.all(states[:, 2] == 2.0)
    assert model.initial_states(3, np.random.default_rng(4))[0, 0] == states[0, 0]  # any n: the same M_0
    means = np.array([model.initial_states(50, np.random.default_rng(seed))[:, 0].mean() for seed in range(800)])
    assert means.std() == pytest.approx(np.sqrt(0.5**2 + 0.04 / 50), rel=0.15)


def test_random_initial_mean_has_no_equilibrium_policy():
    with pytest.raises(NotImplementedError, match="step-0 population entry"):
        solve_equilibrium(PriceEnv(n_particles=10, init_mean_std=0.5))


def test_random_initial_mean_best_response_return_matches_monte_carlo():
    """Ghost firms play the exact best response to a recorded flow, each episode with its own ``M_0``: the mean
    return is the best response's ``expected_return`` (the start averaged over ``M_0``), not the fixed law's."""
    model = PriceModel(init_mean_std=0.5)
    flow = rollout(Game(model, 2000), ConstantPolicy(np.zeros(1)), 0)[0][0]
    best = model.best_response(flow)
    np.testing.assert_array_equal(best.policy.offsets, PriceModel().best_response(flow).policy.offsets)
    ghosts = Population(model, 200)
    ghosts.freeze(flow)
    returns = np.array([rollout(Game.of(ghosts), best.policy, seed)[1][0].mean() for seed in range(250)])
    error = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - best.expected_return) < 4 * error
    assert abs(returns.mean() - PriceModel().best_response(flow).expected_return) > 6 * error


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("horizon", 0.0),
        ("n_steps", 0),
        ("demand_slope", 0.0),
        ("cross_slope", 2.0),
        ("spread_penalty", -0.1),
        ("unit_cost", float("nan")),
        ("restock_rate", "fast"),
        ("holding_cost", -1.0),
        ("terminal_holding_cost", -1.0),
        ("sigma", -0.3),
        ("signal_mean", float("inf")),
        ("signal_amplitude", -0.5),
        ("init_mean", None),
        ("init_var", -0.04),
        ("init_mean_std", -0.5),
        ("price_min", 3.0),
        ("price_max", -1.0),
        ("n_bins", 0),
    ],
)
def test_bad_keywords_raise_value_error_naming_the_parameter(keyword, value):
    name = "price_max" if keyword == "price_min" else keyword  # price_min = price_max = 3 is caught on price_max
    with pytest.raises(ValueError, match=name):
        PriceEnv(**{keyword: value})


def test_singular_equilibrium_recursion_names_cross_slope():
    model = PriceModel(cross_slope=1.9, terminal_holding_cost=1000.0)
    with pytest.raises(ValueError, match="cross_slope"):
        model.solve_equilibrium()
