"""Crowd models: the exact CrowdLQ equilibrium against docs/models.md and simulation, and the walled crowd's rules."""

import gymnasium as gym
import numpy as np
import pytest
from helpers import rollout_population

from mfg_envs import exactly_solvable, solve_equilibrium
from mfg_envs.core import ConstantPolicy, Population, PopulationFlow, histogram
from mfg_envs.crowd import CrowdEnv, CrowdModel
from mfg_envs.crowd_lq import CrowdLQEnv, CrowdLQModel
from mfg_envs.equilibrium import AffinePolicy
from mfg_envs.game import Game, rollout
from mfg_envs.nash_gap import exact_nash_gap
from mfg_envs.parallel import MeanFieldParallelEnv
from mfg_envs.vector import MeanFieldVectorEnv

J_STAR = 0.7266301773  # docs/models.md, "MFGCrowdLQ-v0", defaults (cost; the return is -J*)
RANDOM_MEAN = (0.3, 0.2, 0.0, 0.0)  # init_mean_std: a random initial mean position
RANDOM_J_STAR = 0.7594465589  # docs/models.md, "Random initial mean of the crowd": E[J*(M_0)] at RANDOM_MEAN
AXIS_COSTS = (0.8366282838, -0.1099981065)
N_GAP = 20_000


@pytest.fixture(scope="module")
def model():
    return CrowdLQModel()


@pytest.fixture(scope="module")
def equilibrium(model):
    return model.solve_equilibrium()


def flow_of(means, variances):
    """A frozen flow holding only the statistics the CrowdLQ reward reads (the population entry is unused)."""
    mean_fields = tuple({"mean": m, "var": v} for m, v in zip(means, variances))
    return PopulationFlow(np.zeros((len(mean_fields), 1)), mean_fields)


def statistics(flow):
    return np.array([mf["mean"] for mf in flow.mean_fields]), np.array([mf["var"] for mf in flow.mean_fields])


def exact_gap(model, policy):
    """Exact-law Nash gap: J(pi; mu^pi) - J(BR; mu^pi) with mu^pi the exact flow of pi."""
    flow = model.exact_flow(policy)
    return model.best_response(flow).expected_return + model.axis_costs(policy, flow).sum()


def perturbed(model, equilibrium, name):
    policy = equilibrium.policy
    return {
        "scale 1.1": AffinePolicy(model, 1.1 * policy.gains, 1.1 * policy.offsets),
        "bias +0.1": AffinePolicy(model, policy.gains, policy.offsets - 0.1),
        "zero": AffinePolicy(model, 0.0 * policy.gains, 0.0 * policy.offsets),
    }[name]


# --------------------------------------------------------------------------- exact equilibrium
def test_equilibrium_value_matches_models_md(model, equilibrium):
    assert -equilibrium.expected_return == pytest.approx(J_STAR, abs=1e-8)
    np.testing.assert_allclose(model.axis_costs(equilibrium.policy, equilibrium.flow), AXIS_COSTS, atol=1e-8)
    means, variances = statistics(equilibrium.flow)
    np.testing.assert_allclose(means[-1], (0.994, 0.002), atol=1e-3)
    np.testing.assert_allclose(variances[[0, -1], 0], (0.02, 0.136), atol=1e-3)
    blind = CrowdLQModel(crowd_aversion=0.0).solve_equilibrium()
    blind_means, blind_variances = statistics(blind.flow)
    np.testing.assert_allclose(blind_means, means, atol=1e-12)  # the crowd does not move the mean path
    assert blind_variances[-1, 0] == pytest.approx(0.073, abs=1e-3)


def test_equilibrium_is_a_fixed_point_of_the_best_response(model, equilibrium):
    best = model.best_response(equilibrium.flow)
    np.testing.assert_allclose(best.policy.gains, equilibrium.policy.gains, atol=1e-10)
    np.testing.assert_allclose(best.policy.offsets, equilibrium.policy.offsets, atol=1e-10)
    assert best.expected_return == pytest.approx(equilibrium.expected_return, abs=1e-10)
    for ours, theirs in zip(statistics(model.exact_flow(best.policy)), statistics(equilibrium.flow)):
        np.testing.assert_allclose(ours, theirs, atol=1e-10)
    # Axis gains only: u_x reads (x, vx), u_y reads (y, vy).
    assert not equilibrium.policy.gains[:, 0, [1, 3]].any() and not equilibrium.policy.gains[:, 1, [0, 2]].any()


def test_newton_solve_on_stacked_flows_finds_the_same_equilibrium(model, equilibrium):
    """Independent fixed point: Newton (forward-difference Jacobian) on x = (m_0..m_{N-1}, Var p_0..p_{N-1}) per axis,
    from the initial law frozen in time, for x = Flow(BR(x))."""
    n = model.n_steps

    def response(x):
        means, variances = x.reshape(2, n, 2)
        flow = flow_of(np.vstack([means, means[-1:]]), np.vstack([variances, variances[-1:]]))
        out_means, out_vars = statistics(model.exact_flow(model.best_response(flow).policy))
        return np.concatenate([out_means[:-1].ravel(), out_vars[:-1].ravel()])

    x = np.concatenate([np.tile(model.init_mean[:2], n), np.tile(model.init_var[:2], n)])
    step = 1e-7
    for _ in range(10):
        residual = response(x) - x
        if np.abs(residual).max() < 1e-12:
            break
        jacobian = np.column_stack([(response(x + step * e) - x - step * e - residual) / step for e in np.eye(x.size)])
        x = x - np.linalg.solve(jacobian, residual)
    assert np.abs(response(x) - x).max() < 1e-12
    means, variances = statistics(equilibrium.flow)
    np.testing.assert_allclose(x, np.concatenate([means[:-1].ravel(), variances[:-1].ravel()]), atol=1e-10)


def test_best_response_is_a_stationary_minimum_of_the_exact_cost(model, equilibrium):
    """Brute force: along random directions in (gains, offsets), the exact cost against the frozen equilibrium flow
    has zero slope at the best response and grows on both sides."""
    policy, flow = equilibrium.policy, equilibrium.flow
    base = model.axis_costs(policy, flow).sum()
    mask = policy.gains != 0.0
    rng = np.random.default_rng(0)
    for _ in range(5):
        gain_dir, offset_dir = rng.standard_normal(policy.gains.shape) * mask, rng.standard_normal(policy.offsets.shape)

        def cost(eps, gain_dir=gain_dir, offset_dir=offset_dir):
            moved = AffinePolicy(model, policy.gains + eps * gain_dir, policy.offsets + eps * offset_dir)
            return model.axis_costs(moved, flow).sum()

        eps = 1e-4
        slope = (cost(eps) - cost(-eps)) / (2 * eps)
        curvature = (cost(eps) - 2 * base + cost(-eps)) / eps**2
        assert abs(slope) < 1e-7 * curvature
        assert cost(0.05) > base and cost(-0.05) > base


@pytest.mark.parametrize(("name", "gap"), [("scale 1.1", 1.349e-2), ("bias +0.1", 1.895e-1), ("zero", 6.328)])
def test_exact_law_gaps_match_models_md(model, equilibrium, name, gap):
    assert exact_gap(model, perturbed(model, equilibrium, name)) == pytest.approx(gap, rel=5e-4)


def test_crowd_blind_equilibrium_gap_matches_models_md(model):
    blind = CrowdLQModel(crowd_aversion=0.0).solve_equilibrium().policy
    assert exact_gap(model, AffinePolicy(model, blind.gains, blind.offsets)) == pytest.approx(8.77e-2, rel=1e-3)


def test_equilibrium_exact_law_gap_is_zero(model, equilibrium):
    assert abs(exact_gap(model, equilibrium.policy)) < 1e-12


def test_exact_flow_needs_axis_separable_gains(model, equilibrium):
    gains = equilibrium.policy.gains.copy()
    gains[:, 0, 1] = 0.1
    with pytest.raises(ValueError, match="policy gains"):
        model.exact_flow(AffinePolicy(model, gains, equilibrium.policy.offsets))


# --------------------------------------------------------------------------- finite-N Nash gaps
@pytest.mark.parametrize(("name", "gap"), [("scale 1.1", 1.349e-2), ("bias +0.1", 1.895e-1), ("zero", 6.328)])
def test_particle_nash_gaps_match_the_exact_law(model, equilibrium, name, gap):
    env = CrowdLQEnv(n_particles=10)
    policy = ConstantPolicy(np.zeros(2)) if name == "zero" else perturbed(model, equilibrium, name)
    estimate = exact_nash_gap(policy, env, n_particles=N_GAP, seed=11, relative=False)
    # Sampling error (4 se) plus the O(1/N) empirical-flow floor (~0.6/N on this model).
    assert abs(estimate.gap - gap) < 4 * estimate.standard_error + 3 * 0.6 / N_GAP + 5e-4 * gap


def test_equilibrium_particle_gap_is_within_the_finite_n_floor(equilibrium):
    estimate = exact_nash_gap(
        equilibrium.policy, CrowdLQEnv(n_particles=10), n_particles=N_GAP, seed=12, relative=False
    )
    assert abs(estimate.gap) < 3 * 0.6 / N_GAP + 3 * estimate.standard_error
    assert estimate.standard_error < 1e-4


# --------------------------------------------------------------------------- solver vs. particle simulation
def test_exact_flows_match_the_particle_simulation(model, equilibrium):
    n = 20_000
    recorded = CrowdLQEnv(n_particles=n).record_population_flow(equilibrium.policy, seed=3)
    (sim_means, sim_vars), (means, variances) = statistics(recorded), statistics(equilibrium.flow)
    assert np.abs(sim_means - means).max() / np.sqrt(variances.max() / n) < 5
    assert (np.abs(sim_vars - variances) / (variances * np.sqrt(2.0 / n))).max() < 5
    # The exact product-Gaussian histograms on the observation grid (x slowest, y fastest).
    se = np.sqrt(equilibrium.histograms * (1 - equilibrium.histograms) / n)
    assert (np.abs(recorded.population - equilibrium.histograms) <= 5 * se + 3 / n).all()
    np.testing.assert_allclose(equilibrium.histograms.sum(axis=1), 1.0, atol=1e-12)
    x_cell, y_cell = np.unravel_index(np.argmax(equilibrium.histograms[-1]), (model.n_bins, model.n_bins))
    assert (x_cell, y_cell) == (14, 10)  # the cell of the final mean (0.994, 0.002) on (-2, 2) with 20 bins


def test_batched_env_returns_match_the_equilibrium_value(equilibrium):
    """All agents of the batched env play the equilibrium: the mean return is -J* up to sampling error."""
    n = 20_000
    venv = MeanFieldVectorEnv(CrowdLQModel, "MFGCrowdLQ-v0", num_envs=n)
    obs, _ = venv.reset(seed=4)
    returns, terminated = np.zeros(n), np.zeros(n, dtype=bool)
    while not terminated.all():
        obs, rewards, terminated, _, _ = venv.step(equilibrium.policy(obs))
        returns += rewards
    assert abs(returns.mean() - equilibrium.expected_return) < 4 * returns.std() / np.sqrt(n) + 3 * 0.6 / n


def test_representative_agent_against_the_exact_flow_earns_minus_j_star(equilibrium):
    """Ghost agents frozen to the exact flow: their returns are i.i.d. with mean exactly -J*."""
    n = 20_000
    ghosts = Population(CrowdLQModel(), n)
    ghosts.flow = equilibrium.flow
    _, returns = rollout_population(ghosts, equilibrium.policy, 5)
    assert abs(returns.mean() - equilibrium.expected_return) < 4 * returns.std() / np.sqrt(n)


def test_lq_reward_is_the_documented_cost(model):
    rng = np.random.default_rng(6)
    states, actions = rng.normal(size=(50, 4)), rng.uniform(-2, 2, size=(50, 2))
    mean_field = model.mean_field(states, actions, np.zeros(0))
    p = states[:, :2]
    s = p.var(axis=0) + 0.5**2
    log_rho = (-0.5 * np.log(2 * np.pi * s) - (p - p.mean(axis=0)) ** 2 / (2 * s)).sum(axis=1)
    cost = 0.1 * (0.5 * (actions**2).sum(1) + 0.125 * ((p - [1.0, 0.0]) ** 2).sum(1) + 0.2 * log_rho)
    np.testing.assert_allclose(model.reward(states, actions, mean_field, 0), -cost, rtol=1e-12)
    terminal = 0.5 * ((p - [1.0, 0.0]) ** 2).sum(1) + 0.5 * (states[:, 2:] ** 2).sum(1)
    np.testing.assert_allclose(model.terminal_reward(states, mean_field), -terminal, rtol=1e-12)


# --------------------------------------------------------------------------- random initial mean
@pytest.mark.parametrize("model_class", [CrowdLQModel, CrowdModel])
def test_a_fixed_initial_mean_draws_exactly_the_fixed_law(model_class):
    """``init_mean_std = 0``: no draw for ``M_0``, the particles are ``init_mean + sqrt(init_var) xi``, bit for bit."""
    noise = np.random.default_rng(3).standard_normal((500, 4))
    expected = np.array([-1.0, 0.5, 0.0, 0.0]) + np.sqrt([0.02, 0.02, 0.01, 0.01]) * noise
    np.testing.assert_array_equal(model_class().initial_states(500, np.random.default_rng(3)), expected)


@pytest.mark.parametrize("model_class", [CrowdLQModel, CrowdModel])
def test_the_initial_mean_is_drawn_first_and_shared_by_the_population(model_class):
    std, var = np.array([0.3, 0.2, 0.1, 0.0]), np.array([0.02, 0.02, 0.01, 0.01])
    model = model_class(init_mean_std=std)
    rng = np.random.default_rng(4)  # the documented order: M_0 first, then the particles
    drawn = np.array([-1.0, 0.5, 0.0, 0.0]) + std * rng.standard_normal(4)
    starts = model.initial_states(4000, np.random.default_rng(4))
    np.testing.assert_array_equal(starts, drawn + np.sqrt(var) * rng.standard_normal((4000, 4)))
    assert np.all(np.abs(starts.mean(axis=0) - drawn) < 4 * np.sqrt(var / 4000))
    np.testing.assert_array_equal(model.initial_states(7, np.random.default_rng(4))[0], starts[0])  # any n: same M_0
    # Over many resets the sample means spread as std (plus the particles' own sampling spread).
    means = np.array([model.initial_states(50, np.random.default_rng(seed)).mean(axis=0) for seed in range(800)])
    np.testing.assert_allclose(means.std(axis=0), np.sqrt(std**2 + var / 50), rtol=0.15)


def test_random_initial_mean_equilibrium_is_the_equilibrium_of_every_draw():
    """The feedback ``-K z - C m - k`` at the mean path of a draw is that draw's fixed-law equilibrium, and
    ``expected_return`` is ``-E[J*(M_0)]`` (a 3 x 3 Gauss-Hermite rule, exact for quadratics)."""
    model = CrowdLQModel(init_mean_std=RANDOM_MEAN)
    equilibrium = solve_equilibrium(CrowdLQEnv(n_particles=10, init_mean_std=RANDOM_MEAN))
    policy = equilibrium.policy
    assert policy.population_gains.shape == (40, 2, 2) and not policy.population_gains[:, [0, 1], [1, 0]].any()
    for draw in ([-1.4, 0.9, 0.0, 0.0], [-0.6, 0.2, 0.0, 0.0]):
        fixed = model.given_initial_mean(np.array(draw)).solve_equilibrium()
        means = np.array([mf["mean"] for mf in fixed.mean_fields[:-1]])
        np.testing.assert_allclose(policy.gains, fixed.policy.gains, atol=1e-14)
        offsets = policy.offsets + np.einsum("nij,nj->ni", policy.population_gains, means)
        np.testing.assert_allclose(offsets, fixed.policy.offsets, atol=1e-13)

    def draw_return(x, y):
        shifted = model.init_mean + np.array([0.3 * x, 0.2 * y, 0.0, 0.0])
        return model.given_initial_mean(shifted).solve_equilibrium().expected_return

    nodes, weights = np.polynomial.hermite_e.hermegauss(3)
    average = weights @ np.array([[draw_return(x, y) for y in nodes] for x in nodes]) @ weights / weights.sum() ** 2
    assert equilibrium.expected_return == pytest.approx(average, abs=1e-12)
    assert -average == pytest.approx(RANDOM_J_STAR, abs=1e-9)


def test_random_initial_mean_equilibrium_return_matches_monte_carlo():
    """Episodes of the env under the feedback equilibrium, each with its own ``M_0``: the mean return is the exact
    ``expected_return``, not the fixed law's. Started at the goal, ``J*(M_0)`` has no linear term in ``M_0``, so
    few episodes resolve its average (docs/models.md has the run at the defaults: 3000 episodes)."""
    model = CrowdLQModel(init_mean=(1.0, 0.0, 0.0, 0.0), init_mean_std=(0.3, 0.3, 0.0, 0.0))
    equilibrium, fixed = model.solve_equilibrium(), model.given_initial_mean(model.init_mean).solve_equilibrium()
    game, n = Game(model, 400), 400
    returns = np.array([rollout(game, equilibrium.policy, seed)[1][0].mean() for seed in range(120)])
    error = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - equilibrium.expected_return) < 4 * error + 3 * 0.6 / n
    assert abs(returns.mean() - fixed.expected_return) > 6 * error


def test_random_initial_mean_gaps_feedback_at_the_floor_time_only_policy_off():
    env = CrowdLQEnv(n_particles=10, init_mean_std=RANDOM_MEAN)
    feedback = solve_equilibrium(env).policy
    estimate = exact_nash_gap(feedback, env, n_particles=5000, seed=0, relative=False)
    assert abs(estimate.gap) < 3 * 0.6 / 5000 + 3 * estimate.standard_error
    # Exact laws at one draw: the feedback is that draw's equilibrium; the fixed-law equilibrium (time and own state
    # only) is a best response only to the draw M_0 = init_mean.
    time_only = CrowdLQModel().solve_equilibrium().policy
    draw = CrowdLQModel(init_mean=(-1.3, 0.7, 0.0, 0.0))
    assert abs(exact_gap(draw, feedback)) < 1e-12
    assert exact_gap(draw, time_only) == pytest.approx(0.1330, abs=1e-4)


def test_random_initial_mean_velocity_has_no_equilibrium_policy_but_best_responses():
    model = CrowdLQModel(init_mean_std=(0.3, 0.0, 0.1, 0.0))
    with pytest.raises(NotImplementedError, match="mean velocity"):
        solve_equilibrium(gym.make("MFGCrowdLQ-v0", init_mean_std=(0.3, 0.0, 0.1, 0.0)))
    assert model.reference_ellipse(0) is None  # frames draw no equilibrium: its flow depends on the draw
    # The best response's return starts from one agent's law over the draws: N(init_mean, init_var + std^2).
    flow = CrowdLQModel().solve_equilibrium().flow
    marginal = CrowdLQModel(init_var=(0.11, 0.02, 0.02, 0.01)).best_response(flow)
    best = model.best_response(flow)
    assert best.expected_return == pytest.approx(marginal.expected_return, abs=1e-12)
    np.testing.assert_array_equal(best.policy.offsets, marginal.policy.offsets)


# --------------------------------------------------------------------------- walled crowd
def independent_density(positions, low, high, n_bins):
    """Histogram density with numpy's histogram2d (walls included in the last cell)."""
    counts, _, _ = np.histogram2d(*positions.T, bins=n_bins, range=[(low, high), (low, high)])
    return counts / len(positions) / ((high - low) / n_bins) ** 2


def test_seed_form_particles_stay_inside_under_extreme_actions():
    model = CrowdModel(init_mean=(1.8, -1.8, 3.0, -3.0), init_var=(0.1, 0.1, 1.0, 1.0))
    population = Population(model, 2000)
    rng = np.random.default_rng(7)
    population.reset(rng)
    for n in range(model.n_steps):
        assert (np.abs(population.states[:, :2]) <= 2.0).all()
        push = np.sign(rng.standard_normal((2000, 2))) if n % 2 else np.tile([1.0, -1.0], (2000, 1))
        Game.of(population).step([push], [model.noise(2000, rng) * 10])
    assert (np.abs(population.states[:, :2]) <= 2.0).all()
    assert (np.abs(population.states[:, :2]) == 2.0).any()  # the walls were reached


def test_seed_form_boundary_rule():
    model = CrowdModel(sigma=0.0)
    dt = model.dt
    states = np.array([[1.95, 0.0, 1.0, 0.5], [2.0, -2.0, -1.0, -1.0], [-1.98, 1.5, -0.5, 0.2]])
    actions = np.array([[2.0, 0.0], [0.0, -2.0], [0.0, 0.0]])
    moved = model.transition(states, actions, {}, 0, np.zeros((3, 2)))
    free_v = states[:, 2:] + dt * actions
    free_p = states[:, :2] + dt * free_v
    # Particle 0 would cross x = 2: stopped there with vx = 0; its y axis moves freely.
    np.testing.assert_allclose(moved[0], [2.0, free_p[0, 1], 0.0, free_v[0, 1]])
    # Particle 1 leaves the x wall inward (free) and is stopped at y = -2.
    np.testing.assert_allclose(moved[1], [free_p[1, 0], -2.0, free_v[1, 0], 0.0])
    # Particle 2 is stopped at x = -2 (vx into the wall zeroed) and moves freely in y.
    np.testing.assert_allclose(moved[2], [-2.0, free_p[2, 1], 0.0, free_v[2, 1]])
    starts = CrowdModel(init_mean=(1.9, 0.0, 0.0, 0.0), init_var=(0.5, 0.0, 1.0, 0.0)).initial_states(
        5000, np.random.default_rng(8)
    )
    at_wall = starts[:, 0] == 2.0
    assert at_wall.any() and (starts[at_wall, 2] <= 0.0).all() and (starts[:, 0] <= 2.0).all()


def test_seed_form_reward_depends_on_where_the_others_are():
    """Same agent, same action; only the other particles move (in its cell vs. far away)."""
    agent, action = np.array([[0.1, 0.1, 0.2, -0.1]]), np.array([[0.5, -1.0]])
    near = np.tile([0.15, 0.12, 0.0, 0.0], (9, 1))
    far = np.tile([-1.9, -1.9, 0.0, 0.0], (9, 1))
    for aversion in (0.1, 0.0):
        model = CrowdModel(crowd_aversion=aversion)
        rewards = []
        for others in (near, far):
            states = np.vstack([agent, others])
            hist = histogram(states[:, :2], model.histogram_bounds, model.n_bins)
            density = independent_density(states[:, :2], -2.0, 2.0, 20)
            reward = model.reward(
                states, np.vstack([action, np.zeros((9, 2))]), model.mean_field(states, None, hist), 0
            )
            expected = -np.linalg.norm(agent[0] - [1.0, 0.0, 0.0, 0.0]) - 0.1 * np.linalg.norm(action[0])
            assert reward[0] == pytest.approx(expected - aversion * density[10, 10], rel=1e-12)
            rewards.append(reward[0])
        if aversion:
            assert rewards[0] - rewards[1] == pytest.approx(-aversion * 9 / 10 / 0.04, rel=1e-12)
        else:
            assert rewards[0] == rewards[1]


def test_seed_form_rewards_through_the_pettingzoo_front_end():
    """Every agent's reward is the documented formula with the density of its cell on the observation grid."""
    env = MeanFieldParallelEnv(CrowdModel, "MFGCrowd-v0", n_agents=5, init_var=(0.01, 0.01, 0.0, 0.0))
    observations, _ = env.reset(seed=9)
    assert observations["agent_0"]["population"].shape == (400,)
    states = env.population.states.copy()
    actions = {agent: np.array([0.5, -0.25], np.float32) for agent in env.agents}
    _, rewards, terminations, _, _ = env.step(actions)
    density = independent_density(states[:, :2], -2.0, 2.0, 20)
    cells = np.clip(np.floor((states[:, :2] + 2.0) / 0.2).astype(int), 0, 19)
    expected = (
        -np.linalg.norm(states - [1.0, 0.0, 0.0, 0.0], axis=1)
        - 0.1 * np.linalg.norm([1.0, -0.5])
        - 0.1 * density[cells[:, 0], cells[:, 1]]
    )
    np.testing.assert_allclose([rewards[f"agent_{i}"] for i in range(5)], expected, rtol=1e-12)
    assert density[cells[:, 0], cells[:, 1]].max() > 0.2 / 0.04  # the agents share cells: the term is active
    assert not any(terminations.values())


def test_seed_form_has_no_exact_solution():
    """Only a numerical reference (solve_equilibrium: tests/test_crowd_equilibrium.py), no exact best response."""
    assert not exactly_solvable(CrowdModel())
    assert exactly_solvable(CrowdLQModel())
    env = gym.make("MFGCrowd-v0")
    with pytest.raises(NotImplementedError, match="CrowdModel has no exact best response"):
        exact_nash_gap(ConstantPolicy(np.zeros(2)), env, n_particles=10)


def test_env_classes_wire_the_models():
    lq, seed_form = CrowdLQEnv(n_particles=3), CrowdEnv(n_particles=3)
    assert (lq.env_id, seed_form.env_id) == ("MFGCrowdLQ-v0", "MFGCrowd-v0")
    assert lq.observation_space["state"].shape == (4,) and lq.action_space.shape == (2,)
    assert seed_form.observation_space["state"].low[:2].tolist() == [-2.0, -2.0]
    obs, _ = seed_form.reset(seed=0)
    assert seed_form.observation_space.contains(obs)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("env_class", "keyword", "value"),
    [
        (CrowdLQEnv, "horizon", 0.0),
        (CrowdLQEnv, "n_steps", 0),
        (CrowdLQEnv, "sigma", -0.1),
        (CrowdLQEnv, "control_cost", 0.0),
        (CrowdLQEnv, "goal_cost", -1.0),
        (CrowdLQEnv, "terminal_goal_cost", -1.0),
        (CrowdLQEnv, "terminal_velocity_cost", np.nan),
        (CrowdLQEnv, "crowd_aversion", -0.2),
        (CrowdLQEnv, "bandwidth", 0.0),
        (CrowdLQEnv, "goal", (1.0,)),
        (CrowdLQEnv, "init_mean", (0.0, 0.0)),
        (CrowdLQEnv, "init_var", (0.1, 0.1, -0.1, 0.1)),
        (CrowdLQEnv, "init_mean_std", (0.1, -0.1, 0.0, 0.0)),
        (CrowdLQEnv, "action_bound", 0.0),
        (CrowdLQEnv, "n_bins", 0),
        (CrowdLQEnv, "domain", (1.0, -1.0)),
        (CrowdEnv, "horizon", -1.0),
        (CrowdEnv, "goal", (3.0, 0.0)),
        (CrowdEnv, "action_cost", -0.1),
        (CrowdEnv, "crowd_aversion", np.inf),
        (CrowdEnv, "init_var", (0.1, 0.1, 0.1)),
        (CrowdEnv, "init_mean_std", (0.1, 0.1)),
        (CrowdEnv, "domain", (2.0, 2.0)),
        (CrowdEnv, "n_bins", 2.5),
    ],
)
def test_bad_keywords_raise_value_error_naming_them(env_class, keyword, value):
    with pytest.raises(ValueError, match=keyword):
        env_class(**{keyword: value})


def test_a_negative_initial_mean_std_is_rejected_with_its_range():
    with pytest.raises(ValueError, match=r"init_mean_std\[1\] must be a finite real in \[0, inf\]"):
        CrowdLQModel(init_mean_std=(0.1, -0.1, 0.0, 0.0))


def test_ill_posed_crowd_aversion_is_rejected_at_construction():
    with pytest.raises(ValueError, match="crowd_aversion"):
        CrowdLQModel(crowd_aversion=5.0, bandwidth=0.1)
    with pytest.raises(ValueError, match="keyword"):
        CrowdLQEnv(action_cost=0.1)  # a walled-crowd keyword


def test_effort_rate_is_the_rewards_action_term():
    """Two copies of one env, same seed: the reward of the action ``a`` minus that of 0 is ``-effort_rate ||a||``
    (``l1 a_max ||a||``, the part of the reward a critic may take outside its network)."""
    rewards = []
    for action in ([0.0, 0.0], [0.6, -0.8]):
        env = gym.make("MFGCrowd-v0", n_particles=30, action_cost=0.15, action_bound=1.5)
        env.reset(seed=3)
        rewards.append(env.step(np.array(action, dtype=np.float32))[1])
    assert env.unwrapped.population.model.effort_rate == pytest.approx(0.225)
    assert rewards[1] - rewards[0] == pytest.approx(-0.225, rel=1e-6)


@pytest.mark.parametrize("model", [CrowdModel(), CrowdModel(action_bound=3.0, horizon=2.0, n_steps=25)])
def test_the_action_moves_the_next_state_only_through_the_post_decision_state(model):
    """``post_decision_matrix`` is the dynamics' own: two (state, normalized action) pairs with the same
    ``w = s + B a`` (same position, velocities that differ by what the actions make up) move to the same next state
    under the same noise, walls included; the reward's state part is ``-||s - goal_state||``."""
    rng = np.random.default_rng(3)
    states = np.column_stack([rng.uniform(-2.0, 2.0, (400, 2)), rng.normal(0.0, 1.5, (400, 2))])
    actions = rng.uniform(-1.0, 1.0, (400, 2))
    post = states + actions @ model.post_decision_matrix.T
    other_actions = rng.uniform(-1.0, 1.0, (400, 2))
    other_states = post - other_actions @ model.post_decision_matrix.T
    np.testing.assert_array_equal(other_states[:, :2], states[:, :2])
    noise = model.noise(400, rng)
    moved = [
        model.transition(s, model.physical_action(s, a), {}, 0, noise)
        for s, a in ((states, actions), (other_states, other_actions))
    ]
    np.testing.assert_allclose(moved[0], moved[1], atol=1e-12)
    assert (np.abs(moved[0][:, :2]) == 2.0).any()  # some particles met a wall
    density = {"density": np.zeros(model.n_bins**2)}
    no_effort = np.zeros((400, 2))
    np.testing.assert_allclose(
        model.reward(states, no_effort, density, 0), -np.linalg.norm(states - model.goal_state, axis=1)
    )
