"""sb3_meanfield.nash_gap, the RL best response and the Nash-gap callbacks."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from helpers import rollout_population
from stable_baselines3 import TD3
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import LinearSchedule

import mfg_envs  # noqa: F401
from mfg_envs.core import ConstantPolicy, Population
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPResolution
from mfg_envs.crowd_lq import CrowdLQModel
from mfg_envs.equilibrium import AffinePolicy, solve_equilibrium
from mfg_envs.game import Game, rollout
from mfg_envs.nash_gap import exact_nash_gap, neutral_gaps
from sb3_meanfield import MFTD3, ModelPolicy, NashGapCallback, StopTrainingOnNashGap, nash_gap
from sb3_meanfield.common.noise import DecayingGaussianActionNoise, VectorizedDecayingGaussianActionNoise
from sb3_meanfield.evaluation import (
    TRAINING_RESOLUTION,
    critic_overestimation,
    fit_resolution,
    gap_method,
)
from sb3_meanfield.hyperparams import POLICY_KWARGS

th.set_num_threads(1)

RL_KWARGS = {
    "learning_rate": 1e-3,
    "learning_starts": 1000,
    "batch_size": 256,
    "action_noise": NormalActionNoise(np.zeros(1), np.full(1, 0.1)),
}


@pytest.fixture(scope="module")
def env():
    return gym.make("MFGLinearQuadratic-v0")


def td3(env, seed=0):
    return TD3("MultiInputPolicy", env, policy_kwargs={"net_arch": {"pi": [32, 32], "qf": [64, 64]}}, seed=seed)


def test_exact_method_accepts_models_and_callables(env):
    model = td3(env)
    by_model = nash_gap(model, env, n_particles=2000, relative=False)
    by_callable = nash_gap(ModelPolicy(model), env, n_particles=2000, relative=False)
    assert (by_model.gap, by_model.policy_return) == (by_callable.gap, by_callable.policy_return)
    assert by_model.gap > 0 and by_model.standard_error > 0


def test_exact_method_matches_the_equilibrium_oracle(env):
    equilibrium = solve_equilibrium(env)
    result = nash_gap(equilibrium.policy, env)
    assert abs(result.gap) < 4 * result.standard_error + 1e-4
    assert result.best_response_return >= result.policy_return - 4 * result.standard_error


def test_rl_gap_is_a_lower_bound_of_the_exact_gap(env):
    """Even a badly trained best response cannot beat the exact one (common random numbers, fresh noise)."""
    neutral = ConstantPolicy(np.zeros(1))
    exact = exact_nash_gap(neutral, env, 5000, 0, relative=False)
    rl = nash_gap(neutral, env, "rl", 5000, 0, False, rl_timesteps=1200, rl_kwargs=RL_KWARGS, rl_template=td3(env))
    assert np.isfinite(rl.gap)
    assert rl.gap <= exact.gap + 4 * (rl.standard_error + exact.standard_error)


@pytest.mark.slow
def test_rl_best_response_recovers_most_of_the_exact_gap(env):
    """64 agents of the shipped MF-TD3 learn the best response to the flow of a perturbed equilibrium policy.

    The gain is halved (exact gap 0.41): the RL best response is accurate to a few hundredths here, so a
    perturbation whose gap is of that order (bias +0.5: 0.06) cannot be resolved by it.
    """
    model = env.unwrapped.model
    equilibrium = solve_equilibrium(env)
    perturbed = AffinePolicy(model, 0.5 * equilibrium.policy.gains, equilibrium.policy.offsets)
    exact = exact_nash_gap(perturbed, env, 10_000, 0, relative=False)
    template = MFTD3("MeanFieldPolicy", env, policy_kwargs=POLICY_KWARGS)
    budget = 800_000  # the shipped self-play budget: 64 agents x 12,500 env steps
    noise = DecayingGaussianActionNoise(np.zeros(1), sigma=0.2, final_sigma=0.02, decay_steps=budget // 64)
    rl_kwargs = {
        "learning_rate": LinearSchedule(1e-3, 1e-5, 1.0),
        "learning_starts": 6400,
        "gradient_steps": 2,
        "action_noise": VectorizedDecayingGaussianActionNoise(noise, 64),
    }
    rl = nash_gap(
        perturbed, env, "rl", 10_000, 0, False, rl_timesteps=budget, rl_kwargs=rl_kwargs, rl_template=template
    )
    assert rl.gap >= 0.8 * exact.gap
    assert rl.gap <= exact.gap + 4 * (rl.standard_error + exact.standard_error)


def test_rl_method_needs_an_algorithm(env):
    with pytest.raises(ValueError, match="rl_template"):
        nash_gap(ConstantPolicy(np.zeros(1)), env, method="rl")
    with pytest.raises(ValueError, match="method"):
        nash_gap(ConstantPolicy(np.zeros(1)), env, method="guess")


def test_callback_logs_a_gap_that_changes_during_training():
    env = gym.make("MFGLinearQuadratic-v0", n_particles=20)
    callback = NashGapCallback(eval_freq=300, n_particles=2000)
    model = TD3("MultiInputPolicy", env, learning_starts=100, seed=1, policy_kwargs={"net_arch": [32, 32]})
    model.learn(900, callback=callback)
    gaps = [result.gap for _, result in callback.history]
    assert [step for step, _ in callback.history] == [300, 600, 900]
    assert len(set(gaps)) == 3 and all(np.isfinite(gaps))
    assert model.logger.name_to_value == {} or "mfg/nash_gap" not in model.logger.name_to_value  # dumped


def test_stop_training_on_nash_gap():
    env = gym.make("MFGLinearQuadratic-v0", n_particles=20)
    stopper = StopTrainingOnNashGap(threshold=1e6, eval_freq=200, n_particles=1000)
    model = TD3("MultiInputPolicy", env, learning_starts=100, seed=1, policy_kwargs={"net_arch": [16]})
    model.learn(2000, callback=stopper)
    assert model.num_timesteps == 200 and len(stopper.history) == 1


@pytest.mark.parametrize("kwargs", [{"eval_freq": 0}, {"method": "oracle"}, {"dp_resolution": {"grid": 3}}])
def test_callback_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        NashGapCallback(**kwargs)
    with pytest.raises(ValueError, match="threshold"):
        StopTrainingOnNashGap(threshold=0.0)


def test_critic_overestimation_compares_the_critic_with_the_realized_return(env):
    """A critic forced to output a constant ``c`` overestimates by exactly ``c - R`` (``R``: the mean return)."""
    model = MFTD3("MeanFieldPolicy", env, policy_kwargs=POLICY_KWARGS, gamma=1.0, seed=0)
    critic_heads = model.critic.q_networks
    with th.no_grad():
        for parameter in critic_heads.parameters():
            parameter.zero_()
        critic_heads.q_head[-1].bias.fill_(3.5)
    result = critic_overestimation(model, env, n_particles=500, seed=7)
    _, returns = rollout_population(Population(env.unwrapped.model, 500), ModelPolicy(model), 7)
    assert result["critic_value"] == pytest.approx(3.5)
    assert result["realized_return"] == pytest.approx(returns.mean())
    assert result["q_overestimation"] == pytest.approx(3.5 - returns.mean())
    assert result["realized_return_se"] == pytest.approx(returns.std(ddof=1) / np.sqrt(500))
    model.gamma = 0.5  # a discounting critic is compared with the return discounted as it discounts
    discounted = critic_overestimation(model, env, n_particles=500, seed=7)["realized_return"]
    _, expected = rollout(Game.of(Population(env.unwrapped.model, 500)), ModelPolicy(model), 7, discounts=[0.5])
    assert discounted == pytest.approx(expected[0].mean()) and discounted != pytest.approx(returns.mean())


# --------------------------------------------------------------------------- the method of each game, dp checks
#: A crowd small enough for the default suite (dt = 0.1 as the shipped crowd's) and a coarse grid.
SMALL_CROWD = {"horizon": 1.0, "n_steps": 10, "n_bins": 10}
COARSE = {
    "nodes_per_cell": 1,
    "velocity_step": 0.1,
    "velocity_range": 1.5,
    "actions_per_axis": 5,
}  # as a YAML entry gives it


def test_gap_method_is_exact_where_solvable_else_dp_on_the_crowds(env):
    assert gap_method(env) == gap_method(CrowdLQModel) == gap_method(CrowdLQModel()) == "exact"  # exact first
    assert gap_method(CrowdModel) == gap_method(gym.make("MFGCrowdMulti-v0")) == "dp"


def test_cached_neutral_gap_gives_crn_nash_gap_s_relative_gap(env):
    """The relative gap's scale from the cache is the one crn_nash_gap computes itself, to the bit."""
    policy = ConstantPolicy(np.full(1, 0.3))
    assert nash_gap(policy, env, n_particles=500, n_replicates=2) == exact_nash_gap(policy, env, 500, 0, True, 2)


class Recorder(KVWriter):
    """Keeps every dump of a logger."""

    def __init__(self):
        self.dumps = []

    def write(self, key_values, key_excluded, step=0):
        self.dumps.append(dict(key_values))


def test_dp_callback_logs_nash_gap_s_dp_gap_and_computes_the_neutral_gap_once():
    env = gym.make("MFGCrowd-v0", n_particles=20, **SMALL_CROWD)
    callback = NashGapCallback(eval_freq=10, method="dp", n_particles=200, dp_resolution=COARSE)
    assert (callback.n_replicates, callback.dp_resolution) == (2, DPResolution(**COARSE))  # dp: 2 replicates
    # no gradient step before learning_starts: the policy checked at step 20 is the final one
    model = TD3("MultiInputPolicy", env, learning_starts=100, seed=1, policy_kwargs={"net_arch": [16]})
    recorder = Recorder()
    model.set_logger(Logger(None, [recorder]))
    neutral_gaps.cache_clear()
    model.learn(20, callback=callback)
    assert [step for step, _ in callback.history] == [10, 20]
    assert neutral_gaps.cache_info()[:2] == (1, 1)  # (hits, misses): the second check reused the first's
    direct = nash_gap(model, env, "dp", 200, n_replicates=2, dp_resolution=DPResolution(**COARSE))
    assert neutral_gaps.cache_info().hits == 2 and direct.method == "dp"
    assert callback.history[-1][1] == direct
    logged = [dump for dump in recorder.dumps if "mfg/nash_gap" in dump]
    assert len(logged) == 2
    assert (logged[-1]["mfg/nash_gap"], logged[-1]["mfg/relative_nash_gap"]) == (direct.gap, direct.relative_gap)
    assert logged[-1]["mfg/br_return"] == direct.best_response_return


def test_dp_grids_fit_the_crowd_s_time_step():
    """The default grids fit the shipped crowd (dt = 0.1); another dt gets the nearest velocity step that fits."""
    assert fit_resolution(DEFAULT_RESOLUTION, CrowdModel()) is DEFAULT_RESOLUTION
    assert fit_resolution(TRAINING_RESOLUTION, CrowdModel()) is TRAINING_RESOLUTION
    grid = DPResolution(nodes_per_cell=1, velocity_step=0.1, velocity_range=2.0, actions_per_axis=9)
    fitted = fit_resolution(grid, CrowdModel(n_steps=10))  # dt = 0.4: velocity shifts of 0.4 * 0.5
    assert (fitted.velocity_step, fitted.velocity_range) == pytest.approx((0.2, 2.0))
    assert (fitted.nodes_per_cell, fitted.actions_per_axis) == (1, 9)
    env = gym.make("MFGCrowd-v0", n_steps=10, n_bins=6)
    assert np.isfinite(nash_gap(ConstantPolicy(np.zeros(2)), env, "dp", 100, n_replicates=2).relative_gap)
