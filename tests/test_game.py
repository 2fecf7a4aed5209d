"""One game path: a single population is the K = 1 game; one capability answer; one Nash-gap API; self-play binding."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import mfg_envs
from mfg_envs import ConstantPolicy, Game, exact_nash_gap, exactly_solvable, game_of, rollout, solve_equilibrium
from mfg_envs.crowd_equilibrium import has_reference
from mfg_envs.game import SINGLE_POPULATION, population_rngs
from mfg_envs.linear_quadratic import LinearQuadraticModel
from sb3_meanfield import MFTD3, ModelPolicy, PopulationVecEnv, nash_gap
from sb3_meanfield.common.sb3_adapter import OffPolicySteps

LQ = "MFGLinearQuadratic-v0"
EXACT_IDS = {"MFGCrowdLQ-v0", "MFGPrice-v0", "MFGResource-v0", "MFGLinearQuadratic-v0", "MFGLinearQuadraticMulti-v0"}


def test_mfg_envs_imports_no_torch():
    code = "import sys, mfg_envs; mfg_envs.exact_nash_gap; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("env_id", mfg_envs.ALL_ENV_IDS)
def test_one_answer_to_exact_solvability(env_id):
    env = gym.make(env_id)
    model_class = {**mfg_envs.ENV_CLASSES, **mfg_envs.MULTI_ENV_CLASSES}[env_id].model_class
    expected = env_id in EXACT_IDS
    assert exactly_solvable(env) is expected
    assert exactly_solvable(model_class) is expected
    assert exactly_solvable(game_of(env).model) is expected
    if expected:
        assert not solve_equilibrium(env).numerical
    else:  # the walled crowds: a numerical reference instead (slow to solve: tests/test_crowd_equilibrium.py)
        assert has_reference(env)


def test_a_single_population_is_the_game_of_one():
    env = gym.make(LQ, n_particles=30)
    game = game_of(env)
    assert game.names == (SINGLE_POPULATION,) and game.members == (env.unwrapped.population,)
    own = {"mean": 1.5}
    assert game.model.joint_mean_field([own]) is own  # the model's reward reads its own mean field
    assert Game(LinearQuadraticModel(), 5).names == (SINGLE_POPULATION,)


def test_population_generators_reproduce_a_seeded_env():
    """K = 1 draws from ``default_rng(seed)``: the same initial particles as ``env.reset(seed=seed)``."""
    env = gym.make(LQ, n_particles=40)
    env.reset(seed=3)
    game = game_of(env).clone()
    game.reset(population_rngs(3, 1))
    np.testing.assert_array_equal(game.members[0].states, env.unwrapped.population.states)
    two = population_rngs(3, 2)
    assert two[0].standard_normal() != two[1].standard_normal()


def test_policies_by_name_order_or_callable():
    game = game_of(gym.make("MFGLinearQuadraticMulti-v0", n_particles=20))
    neutral = ConstantPolicy(np.zeros(1))
    by_order = rollout(game.clone(), [neutral, neutral], 1)[1]
    by_name = rollout(game.clone(), {"red": neutral, "blue": neutral}, 1)[1]
    for a, b in zip(by_order, by_name):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one callable"):
        game.policies_in_order(neutral)
    with pytest.raises(ValueError, match="unknown population"):
        game.policies_in_order({"green": neutral})


def test_rollout_discounts_each_population_step_by_step():
    """``rollout(..., discounts)`` returns ``sum_n gamma_k^n r_n``: checked against the rewards of the same episode
    played step by step (same generators), per population."""
    game = game_of(gym.make("MFGLinearQuadraticMulti-v0", n_particles=20))
    neutral = ConstantPolicy(np.full(1, 0.3))
    rngs = population_rngs(5, 2)
    stepped = game.clone()
    stepped.reset(rngs)
    rewards = []
    while not stepped.done:
        actions = [np.full((20, 1), 0.3)] * 2
        rewards.append(stepped.step(actions, [m.model.noise(20, rng) for m, rng in zip(stepped.members, rngs)]))
    weights = np.array([[0.5**n, 1.0] for n in range(len(rewards))])  # red by 0.5, blue undiscounted
    _, returns = rollout(game.clone(), [neutral, neutral], 5, discounts=[0.5, 1.0])
    for k in range(2):
        expected = sum(w[k] * r[k] for w, r in zip(weights, rewards))
        np.testing.assert_allclose(returns[k], expected, rtol=1e-12)
    _, first = rollout(game.clone(), [neutral, neutral], 5, discounts=[0.0, 0.0])
    np.testing.assert_allclose(first[0], rewards[0][0], rtol=1e-12)
    for bad in ([1.0], [1.0, 1.5], [-0.1, 1.0]):
        with pytest.raises(ValueError, match="discounts must be one value in \\[0, 1\\] per population"):
            rollout(game.clone(), [neutral, neutral], 5, discounts=bad)


def test_nash_gap_of_sb3_is_the_exact_gap_for_callables():
    env = gym.make(LQ)
    policy = solve_equilibrium(env).policy
    ours = nash_gap(policy, env, n_particles=500, n_replicates=3, seed=4)
    assert ours == exact_nash_gap(policy, env, n_particles=500, n_replicates=3, seed=4)
    assert ours.method == "exact" and ours.n_replicates == 3 and set(ours.as_dict()) >= {"gap", "relative_gap"}
    with pytest.raises(ValueError, match="n_replicates"):
        exact_nash_gap(policy, env, n_particles=500, n_replicates=1)


def test_rl_gap_errors_come_from_replicates_and_the_responder_is_trained_once(monkeypatch):
    import sb3_meanfield.evaluation as evaluation

    trained = []
    original = evaluation.rl_best_response

    def counting(*args, **kwargs):
        trained.append(args[3])  # the population
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "rl_best_response", counting)
    env = gym.make(LQ, n_particles=20)
    template = MFTD3("MeanFieldPolicy", PopulationVecEnv.from_id(LQ, n_particles=20), learning_starts=50, seed=0)
    result = nash_gap(
        ConstantPolicy(np.zeros(1)), env, "rl", n_particles=300, n_replicates=3, relative=False,
        rl_timesteps=200, rl_kwargs={"n_learners": 4, "learning_starts": 50}, rl_template=template,
    )  # fmt: skip
    assert trained == [0]  # one best response, evaluated on three replicates
    assert result.method == "rl" and result.n_replicates == 3
    assert np.isfinite(result.standard_error) and result.standard_error > 0


def test_self_play_binding_is_in_the_library():
    venv = PopulationVecEnv.from_id(LQ, n_particles=12, n_learners=4)
    assert isinstance(venv.population.policy, ConstantPolicy)  # neutral without a model
    model = MFTD3("MeanFieldPolicy", venv, learning_starts=10, seed=0)
    bound = venv.population.policy
    assert isinstance(bound, ModelPolicy) and bound.policy is model.policy  # the live model, not a copy
    model.learn(20)
    assert venv.population.policy.policy is model.policy
    explicit = ConstantPolicy(np.full(1, 0.5))
    other = PopulationVecEnv.from_id(LQ, n_particles=12, n_learners=4)
    other.set_population_policy(explicit)
    MFTD3("MeanFieldPolicy", other, learning_starts=10, seed=0).learn(20)
    assert other.population.policy is explicit  # an explicit population policy is kept


def test_sb3_adapter_names_a_missing_member():
    with pytest.raises(RuntimeError, match=r"stable-baselines3 .* lacks"):
        OffPolicySteps(object())  # type: ignore[arg-type]
