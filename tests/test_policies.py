"""Population encoders, mean field policies and algorithms, exploration noise (sb3-contrib style, tiny budgets)."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise, VectorizedActionNoise
from stable_baselines3.sac import policies as sac_policies
from stable_baselines3.td3 import policies as td3_policies
from torch import nn

from mfg_envs.game import game_of
from mfg_envs.linear_quadratic import LinearQuadraticEnv
from sb3_meanfield.common.encoders import MeanFieldExtractor
from sb3_meanfield.common.noise import (
    DecayingGaussianActionNoise,
    VectorizedDecayingGaussianActionNoise,
    make_action_noise,
)
from sb3_meanfield.common.vec_env import PopulationVecEnv
from sb3_meanfield.ddpg import MFDDPG
from sb3_meanfield.sac import MFSAC, MeanFieldSACPolicy
from sb3_meanfield.td3 import MFTD3, MeanFieldCritic, MeanFieldTD3Policy
from sb3_meanfield.td3.critics import StackedLinear

th.set_num_threads(1)

# SB3's own aliases, built from its policy modules (not read from the dicts under test)
SB3_ALIASES = {
    name: {alias: getattr(module, alias) for alias in ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")}
    for name, module in (("TD3", td3_policies), ("SAC", sac_policies))
}
ALGOS = (MFDDPG, MFTD3, MFSAC)


def make_env(**kwargs) -> LinearQuadraticEnv:
    return LinearQuadraticEnv(n_particles=50, n_steps=10, **kwargs)


def observation_batch(env, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` observations along an episode under random actions."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    batch = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        batch.append(obs)
    return {key: np.stack([o[key] for o in batch]) for key in obs}


def linear_widths(module: nn.Module) -> list[int]:
    return [layer.out_features for layer in module.modules() if isinstance(layer, nn.Linear)]


def stacked_widths(layers: nn.ModuleList) -> list[int]:
    """Output widths of the stacked layers of the critics (one layer of every critic each)."""
    return [layer.out_features for layer in layers]


def population_swap() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The same agent observation with the population of two different initial laws (mean 2 vs mean -1)."""
    obs, _ = make_env().reset(seed=0)
    other, _ = make_env(init_mean=-1.0).reset(seed=0)
    assert not np.array_equal(obs["population"], other["population"])
    return obs, dict(obs, population=other["population"])


@pytest.fixture(scope="module")
def trained() -> dict[type, tuple]:
    """Each algorithm after 200 steps on the LQ game (reward depends on the population mean), and its first actor."""
    models = {}
    for algo in ALGOS:
        model = algo("MeanFieldPolicy", make_env(), learning_starts=50, seed=0)
        initial_actor = copy.deepcopy(model.actor.state_dict())
        model.learn(200)
        models[algo] = (model, initial_actor)
    return models


# --------------------------------------------------------------------------- algorithms and aliases
@pytest.mark.parametrize("algo", ALGOS)
def test_learn(trained, algo):
    model, initial_actor = trained[algo]
    assert model.num_timesteps == 200
    assert isinstance(model.replay_buffer, DictReplayBuffer)
    assert isinstance(model.critic, MeanFieldCritic)
    assert model.critic.q_networks.n_critics == (1 if algo is MFDDPG else 2)
    changed = [not th.equal(value, initial_actor[key]) for key, value in model.actor.state_dict().items()]
    assert all(changed)


def test_plain_td3_takes_policy_class():
    model = TD3(MeanFieldTD3Policy, make_env(), learning_starts=50, seed=0).learn(200)
    assert isinstance(model.policy, MeanFieldTD3Policy)
    assert isinstance(model.critic_target, MeanFieldCritic)
    assert model.num_timesteps == 200


def test_policy_aliases_extend_sb3_without_mutating_it():
    assert TD3.policy_aliases is DDPG.policy_aliases
    for name, algo in (("TD3", TD3), ("TD3", DDPG), ("SAC", SAC)):
        assert algo.policy_aliases == SB3_ALIASES[name]
    for algo, base, policy in ((MFTD3, TD3, MeanFieldTD3Policy), (MFDDPG, DDPG, MeanFieldTD3Policy)):
        assert algo.policy_aliases is not base.policy_aliases
        assert algo.policy_aliases == {**base.policy_aliases, "MeanFieldPolicy": policy}
    assert MFSAC.policy_aliases == {**SAC.policy_aliases, "MeanFieldPolicy": MeanFieldSACPolicy}


# --------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("algo", ALGOS)
def test_default_networks_follow_the_design(trained, algo):
    policy = trained[algo][0].policy
    actor_extractor, critic = policy.actor.features_extractor, policy.critic
    assert linear_widths(actor_extractor.state_encoder) == [256, 128]
    assert linear_widths(actor_extractor.population_encoder) == [128, 64]
    assert actor_extractor.state_encoder[0].in_features == 2  # state and time
    head = policy.actor.mu if algo is not MFSAC else policy.actor.latent_pi
    assert linear_widths(head)[0] == 128
    assert linear_widths(critic.features_extractor.state_encoder) == [256]
    assert linear_widths(critic.features_extractor.population_encoder) == [128]
    assert critic.features_extractor is not actor_extractor
    heads = critic.q_networks
    assert stacked_widths(heads.action_encoder) == [64]
    assert stacked_widths(heads.q_head) == [256, 128, 1]
    assert heads.q_head[0].in_features == 256 + 64 + 128
    assert {layer.weight.shape[0] for layer in heads.modules() if isinstance(layer, StackedLinear)} == {heads.n_critics}


def test_extractor_keywords_by_role():
    policy_kwargs = {
        "features_extractor_kwargs": {"population_arch": [32], "state_arch": [48]},
        "critic_extractor_kwargs": {"population_arch": [16]},
        "action_encoder_arch": [8],
    }
    model = MFTD3("MeanFieldPolicy", make_env(), policy_kwargs=policy_kwargs)
    actor_extractor, critic_extractor = model.actor.features_extractor, model.critic.features_extractor
    assert linear_widths(actor_extractor.population_encoder) == [32]
    assert linear_widths(critic_extractor.population_encoder) == [16]
    assert linear_widths(actor_extractor.state_encoder) == linear_widths(critic_extractor.state_encoder) == [48]
    assert stacked_widths(model.critic.q_networks.action_encoder) == [8]


def test_shared_extractor_is_the_actors():
    model = MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"share_features_extractor": True})
    assert model.critic.features_extractor is model.actor.features_extractor
    assert model.critic_target.features_extractor is model.actor_target.features_extractor


# --------------------------------------------------------------------------- the actor's log barrier
def test_action_barrier_is_added_to_the_actor_objective_only():
    env, barrier = make_env(), 0.05
    plain = MFTD3("MeanFieldPolicy", env, seed=0)
    model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_barrier": barrier})
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.linspace(-0.99, 0.9, 8).unsqueeze(1)
    with th.no_grad():
        critics = model.critic(obs, actions)
        expected = critics[0] + barrier * th.log(1.0 - actions * actions)
        th.testing.assert_close(model.critic.q1_forward(obs, actions), expected)
        # same seed, no barrier: the same networks, and the plain objective is the first critic
        th.testing.assert_close(plain.critic(obs, actions)[0], critics[0])
        th.testing.assert_close(plain.critic.q1_forward(obs, actions), critics[0])
    assert model.critic_target.action_barrier == barrier


@pytest.mark.parametrize("barrier", [0.0, 0.05])
def test_action_barrier_pulls_a_saturated_actor_back(barrier):
    """At a saturated tanh actor the barrier's gradient in the pre-activation is ``-2 lambda tanh(z)``; the critic's
    alone has vanished."""
    env = make_env()
    model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_barrier": barrier})
    head = [layer for layer in model.actor.mu if isinstance(layer, nn.Linear)][-1]
    with th.no_grad():
        head.weight.zero_()
        head.bias.fill_(5.0)  # z = 5: a = tanh(5) = 0.99991
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    objective = model.critic.q1_forward(obs, model.actor(obs)).mean()
    (grad,) = th.autograd.grad(objective, head.bias)
    np.testing.assert_allclose(grad.item(), -2.0 * barrier * np.tanh(5.0), atol=2e-3)


def test_action_barrier_survives_save_and_load(tmp_path):
    model = MFDDPG("MeanFieldPolicy", make_env(), policy_kwargs={"action_barrier": 0.1})
    model.save(tmp_path / "model.zip")
    assert MFDDPG.load(tmp_path / "model.zip").critic.action_barrier == 0.1


@pytest.mark.parametrize("barrier", [-0.1, float("nan"), "big"])
def test_bad_action_barrier(barrier):
    with pytest.raises(ValueError, match="action_barrier"):
        MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"action_barrier": barrier})


# --------------------------------------------------------------------------- the actor's quadratic
def test_action_l2_is_added_to_the_actor_objective_beside_the_barrier():
    env, barrier, kappa = make_env(), 0.05, 0.3
    model = MFDDPG("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_barrier": barrier, "action_l2": kappa})
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.stack([th.linspace(-1.0, 1.0, 8), th.linspace(0.9, -0.3, 8)], dim=1)[:, : env.action_space.shape[0]]
    inside = actions.clamp(-model.critic.BARRIER_EDGE, model.critic.BARRIER_EDGE)
    with th.no_grad():
        (critic,) = model.critic(obs, actions)
        expected = critic + (barrier * th.log(1.0 - inside**2) - kappa * actions**2).sum(dim=1, keepdim=True)
        th.testing.assert_close(model.critic.q1_forward(obs, actions), expected)
    assert model.critic_target.action_l2 == kappa


def test_action_l2_gradient_is_linear_in_the_action():
    """Without a barrier the quadratic adds ``-2 kappa a (1 - a^2)`` to the objective's gradient in the
    pre-activation ``z`` of ``a = tanh(z)``: unlike the barrier's it does not grow toward the bound."""
    env, kappa, z = make_env(), 0.4, 0.5
    gradients = []
    for l2 in (0.0, kappa):  # same seed: the same networks
        model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_l2": l2})
        head = [layer for layer in model.actor.mu if isinstance(layer, nn.Linear)][-1]
        with th.no_grad():
            head.weight.zero_()
            head.bias.fill_(z)
        obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
        gradients.append(th.autograd.grad(model.critic.q1_forward(obs, model.actor(obs)).mean(), head.bias)[0])
    action = np.tanh(z)
    np.testing.assert_allclose(
        (gradients[1] - gradients[0]).numpy(), -2.0 * kappa * action * (1 - action**2), rtol=1e-5
    )


def test_action_l2_survives_save_and_load(tmp_path):
    model = MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"action_l2": 0.07})
    model.save(tmp_path / "model.zip")
    assert MFTD3.load(tmp_path / "model.zip").critic.action_l2 == 0.07


@pytest.mark.parametrize("kappa", [-0.1, float("inf"), None])
def test_bad_action_l2(kappa):
    with pytest.raises(ValueError, match="action_l2"):
        MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"action_l2": kappa})


# --------------------------------------------------------------------------- the actor's objective: Q_1 or the mean
@pytest.mark.parametrize("post_decision", [False, True])
def test_actor_objective_mean_is_the_critics_mean(post_decision):
    """``actor_objective="mean"``: the actor ascends ``(1 / n) sum_i Q_i`` (with the barrier and the quadratic), the
    default ``Q_1``; the critics themselves are the same networks either way (same seed), and so is the gradient's
    path (through the post-decision features, or the action alone)."""
    env, barrier, kappa = walled_crowd_env(), 0.05, 0.1
    extra = post_decision_kwargs() if post_decision else {"action_cost": 0.2}
    kwargs = {"n_critics": 3, "action_barrier": barrier, "action_l2": kappa, **extra}
    first = MFDDPG("MeanFieldPolicy", env, seed=0, policy_kwargs=kwargs)
    mean = MFDDPG("MeanFieldPolicy", env, seed=0, policy_kwargs={**kwargs, "actor_objective": "mean"})
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.stack([th.linspace(-0.9, 0.9, 8), th.linspace(0.8, -0.3, 8)], dim=1).requires_grad_(True)
    regularizer = (barrier * th.log(1.0 - actions**2) - kappa * actions**2).sum(dim=1, keepdim=True)
    critics = first.critic(obs, actions)
    for q_mean, q_first in zip(mean.critic(obs, actions), critics):
        th.testing.assert_close(q_mean, q_first)
    th.testing.assert_close(first.critic.q1_forward(obs, actions), critics[0] + regularizer)
    objective = mean.critic.q1_forward(obs, actions)
    expected = th.stack(critics).mean(0) + regularizer
    th.testing.assert_close(objective, expected)
    (gradient,) = th.autograd.grad(objective.sum(), actions)
    th.testing.assert_close(gradient, th.autograd.grad(expected.sum(), actions)[0])
    assert not th.allclose(critics[0], critics[1])  # independent critics: the two objectives differ
    assert mean.critic_target.actor_objective == "mean"


def test_actor_objective_survives_save_and_load(tmp_path):
    model = MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"actor_objective": "mean"})
    model.save(tmp_path / "model.zip")
    assert MFTD3.load(tmp_path / "model.zip").critic.actor_objective == "mean"


@pytest.mark.parametrize("objective", ["min", "Mean", None])
def test_bad_actor_objective(objective):
    with pytest.raises(ValueError, match=r"actor_objective must be one of \('first', 'mean'\)"):
        MFTD3("MeanFieldPolicy", make_env(), policy_kwargs={"actor_objective": objective})


# --------------------------------------------------------------------------- the known effort cost
def walled_crowd_env(**kwargs):
    return gym.make("MFGCrowd-v0", n_particles=50, population_representation="moments", **kwargs)


@pytest.mark.parametrize("algo", ALGOS)
def test_action_cost_is_subtracted_exactly_from_every_critic(algo):
    """Same seed, same networks: with ``action_cost = c`` every critic, its target and the actor's objective are
    those without it minus ``c ||a||`` (Euclidean norm of the normalized action)."""
    env, cost = walled_crowd_env(), 0.2
    models = [algo("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_cost": c}) for c in (0.0, cost)]
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.stack([th.linspace(-1.0, 1.0, 8), th.linspace(0.9, -0.3, 8)], dim=1)
    actions[3] = 0.0
    norms = th.sqrt((actions**2).sum(dim=1, keepdim=True))
    with th.no_grad():
        for critic in ("critic", "critic_target"):
            plain, known = (getattr(model, critic)(obs, actions) for model in models)
            assert len(plain) == len(known) == models[0].policy.critic.n_critics
            for q_plain, q_known in zip(plain, known):
                th.testing.assert_close(q_known, q_plain - cost * norms)
        if algo is not MFSAC:  # the deterministic actors' objective
            th.testing.assert_close(
                models[1].critic.q1_forward(obs, actions), models[0].critic.q1_forward(obs, actions) - cost * norms
            )


def test_action_cost_gradient_is_the_cone_subgradient():
    """``d(-c ||a||)/da = -c a / ||a||`` away from 0 and 0 at rest (the subgradient that lets an action stay at 0)."""
    env, cost = walled_crowd_env(action_cost=0.15), 0.3  # l1 a_max = 0.15 * 2
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.tensor([[0.3, -0.4]] * 4 + [[0.0, 0.0]] * 4)
    gradients = []
    for c in (0.0, cost):
        model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs={"action_cost": c})
        leaf = actions.clone().requires_grad_(True)
        gradients.append(th.autograd.grad(model.critic(obs, leaf)[0].sum(), leaf)[0])
    expected = th.tensor([[-0.6, 0.8]] * 4 + [[0.0, 0.0]] * 4) * cost
    th.testing.assert_close(gradients[1] - gradients[0], expected)


@pytest.mark.parametrize("algo", [MFTD3, MFSAC])
def test_action_cost_survives_save_and_load(algo, tmp_path):
    model = algo("MeanFieldPolicy", walled_crowd_env(), policy_kwargs={"action_cost": 0.2})
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip")
    assert loaded.critic.action_cost == loaded.critic_target.action_cost == 0.2


@pytest.mark.parametrize("cost", [-0.2, float("nan"), "high"])
def test_bad_action_cost(cost):
    with pytest.raises(ValueError, match="action_cost"):
        MFSAC("MeanFieldPolicy", walled_crowd_env(), policy_kwargs={"action_cost": cost})


def test_action_cost_must_be_the_rewards_own():
    """On a population vec env the cost must be the learning population's ``effort_rate`` (``l1 a_max``)."""
    crowd = PopulationVecEnv.from_id("MFGCrowd-v0", 40, 4, action_cost=0.15, action_bound=3.0)
    assert crowd.population.model.effort_rate == pytest.approx(0.45)
    assert MFDDPG("MeanFieldPolicy", crowd, policy_kwargs={"action_cost": 0.45}).critic.action_cost == 0.45
    with pytest.raises(ValueError, match=r"action_cost must be 0 or 0.45.*got 0.2"):
        MFDDPG("MeanFieldPolicy", crowd, policy_kwargs={"action_cost": 0.2})
    crowd_lq = PopulationVecEnv.from_id("MFGCrowdLQ-v0", 40, 4)
    with pytest.raises(ValueError, match="action_cost must be 0: its reward has no effort cost"):
        MFTD3("MeanFieldPolicy", crowd_lq, policy_kwargs={"action_cost": 0.2})
    assert MFTD3("MeanFieldPolicy", crowd_lq).critic.action_cost == 0.0
    cheaper = PopulationVecEnv.from_id("MFGCrowd-v0", 40, 4, action_cost=0.1, action_bound=3.0)
    with pytest.raises(ValueError, match=r"action_cost must be 0 or 0.3.*got 0.45"):  # moved to another reward
        MFTD3("MeanFieldPolicy", crowd, policy_kwargs={"action_cost": 0.45}).set_env(cheaper)


def post_decision_kwargs(**changes):
    """The walled crowds' post-decision critic keywords (a new dict each time: SB3's SAC writes into its keywords)."""
    return {"post_decision": True, "action_encoder_arch": [], "action_cost": 0.2, **changes}


@pytest.mark.parametrize("algo", ALGOS)
def test_post_decision_critics_read_the_action_only_through_the_post_decision_state(algo):
    """With ``post_decision`` every critic, its target and the actor's objective are ``-||s - s_goal|| - c ||a||``
    plus a function of ``w = s + B a``: pairs ``(s, a)``, ``(s', a')`` with the same ``w`` and the same position differ
    by exactly the difference of the known terms; ``B`` and ``s_goal`` are the env's."""
    env = walled_crowd_env()
    model = algo("MeanFieldPolicy", env, seed=0, policy_kwargs=post_decision_kwargs())
    crowd = env.unwrapped.game.model.populations[0]
    matrix = th.as_tensor(crowd.post_decision_matrix, dtype=th.float32)
    for critic in (model.critic, model.critic_target):
        th.testing.assert_close(critic.post_decision_matrix, matrix)
        th.testing.assert_close(critic.goal_state, th.as_tensor(crowd.goal_state, dtype=th.float32))
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    actions = th.stack([th.linspace(-1.0, 1.0, 8), th.linspace(0.9, -0.3, 8)], dim=1)
    other = th.flip(actions, dims=[0])
    moved = {**obs, "state": obs["state"] + (actions - other) @ matrix.T}

    def known(observation, action):
        distance = th.linalg.vector_norm(observation["state"] - th.tensor([1.0, 0.0, 0.0, 0.0]), dim=1, keepdim=True)
        return -distance - 0.2 * th.linalg.vector_norm(action, dim=1, keepdim=True)

    with th.no_grad():
        for critic in (model.critic, model.critic_target):
            for q, q_moved in zip(critic(obs, actions), critic(moved, other)):
                th.testing.assert_close(q - known(obs, actions), q_moved - known(moved, other))
        if algo is not MFSAC:
            th.testing.assert_close(
                model.critic.q1_forward(obs, actions) - known(obs, actions),
                model.critic.q1_forward(moved, other) - known(moved, other),
            )
            th.testing.assert_close(model.critic.q1_forward(obs, actions), model.critic(obs, actions)[0])


def test_post_decision_actor_gradient_passes_through_the_critic_extractor():
    """The actor's objective reaches the action through the post-decision features: its gradient is the one of
    ``Q_1`` itself (autograd through the whole critic), not zero."""
    env = walled_crowd_env()
    model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs=post_decision_kwargs())
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    leaf = th.full((8, 2), 0.3, requires_grad=True)
    through_objective = th.autograd.grad(model.critic.q1_forward(obs, leaf).sum(), leaf)[0]
    through_q1 = th.autograd.grad(model.critic(obs, leaf)[0].sum(), leaf)[0]
    th.testing.assert_close(through_objective, through_q1)
    cost_only = -0.2 * leaf.detach() / th.linalg.vector_norm(leaf.detach(), dim=1, keepdim=True)
    assert (through_objective - cost_only).abs().max() > 1e-4  # the network's slope along the velocity


def test_post_decision_actor_objective_leaves_no_gradient_on_the_critic():
    """The actor's objective takes the critic's weights, its extractor's included, as constants: its backward pass
    leaves no gradient on them, and the extractor's weights train again in the critic's own loss."""
    env = walled_crowd_env()
    model = MFTD3("MeanFieldPolicy", env, seed=0, policy_kwargs=post_decision_kwargs())
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    model.critic.q1_forward(obs, model.actor(obs)).mean().backward()
    assert all(parameter.grad is None for parameter in model.critic.parameters())
    assert all(parameter.requires_grad for parameter in model.critic.parameters())
    model.critic(obs, th.zeros(8, 2))[0].mean().backward()
    assert all(parameter.grad is not None for parameter in model.critic.features_extractor.parameters())


@pytest.mark.parametrize("algo", [MFTD3, MFSAC])
def test_post_decision_survives_save_and_load(algo, tmp_path):
    """The saved critics keep the env's ``B`` and goal: here the blue crowd's goal ``(-1, 0)`` of the two crowds."""
    two_crowds = gym.make("MFGCrowdMulti-v0", n_particles=40, population_representation="moments")
    blue = PopulationVecEnv(two_crowds, "blue", 4)
    model = algo("MeanFieldPolicy", blue, policy_kwargs=post_decision_kwargs())
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip")
    for critic in (loaded.critic, loaded.critic_target):
        assert critic.post_decision
        th.testing.assert_close(critic.goal_state, th.tensor([-1.0, 0.0, 0.0, 0.0]))
        th.testing.assert_close(critic.post_decision_matrix, model.critic.post_decision_matrix)


def test_post_decision_needs_the_envs_structure():
    crowd_lq = PopulationVecEnv.from_id("MFGCrowdLQ-v0", 40, 4)
    with pytest.raises(ValueError, match="post_decision=True needs an env"):
        MFTD3("MeanFieldPolicy", crowd_lq, policy_kwargs={"post_decision": True, "action_encoder_arch": []})
    env = walled_crowd_env()
    with pytest.raises(ValueError, match=r"action_encoder_arch must be \[\]"):
        MFTD3("MeanFieldPolicy", env, policy_kwargs={"post_decision": True})
    with pytest.raises(ValueError, match="share_features_extractor must be False"):
        MFTD3("MeanFieldPolicy", env, policy_kwargs=post_decision_kwargs(share_features_extractor=True))
    with pytest.raises(ValueError, match=r"post_decision=True needs action_cost=0.2, got 0.0"):
        MFTD3("MeanFieldPolicy", env, policy_kwargs=post_decision_kwargs(action_cost=0.0))
    with pytest.raises(ValueError, match="post_decision must be True or False"):
        MFSAC("MeanFieldPolicy", env, policy_kwargs=post_decision_kwargs(post_decision="yes"))
    policy = MeanFieldTD3Policy(env.observation_space, env.action_space, lambda _: 1e-3, **post_decision_kwargs())
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    with pytest.raises(RuntimeError, match="configure_post_decision"):
        policy.critic(obs, th.zeros(8, 2))
    with pytest.raises(ValueError, match="goal_state must be finite with shape"):
        policy.critic.configure_post_decision(np.zeros((4, 2)), np.zeros(3))


# --------------------------------------------------------------------------- critics scaled by the rewards left
def episode_batch(env: PopulationVecEnv) -> tuple[dict[str, th.Tensor], list[int]]:
    """One learner's observation at every step of an episode of ``env`` (actions 0), and the steps' numbers."""
    rows, obs = [], env.reset()
    for _ in range(env.population.model.n_steps):
        rows.append({key: value[:1] for key, value in obs.items()})
        obs, *_ = env.step(np.zeros((env.num_envs, 2), dtype=np.float32))
    batch = {key: th.as_tensor(np.concatenate([row[key] for row in rows])) for key in rows[0]}
    return batch, list(range(len(rows)))


def horizon_models(algo, gamma: float = 1.0, **kwargs):
    """Two models of one seed on a 10-step walled crowd, ``horizon_scaled`` off and on: the same networks."""
    env = PopulationVecEnv.from_id("MFGCrowd-v0", 40, 8, population_representation="moments", n_steps=10)
    models = [
        algo("MeanFieldPolicy", env, seed=0, gamma=gamma, policy_kwargs={"horizon_scaled": on, **kwargs})
        for on in (False, True)
    ]
    return env, models


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_horizon_scaled_critics_are_the_networks_times_the_rewards_left(algo, gamma):
    """``Q_i = k net_i - c ||a||`` for every critic, its target and the actor's objective, ``k`` the discounted count
    of rewards from the observation's step ``n`` to the env's horizon ``N = 10``, counted here from the episode."""
    env, (plain, scaled) = horizon_models(algo, gamma, action_cost=0.2)
    batch, steps = episode_batch(env)
    left = th.tensor([[sum(gamma**j for j in range(10 - n))] for n in steps], dtype=th.float32)
    actions = th.stack([th.linspace(-0.9, 0.9, 10), th.linspace(0.5, -0.5, 10)], dim=1)
    cost = 0.2 * th.linalg.vector_norm(actions, dim=1, keepdim=True)
    with th.no_grad():
        th.testing.assert_close(scaled.critic.rewards_left(batch), left)
        for name in ("critic", "critic_target"):
            for q_plain, q_scaled in zip(getattr(plain, name)(batch, actions), getattr(scaled, name)(batch, actions)):
                th.testing.assert_close(q_scaled, left * (q_plain + cost) - cost)
        if algo is not MFSAC:
            th.testing.assert_close(
                scaled.critic.q1_forward(batch, actions), left * (plain.critic.q1_forward(batch, actions) + cost) - cost
            )


@pytest.mark.parametrize("algo", [MFDDPG, MFSAC])
def test_horizon_scaled_fit_weighs_each_error_by_the_rewards_left(algo):
    """The critic's own fit (actions without gradient): the squared error of ``Q = k net`` against targets ``y``
    gives the networks the gradient of ``(k net - y)^2 / k``; an action that carries a gradient (an actor's
    objective, SAC's through the critics themselves) gets ``k`` times the network's slope."""
    env, (plain, scaled) = horizon_models(algo)
    batch, steps = episode_batch(env)
    left = th.tensor([[10.0 - n] for n in steps])
    actions, targets = th.full((10, 2), 0.3), -th.linspace(1.0, 20.0, 10)[:, None]
    per_step = sum(((left * q - targets) ** 2 / left).mean() for q in plain.critic(batch, actions))
    scaled_loss = sum(((q - targets) ** 2).mean() for q in scaled.critic(batch, actions))
    expected = th.autograd.grad(per_step, list(plain.critic.parameters()))
    for got, want in zip(th.autograd.grad(scaled_loss, list(scaled.critic.parameters())), expected):
        th.testing.assert_close(got, want)
    leaf = actions.clone().requires_grad_(True)
    slope = th.autograd.grad(scaled.critic(batch, leaf)[0].sum(), leaf)[0]
    plain_leaf = actions.clone().requires_grad_(True)
    th.testing.assert_close(slope, left * th.autograd.grad(plain.critic(batch, plain_leaf)[0].sum(), plain_leaf)[0])


def test_horizon_scaled_survives_save_and_load(tmp_path):
    _, (_, model) = horizon_models(MFTD3, gamma=0.95)
    model.save(tmp_path / "model.zip")
    loaded = MFTD3.load(tmp_path / "model.zip")
    for critic in (loaded.critic, loaded.critic_target):
        assert critic.horizon_scaled
        assert (critic.horizon_steps.item(), critic.horizon_discount.item()) == pytest.approx((10.0, 0.95))


def test_horizon_scaled_needs_a_horizon():
    env = walled_crowd_env()
    with pytest.raises(ValueError, match="horizon_scaled must be True or False"):
        MFTD3("MeanFieldPolicy", env, policy_kwargs={"horizon_scaled": "yes"})
    policy = MeanFieldTD3Policy(env.observation_space, env.action_space, lambda _: 1e-3, horizon_scaled=True)
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    with pytest.raises(RuntimeError, match="configure_horizon"):
        policy.critic(obs, th.zeros(8, 2))
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 1, got 0"):
        policy.critic.configure_horizon(0, 1.0)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        policy.critic.configure_horizon(10, 1.5)
    flat = spaces.Dict({"state": spaces.Box(-1, 1, (2,)), "population": spaces.Box(0, 1, (3,))})
    with pytest.raises(ValueError, match="horizon_scaled needs a Dict observation with a 'time' entry"):
        MeanFieldCritic(flat, env.action_space, [8], nn.Identity(), 5, horizon_scaled=True)
    with pytest.raises(ValueError, match="horizon_scaled=True needs an env of mfg_envs"):
        MFTD3("MeanFieldPolicy", ForeignEnv(), policy_kwargs={"horizon_scaled": True})


class ForeignEnv(gym.Env):
    """An env with the mean field observation that is not one of this package's: no population, no known horizon."""

    observation_space = spaces.Dict(
        {"state": spaces.Box(-1, 1, (2,)), "population": spaces.Box(0, 1, (3,)), "time": spaces.Box(0, 1, (1,))}
    )
    action_space = spaces.Box(-1, 1, (2,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_gives_identical_actions(trained, algo, tmp_path):
    model = trained[algo][0]
    obs = observation_batch(make_env(), seed=3)
    expected = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", env=make_env())
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    policy_class = type(model.policy)
    model.policy.save(tmp_path / "policy.pth")
    policy = policy_class.load(tmp_path / "policy.pth")
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], expected)
    assert linear_widths(policy.critic.features_extractor.state_encoder) == [256]


# --------------------------------------------------------------------------- the population reaches the actions
@pytest.mark.parametrize("algo", ALGOS)
def test_trained_actor_reads_the_population(trained, algo):
    model, initial_actor = trained[algo]
    obs, swapped = population_swap()
    action = model.predict(obs, deterministic=True)[0]
    assert np.abs(model.predict(swapped, deterministic=True)[0] - action).max() > 1e-3
    # with a zero (unread) population input the first-layer weights would get zero gradients and keep their values
    key = "features_extractor.population_encoder.0.weight"
    assert not th.equal(model.actor.state_dict()[key], initial_actor[key])


def crowd_env():
    from mfg_envs.crowd_lq import CrowdLQEnv

    return CrowdLQEnv(n_particles=50, n_steps=10, n_bins=8)


@pytest.mark.parametrize(
    ("encoder", "env_fn", "extra"),
    [
        ("mlp", make_env, {}),
        ("deepsets", make_env, {}),
        ("cnn", crowd_env, {}),
        ("deepsets", crowd_env, {"histogram_dims": 2}),
        ("mlp", lambda: make_env(population_representation="moments"), {}),
    ],
)
def test_actions_have_a_population_gradient(encoder, env_fn, extra):
    env = env_fn()
    policy = MeanFieldTD3Policy(
        env.observation_space,
        env.action_space,
        lambda _: 1e-3,
        features_extractor_kwargs={"population_encoder": encoder, **extra},
    )
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    obs["population"].requires_grad_(True)
    actions = policy.actor(obs)
    (action_grad,) = th.autograd.grad(actions.sum(), obs["population"])
    assert action_grad.abs().sum() > 0
    for q_value in policy.critic(obs, actions.detach()):
        (critic_grad,) = th.autograd.grad(q_value.sum(), obs["population"], retain_graph=True)
        assert critic_grad.abs().sum() > 0


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("coupling", ["concat", "affine"])
def test_no_population_encoder_removes_the_population_input(algo, coupling):
    """``population_encoder="none"``: actor and critics are functions of time, own state (and action) only; the
    rest of the networks is unchanged."""
    shared = {"population_encoder": "none", "state_arch": [8], "population_arch": [8], "state_coupling": coupling}
    model = algo("MeanFieldPolicy", make_env(), policy_kwargs={"features_extractor_kwargs": shared}, seed=0)
    with_population = algo(
        "MeanFieldPolicy",
        make_env(),
        policy_kwargs={"features_extractor_kwargs": {**shared, "population_encoder": "mlp"}},
        seed=0,
    )
    extractor = model.actor.features_extractor
    assert extractor.population_encoder is None
    assert extractor.features_dim == (8 * 2 if coupling == "affine" else 8)  # (f_t, [s, 1]) or f_s(s, t)
    assert with_population.actor.features_extractor.features_dim == (16 * 2 if coupling == "affine" else 16)
    obs, swapped = population_swap()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], model.predict(swapped, deterministic=True)[0]
    )
    batch = {key: th.as_tensor(value) for key, value in observation_batch(make_env()).items()}
    other = dict(batch, population=th.rand_like(batch["population"]))
    actions = model.actor(batch).detach()
    with th.no_grad():
        for critic in (model.critic, model.critic_target):
            for q_value, q_other in zip(critic(batch, actions), critic(other, actions)):
                th.testing.assert_close(q_value, q_other)
    assert not any("population_encoder" in name for name, _ in model.policy.named_parameters())
    assert model.learn(100).num_timesteps == 100


# --------------------------------------------------------------------------- encoders
def test_histogram_enters_as_density_moments_unscaled():
    assert MeanFieldExtractor(make_env().observation_space).population_scale == 40.0
    moments = make_env(population_representation="moments").observation_space
    assert MeanFieldExtractor(moments).population_scale == 1.0


def test_cnn_encoder_reads_the_grid():
    extractor = MeanFieldExtractor(crowd_env().observation_space, population_encoder="cnn", population_arch=[32])
    assert extractor.population_encoder.side == 8
    assert extractor.features_dim == 128 + 32
    with pytest.raises(ValueError, match="k must be n\\*\\*2, got k=40"):
        MeanFieldExtractor(make_env().observation_space, population_encoder="cnn")
    with pytest.raises(ValueError, match="cnn_channels"):
        MeanFieldExtractor(crowd_env().observation_space, population_encoder="cnn", cnn_channels=[])
    model = MFTD3(
        "MeanFieldPolicy",
        crowd_env(),
        learning_starts=50,
        seed=0,
        policy_kwargs={"features_extractor_kwargs": {"population_encoder": "cnn"}},
    )
    assert model.learn(100).num_timesteps == 100


def test_deepsets_is_invariant_to_the_order_of_bins():
    env = crowd_env()
    th.manual_seed(0)
    extractor = MeanFieldExtractor(env.observation_space, population_encoder="deepsets", histogram_dims=2)
    obs = {key: th.as_tensor(value) for key, value in observation_batch(env).items()}
    obs["population"] = th.distributions.Dirichlet(th.ones(64)).sample((8,))
    permutation = th.randperm(64)
    with th.no_grad():
        features = extractor(obs)
        encoder = extractor.population_encoder
        encoder.centres = encoder.centres[permutation]
        permuted = extractor(dict(obs, population=obs["population"][:, permutation]))
        values_only = extractor(obs)
    th.testing.assert_close(permuted, features)
    assert (values_only - features).abs().max() > 1e-4  # where the mass sits matters


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"population_encoder": "rnn"}, "population_encoder"),
        ({"state_arch": [64, 0]}, "state_arch\\[1\\]"),
        ({"population_arch": "64"}, "population_arch"),
        ({"population_encoder": "deepsets", "histogram_dims": 0}, "histogram_dims"),
        ({"population_scale": -1.0}, "population_scale"),
        ({"state_indices": [1]}, "state_indices"),
        ({"state_indices": []}, "state_indices"),
        ({"state_indices": [-1]}, "state_indices\\[0\\]"),
    ],
)
def test_bad_extractor_keywords(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MeanFieldExtractor(make_env().observation_space, **kwargs)


@pytest.mark.parametrize("coupling", ["concat", "affine"])
def test_state_indices_hide_the_other_state_entries(coupling):
    """An extractor reading inventory and signal only (the price configs) ignores the firm's cash entirely."""
    space = gym.make("MFGPrice-v0").observation_space
    extractor = MeanFieldExtractor(
        space, state_arch=[8], population_arch=[8], state_coupling=coupling, state_indices=[0, 2]
    )
    obs = {
        key: th.as_tensor(np.stack([space[key].sample() for _ in range(5)])) for key in ("state", "population", "time")
    }
    obs["state"] = obs["state"].clamp(-3.0, 3.0)
    with th.no_grad():
        features = extractor(obs)
        other_cash = extractor(dict(obs, state=obs["state"] + th.tensor([0.0, 7.0, 0.0])))
        other_inventory = extractor(dict(obs, state=obs["state"] + th.tensor([0.5, 0.0, 0.0])))
    th.testing.assert_close(other_cash, features)
    assert (other_inventory - features).abs().max() > 1e-4
    assert extractor.features_dim == {"concat": 8 + 8, "affine": (8 + 8) * (2 + 1)}[coupling]  # two state entries


@pytest.mark.parametrize(
    ("representation", "kwargs", "message"),
    [
        ("histogram", {"population_offsets": [0, 1]}, "moments observation .* histogram of 400"),
        ("moments", {"population_offsets": [0, 4]}, "population_offsets"),
        ("moments", {"population_offsets": [1, 1]}, "population_offsets"),
        ("moments", {"population_offsets": [-1]}, "population_offsets\\[0\\]"),
        ("moments", {"population_offsets": [0, 1], "state_coupling": "affine"}, "state_coupling"),
    ],
)
def test_bad_population_offsets(representation, kwargs, message):
    space = gym.make("MFGCrowd-v0", population_representation=representation).observation_space
    with pytest.raises(ValueError, match=message):
        MeanFieldExtractor(space, **kwargs)


@pytest.mark.parametrize("env_id", ["MFGCrowd-v0", "MFGCrowdMulti-v0"])
def test_population_offsets_standardize_the_positions_against_each_population(env_id):
    """Over the whole population the offsets from its own moments have mean 0 and std 1 per axis (the moments are
    those of the same particles); with two populations each block is measured against its own crowd."""
    env = gym.make(env_id, n_particles=500, population_representation="moments")
    env.reset(seed=3)
    for _ in range(5):
        env.step(env.action_space.sample())
    game = game_of(env)
    n_populations = len(game.members)
    extractor = MeanFieldExtractor(env.observation_space, state_arch=[], population_arch=[4], population_offsets=[0, 1])
    for k in range(n_populations):
        obs = {key: th.as_tensor(np.array(value)) for key, value in game.observation(k).items()}
        with th.no_grad():
            offsets = extractor(obs)[:, 5 : 5 + 2 * n_populations].reshape(-1, n_populations, 2)
        own = offsets[:, k].double()
        th.testing.assert_close(own.mean(0), th.zeros(2, dtype=th.float64), atol=1e-5, rtol=0)
        th.testing.assert_close(own.std(0, unbiased=False), th.ones(2, dtype=th.float64), atol=1e-4, rtol=0)
        positions = obs["state"][:, :2].double()
        for j in range(n_populations):  # every block is (p - mean_j) / std_j of population j's particles
            others = th.as_tensor(game.members[j].states[:, :2])
            expected = (positions - others.mean(0)) / others.std(0, unbiased=False)
            th.testing.assert_close(offsets[:, j].double(), expected, atol=1e-3, rtol=1e-4)


def test_extractor_needs_the_mean_field_observation():
    with pytest.raises(ValueError, match="observation_space"):
        MeanFieldExtractor(spaces.Box(-1, 1, (3,)))
    with pytest.raises(ValueError, match="observation_space"):
        MeanFieldExtractor(spaces.Dict({"state": spaces.Box(-1, 1, (2,)), "time": spaces.Box(0, 1, (1,))}))


# --------------------------------------------------------------------------- exploration noise
@pytest.mark.parametrize(
    ("schedule", "midpoint"),
    [("linear", 0.5 * (0.1 + 0.01)), ("exponential", np.sqrt(0.1 * 0.01))],
)
def test_noise_schedule(schedule, midpoint):
    noise = DecayingGaussianActionNoise(np.zeros(2), 0.1, 0.01, decay_steps=10, schedule=schedule)
    sigmas = []
    for _ in range(21):
        sigmas.append(noise.sigma[0])
        noise()
    np.testing.assert_allclose(sigmas[0], 0.1)
    np.testing.assert_allclose(sigmas[5], midpoint)
    np.testing.assert_allclose(sigmas[10:], 0.01)
    assert np.all(np.diff(sigmas) <= 0)
    noise.reset()  # end of an episode: the schedule keeps going
    np.testing.assert_allclose(noise.sigma, 0.01)


def test_noise_draws_have_the_scheduled_scale():
    np.random.seed(0)
    noise = DecayingGaussianActionNoise(np.full(3, 0.5), sigma=0.3, final_sigma=0.3, decay_steps=1)
    draws = np.stack([noise() for _ in range(4000)])
    assert draws.dtype == np.float32
    np.testing.assert_allclose(draws.mean(axis=0), 0.5, atol=0.03)
    np.testing.assert_allclose(draws.std(axis=0), 0.3, rtol=0.05)


def test_vectorized_noise_is_used_as_is_by_sb3():
    base = DecayingGaussianActionNoise(np.zeros(1), 0.1, 0.0, decay_steps=100)
    noise = VectorizedDecayingGaussianActionNoise(base, n_envs=2)
    vec_env = make_vec_env(make_env, n_envs=2, seed=0)
    model = MFTD3("MeanFieldPolicy", vec_env, learning_starts=50, action_noise=noise, seed=0).learn(100)
    assert model.action_noise is noise
    assert noise.batched_noise.n_calls == 50  # one call per vectorized step
    assert noise().shape == (2, 1)
    np.testing.assert_allclose(noise.batched_noise.sigma, 0.1 * (1 - 51 / 100))
    assert base.n_calls == 0


def test_make_action_noise_defaults():
    ou = make_action_noise("ornstein-uhlenbeck", 2)
    assert isinstance(ou, OrnsteinUhlenbeckActionNoise)
    assert ou._theta == 0.15
    np.testing.assert_allclose(ou._sigma, 0.2)
    normal = make_action_noise("normal", 2)
    assert isinstance(normal, NormalActionNoise)
    np.testing.assert_allclose(normal._sigma, 0.1)
    decaying = make_action_noise("decaying-normal", 2, decay_steps=50)
    np.testing.assert_allclose(decaying.sigma, 0.1)
    assert isinstance(make_action_noise("normal", 2, n_envs=3), VectorizedActionNoise)
    assert make_action_noise("decaying-normal", 2, n_envs=3)().shape == (3, 2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sigma": -0.1}, "sigma"),
        ({"final_sigma": np.nan}, "final_sigma"),
        ({"decay_steps": 0}, "decay_steps"),
        ({"schedule": "cosine"}, "schedule"),
        ({"final_sigma": 0.0, "schedule": "exponential"}, "final_sigma"),
        ({"sigma": np.ones(3)}, "sigma"),
    ],
)
def test_bad_noise_keywords(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DecayingGaussianActionNoise(np.zeros(2), **kwargs)
    with pytest.raises(ValueError, match="noise_type"):
        make_action_noise("uniform", 2)
