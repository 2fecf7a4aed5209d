"""The dynamic-programming best response of the crowd models (``method="dp"``) against independent truth."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import mfg_envs
from mfg_envs import ConstantPolicy, PopulationFlow
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPBestResponse, DPResolution, dp_best_response
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
    """The default grid against one with more position nodes, a wider velocity range and more accelerations, on a
    small room with the default's cells (docs/models.md, "MFGCrowd-v0", states the tolerance: 1 % of the gap)."""
    model = CrowdModel(**ROOM)
    game = Game(model, N)
    flows, own = rollout(game.clone(), goal_seeking(model), 3)
    initial = model.initial_states(N, np.random.default_rng(3))
    finer = DPResolution(nodes_per_cell=4, velocity_step=0.2, velocity_range=2.0, actions_per_axis=9)
    default, refined = (
        frozen_flows_returns(game, flows, 0, dp_best_response(model, flows[0].mean_fields, initial, setting), N, 3)
        for setting in (DEFAULT_RESOLUTION, finer)
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
