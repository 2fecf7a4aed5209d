"""The dynamic-programming best response of the crowd models (``method="dp"``) against independent truth."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import mfg_envs
from mfg_envs import ConstantPolicy, PopulationFlow
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import (
    DEFAULT_RESOLUTION,
    REFERENCE_RESOLUTION,
    AxisGrid,
    DPBestResponse,
    DPResolution,
    best_over_actions,
    dp_best_response,
    parabola,
)
from mfg_envs.crowd_lq import CrowdLQModel
from mfg_envs.crowd_multi import CrowdMultiModel
from mfg_envs.game import Game, frozen_flows_returns, rollout
from mfg_envs.nash_gap import crn_nash_gap
from sb3_meanfield import MFSAC, PopulationVecEnv, nash_gap

#: A small grid for small models (cells of 0.4, ten steps): seconds, not minutes.
SMALL = DPResolution(nodes_per_cell=1, velocity_step=0.1, velocity_range=1.5, actions_per_axis=5)
SHORT = {"horizon": 1.0, "n_steps": 10, "n_bins": 10}
#: A small room with the default cells (0.2 wide) and ten steps.
ROOM = {**SHORT, "domain": (-1.0, 1.0), "goal": (0.5, 0.0), "init_mean": (-0.5, 0.25, 0.0, 0.0)}
N = 2000


def goal_seeking(model):
    def policy(obs):
        states = obs["state"]
        return np.clip((model.goal - states[:, :2]) - 1.5 * states[:, 2:], -2.0, 2.0) / model.action_bound

    return policy


def flow_policy_of(model, name):
    equilibrium = model.solve_equilibrium().policy
    if name == "equilibrium":
        return equilibrium
    if name == "perturbed":  # the equilibrium's gains and offsets off by half
        return replace(equilibrium, gains=1.5 * equilibrium.gains, offsets=0.5 * equilibrium.offsets)
    return ConstantPolicy(np.zeros(2))


@pytest.mark.parametrize("flow_policy", ["equilibrium", "perturbed", "neutral"])
def test_dp_agrees_with_the_exact_best_response_on_crowd_lq(flow_policy):
    """Same frozen flow, same particles and noise: within 0.5 % of the exact best response's return."""
    model = CrowdLQModel(**SHORT)
    game = Game(model, N)
    policy = flow_policy_of(model, flow_policy)
    flows, _ = rollout(game.clone(), policy, 1)
    dp = dp_best_response(model, flows[0].mean_fields, model.initial_states(N, np.random.default_rng(1)), SMALL)
    ours = frozen_flows_returns(game, flows, 0, dp, N, 1).mean()
    exact = frozen_flows_returns(game, flows, 0, model.best_response(flows[0]).policy, N, 1).mean()
    assert abs(ours - exact) < 0.005 * abs(exact)
    assert abs(dp.value_estimate - exact) < 0.01 * abs(exact)  # the solver's own value, from the grid


def test_dp_best_response_beats_every_simple_response_on_the_walled_crowd():
    model = CrowdModel(**SHORT)
    game = Game(model, N)
    flows, own = rollout(game.clone(), goal_seeking(model), 2)
    dp = dp_best_response(model, flows[0].mean_fields, model.initial_states(N, np.random.default_rng(2)), SMALL)
    ours = frozen_flows_returns(game, flows, 0, dp, N, 2).mean()
    for other in (ConstantPolicy(np.zeros(2)), goal_seeking(model), ConstantPolicy(np.array([0.5, -0.2]))):
        assert ours > frozen_flows_returns(game, flows, 0, other, N, 2).mean()
    assert ours > own[0].mean()


def test_refining_the_default_grid_moves_the_best_response_by_less_than_one_percent_of_the_gap():
    """The default grid against the reference one (more position nodes, a wider velocity range and more
    accelerations), on a small room with the default's cells (docs/models.md, "MFGCrowd-v0", states the
    tolerance: 1 % of the gap)."""
    model = CrowdModel(**ROOM)
    game = Game(model, N)
    flows, own = rollout(game.clone(), goal_seeking(model), 3)
    initial = model.initial_states(N, np.random.default_rng(3))
    default, refined = (
        frozen_flows_returns(game, flows, 0, dp_best_response(model, flows[0].mean_fields, initial, setting), N, 3)
        for setting in (DEFAULT_RESOLUTION, REFERENCE_RESOLUTION)
    )
    gap = (refined - own[0]).mean()
    assert gap > 0.5  # a real gap, so that 1 % of it is a real tolerance
    assert abs((refined - default).mean()) < 0.01 * gap


def test_dp_best_response_is_at_least_as_good_as_the_rl_best_response():
    """The RL best response (a lower bound) finds at most the dp gap on the same flow, up to their noise (the RL
    gap is scored on fresh noise, so the two policy returns differ by noise)."""
    env = gym.make("MFGCrowd-v0", **SHORT)
    flow_policy = goal_seeking(CrowdModel(**SHORT))
    dp = nash_gap(flow_policy, env, "dp", n_particles=N, relative=False, n_replicates=2, dp_resolution=SMALL)
    template = MFSAC("MeanFieldPolicy", PopulationVecEnv.from_id("MFGCrowd-v0", 20, **SHORT), seed=0)
    rl = nash_gap(flow_policy, env, "rl", n_particles=N, relative=False, n_replicates=2, rl_timesteps=4000,
                  rl_kwargs={"n_learners": 16, "learning_starts": 500}, rl_template=template)  # fmt: skip
    assert dp.gap > 0.1 and dp.gap >= rl.gap - 3 * (rl.standard_error + dp.standard_error)


def test_dp_nash_gap_through_the_one_api():
    env = gym.make("MFGCrowd-v0", **SHORT)
    neutral = ConstantPolicy(np.zeros(2))
    result = nash_gap(neutral, env, "dp", n_particles=500, n_replicates=2, dp_resolution=SMALL)
    assert result.method == "dp" and result.gap > 0 and np.isfinite(result.standard_error)
    assert abs(result.relative_gap - 1.0) < 0.05  # the neutral policy relative to itself (another replicate)
    assert np.isfinite(result.gaps["population"].value_estimate)
    direct = crn_nash_gap(mfg_envs.game_of(env), [neutral], lambda: DPBestResponse(SMALL), "dp", 500, 0, False, 2)
    assert direct.gap == result.gap


def test_dp_gives_every_population_of_the_two_crowds_a_best_response():
    game = Game(CrowdMultiModel(**SHORT), 300)
    result = nash_gap([ConstantPolicy(np.zeros(2))] * 2, game, "dp", n_particles=300, n_replicates=2,
                      relative=False, dp_resolution=SMALL)  # fmt: skip
    assert set(result.gaps) == {"red", "blue"}
    assert all(gap.gap > 1.0 for gap in result.gaps.values())  # standing still is far from a best response


def test_dp_rejects_other_models_and_wrong_flows():
    with pytest.raises(NotImplementedError, match="no dynamic-programming best response"):
        nash_gap(ConstantPolicy(np.zeros(1)), gym.make("MFGLinearQuadratic-v0"), "dp", n_particles=10)
    game = Game(CrowdModel(**SHORT), 10)
    short = PopulationFlow(np.zeros((3, 100), np.float32), ({},) * 3)
    with pytest.raises(ValueError, match="flows must hold one flow of 11 steps"):
        DPBestResponse(SMALL)(game, 0, [short], 0)
    with pytest.raises(ValueError, match="actions_per_axis"):
        DPResolution(actions_per_axis=4)
    with pytest.raises(ValueError, match="velocity_step / \\(dt"):
        dp_best_response(
            CrowdModel(**SHORT), [], np.zeros((1, 4)), DPResolution(velocity_step=0.25, velocity_range=1.5)
        )
    with pytest.raises(ValueError, match="mean_fields must hold the n_steps \\+ 1 = 11 mean fields"):
        dp_best_response(CrowdModel(**SHORT), [], np.zeros((1, 4)), SMALL)


def test_the_velocity_expectation_is_exact_for_quadratics():
    """Catmull-Rom interpolation reproduces quadratics, so away from the velocity range's ends the velocity masses
    give ``E (w + eps) = w`` and ``E (w + eps)^2 = w^2 + s^2`` for ``eps ~ N(0, s^2)``."""
    model = CrowdModel()
    grid = AxisGrid(model, DEFAULT_RESOLUTION, walls=True)
    mass, v, s = grid.velocity_mass.astype(float), grid.velocities, grid.noise_std
    inner = np.abs(grid.shifts) < v[-1] - 8 * s - 2 * (v[1] - v[0])
    assert inner.sum() > 10 and np.allclose(mass.sum(axis=1), 1.0)
    assert np.allclose((mass @ v)[inner], grid.shifts[inner], atol=1e-6)
    assert np.allclose((mass @ v**2)[inner], grid.shifts[inner] ** 2 + s**2, atol=1e-6)


def test_the_maximum_over_accelerations_matches_a_direct_search():
    """On random values over a grid whose flat indices overflow 16-bit integers: the maximum over the
    accelerations and its per-axis parabola refinement, at random nodes, computed directly."""
    grid = AxisGrid(CrowdModel(), DPResolution(nodes_per_cell=4, velocity_step=0.2, velocity_range=2.4), walls=True)
    n_positions, n_shifts, r = len(grid.positions), len(grid.shifts), grid.refinement
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((n_positions, n_shifts, n_positions, n_shifts)).astype(np.float32)
    reward = rng.standard_normal((7, 7)).astype(np.float32)
    assert 6 * n_positions * n_shifts > np.iinfo(np.int16).max
    best = best_over_actions(grid, expected, reward)
    for px, vx, py, vy in rng.integers(0, [n_positions, len(grid.velocities)] * 2, size=(200, 4)):
        q = expected[px, vx * r : vx * r + 7, py, vy * r : vy * r + 7] + reward
        a, b = np.unravel_index(q.argmax(), q.shape)
        gain = sum(
            parabola(
                *(np.array([line[i - 1], line[i], line[i + 1]]) if 0 < i < 6 else np.zeros(3)), np.array(0 < i < 6)
            )[1]
            for line, i in ((q[:, b], a), (q[a, :], b))
        )
        assert best[px, vx, py, vy] == pytest.approx(q.max() + gain, abs=1e-5)


def test_the_greedy_policy_does_at_least_as_well_as_the_grid_accelerations_at_each_particle():
    """Its final search includes the best grid acceleration, so at every particle its own ``Q`` is at least that
    of every grid acceleration, and it stays within one grid spacing of the best one."""
    model = CrowdModel(**SHORT)
    game = Game(model, N)
    flows, _ = rollout(game.clone(), goal_seeking(model), 4)
    rng = np.random.default_rng(4)
    dp = dp_best_response(model, flows[0].mean_fields, model.initial_states(500, rng), SMALL)
    states = np.concatenate([rng.uniform(*model.domain, (500, 2)), rng.uniform(-1.0, 1.0, (500, 2))], axis=1)
    accelerations, spacing = dp.grid.accelerations, dp.grid.accelerations[1] - dp.grid.accelerations[0]
    grid_index = np.broadcast_to(np.arange(len(accelerations), dtype=float), (len(states), len(accelerations)))
    for n in (2, 7):
        table = dp.smooth_table(n, states)
        on_grid = dp.q_values(n, states, table, grid_index, grid_index).reshape(len(states), -1)
        chosen = (dp.greedy(n, states) - accelerations[0]) / spacing
        own = dp.q_values(n, states, table, chosen[:, :1], chosen[:, 1:])[:, 0, 0]
        assert np.all(own >= on_grid.max(axis=1) - 1e-9)
        best = np.stack(np.divmod(on_grid.argmax(axis=1), len(accelerations)), axis=1)
        assert np.all(np.abs(chosen - best) <= 1.0 + 1e-9)
        assert np.mean(np.abs(chosen - np.rint(chosen)) > 1e-6) > 0.1  # it does leave the grid
