"""The fast paths give what the plain computation gives: the population's context computed once per call, the batched
twin critics, the replay sampling, the cached neutral gap, the crowds' vectorized rewards, the torch device."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer
from torch import nn

from mfg_envs.core import ConstantPolicy, cell_index
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_lq import CrowdLQModel
from mfg_envs.game import game_of
from mfg_envs.nash_gap import ExactBestResponse, crn_nash_gap, exact_nash_gap, neutral_gaps
from sb3_meanfield import ModelPolicy
from sb3_meanfield.common.replay import MeanFieldReplayBuffer
from sb3_meanfield.common.vec_env import PopulationVecEnv, shares_context
from sb3_meanfield.ddpg import MFDDPG
from sb3_meanfield.sac import MFSAC
from sb3_meanfield.td3 import MFTD3
from sb3_meanfield.td3.critics import StackedQNetworks

th.set_num_threads(1)

LQ = "MFGLinearQuadratic-v0"
#: The shipped affine actor (sb3_meanfield.hyperparams.POLICY_KWARGS) and variants of every extractor path.
ACTORS = {
    "affine": {
        "net_arch": {"pi": [], "qf": [8]},
        "activation_fn": nn.Tanh,
        "actor_extractor_kwargs": {"state_arch": [32], "population_arch": [32], "state_coupling": "affine"},
    },
    "affine-hidden-no-population": {
        "net_arch": {"pi": [16], "qf": [8]},
        "actor_extractor_kwargs": {"state_coupling": "affine", "population_encoder": "none"},
    },
    "concat-default": {},
    "concat-raw-state-deepsets": {
        "net_arch": {"pi": [16], "qf": [8]},
        "actor_extractor_kwargs": {"state_arch": [], "population_encoder": "deepsets"},
    },
}


def game_observation(env_id: str = LQ, n_particles: int = 200, steps: int = 3) -> dict[str, np.ndarray]:
    """The game's batched observation of every particle after a few random steps (population and time: broadcast
    views of one row)."""
    env = gym.make(env_id, n_particles=n_particles)
    env.reset(seed=0)
    for _ in range(steps):
        env.step(env.action_space.sample())
    return game_of(env).observation(0)


# --------------------------------------------------------------------------- the population's context once per call
@pytest.mark.parametrize("algo", [MFTD3, MFDDPG, MFSAC])
@pytest.mark.parametrize("actor", sorted(ACTORS))
def test_shared_context_gives_the_actions_of_the_full_batch(algo, actor):
    obs = game_observation()
    materialized = {key: np.array(value) for key, value in obs.items()}
    assert shares_context(obs) and not shares_context(materialized)
    model = algo("MeanFieldPolicy", gym.make(LQ, n_particles=200), policy_kwargs=ACTORS[actor], seed=1)
    with th.no_grad():
        actor_net = model.policy.actor
        full = {key: th.tensor(value) for key, value in materialized.items()}
        reference = actor_net(full) if algo is not MFSAC else actor_net(full, deterministic=True)
    shared = ModelPolicy(model)(obs)
    np.testing.assert_allclose(shared, reference.numpy(), atol=1e-6)
    assert np.ptp(shared) > 1e-3  # the actions depend on the state: the test compares something


def test_shared_context_with_gsde_clips_the_mean_as_sac_does():
    policy_kwargs = {**ACTORS["affine"], "clip_mean": 0.05}
    env = gym.make(LQ, n_particles=200)
    model = MFSAC("MeanFieldPolicy", env, policy_kwargs=policy_kwargs, use_sde=True, seed=1)
    with th.no_grad():  # a large mean, so that the clip binds
        model.policy.actor.mu[0].bias.fill_(1.0)
    obs = game_observation()
    materialized = {key: np.array(value) for key, value in obs.items()}
    np.testing.assert_allclose(ModelPolicy(model)(obs), ModelPolicy(model)(materialized), atol=1e-6)
    np.testing.assert_allclose(ModelPolicy(model)(obs), np.tanh(0.05), atol=1e-6)


def test_shared_context_on_a_crowd_with_a_cnn_encoder():
    env_id = "MFGCrowd-v0"
    obs = game_observation(env_id, 100)
    policy_kwargs = {"net_arch": {"pi": [8], "qf": [8]}, "features_extractor_kwargs": {"population_encoder": "cnn"}}
    model = MFTD3("MeanFieldPolicy", gym.make(env_id, n_particles=100), policy_kwargs=policy_kwargs, seed=0)
    materialized = {key: np.array(value) for key, value in obs.items()}
    np.testing.assert_allclose(ModelPolicy(model)(obs), ModelPolicy(model)(materialized), atol=1e-6)


@pytest.mark.parametrize("env_id", ["MFGCrowd-v0", "MFGCrowdMulti-v0"])
def test_shared_context_with_population_offsets(env_id):
    env = gym.make(env_id, n_particles=100, population_representation="moments")
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    obs = game_of(env).observation(0)
    policy_kwargs = {"net_arch": {"pi": [8], "qf": [8]}, "features_extractor_kwargs": {"population_offsets": [0, 1]}}
    model = MFTD3("MeanFieldPolicy", env, policy_kwargs=policy_kwargs, seed=0)
    materialized = {key: np.array(value) for key, value in obs.items()}
    shared = ModelPolicy(model)(obs)
    np.testing.assert_allclose(shared, ModelPolicy(model)(materialized), atol=1e-6)
    assert np.ptp(shared) > 1e-3


# --------------------------------------------------------------------------- cheaper evaluation
def test_neutral_gap_is_computed_once_per_game_and_a_changed_parameter_is_a_new_entry():
    env = gym.make(LQ, n_steps=10)
    policy = ConstantPolicy(np.full(1, 0.2))
    neutral_gaps.cache_clear()
    first = exact_nash_gap(policy, env, n_particles=300, n_replicates=2)
    again = exact_nash_gap(policy, env, n_particles=300, n_replicates=2)
    assert neutral_gaps.cache_info()[:2] == (1, 1) and again == first  # (hits, misses)
    uncached = crn_nash_gap(game_of(env), [policy], ExactBestResponse, "exact", 300, 0, True, 2)
    assert first.relative_gap == uncached.relative_gap
    changed = gym.make(LQ, n_steps=10, sigma=0.5)
    other = exact_nash_gap(policy, changed, n_particles=300, n_replicates=2)
    assert neutral_gaps.cache_info()[:2] == (1, 2)  # another parameter: computed anew, not read from the cache
    direct = crn_nash_gap(game_of(changed), [policy], ExactBestResponse, "exact", 300, 0, True, 2)
    assert other.relative_gap == direct.relative_gap != first.relative_gap
    exact_nash_gap(policy, env, n_particles=400, n_replicates=2)  # another N: another entry
    assert neutral_gaps.cache_info()[:2] == (1, 3)


def rows_summed(values: np.ndarray) -> np.ndarray:
    """The former reward code's row sums."""
    return values.sum(axis=1)


@pytest.mark.parametrize("model", [CrowdModel(), CrowdLQModel()], ids=["crowd", "crowd-lq"])
def test_crowd_rewards_equal_the_row_sum_formulas(model):
    rng = np.random.default_rng(0)
    states = np.concatenate([rng.uniform(-2, 2, (5000, 2)), rng.normal(0, 1, (5000, 2))], axis=1)
    actions = rng.uniform(-2, 2, (5000, 2))
    histogram = rng.dirichlet(np.ones(model.n_bins**2))
    mean_field = model.mean_field(states, actions, histogram)
    reward = model.reward(states, actions, mean_field, 0)
    if isinstance(model, CrowdModel):
        crowding = model.crowd_cost(mean_field)[cell_index(states[:, :2], model.histogram_bounds, model.n_bins)]
        distance = np.sqrt(rows_summed((states - np.array([*model.goal, 0.0, 0.0])) ** 2))
        expected = -distance - model.action_cost * np.sqrt(rows_summed(actions**2)) - crowding
    else:
        spread = mean_field["var"] + model.bandwidth**2
        log_density = -0.5 * np.log(2 * np.pi * spread) - (states[:, :2] - mean_field["mean"]) ** 2 / (2 * spread)
        cost = (
            0.5 * model.control_cost * rows_summed(actions**2)
            + 0.5 * model.goal_cost * rows_summed((states[:, :2] - model.goal) ** 2)
            + model.crowd_aversion * rows_summed(log_density)
        )
        expected = -model.dt * cost
        terminal = -0.5 * (
            model.terminal_goal_cost * rows_summed((states[:, :2] - model.goal) ** 2)
            + model.terminal_velocity_cost * rows_summed(states[:, 2:] ** 2)
        )
        np.testing.assert_allclose(model.terminal_reward(states, mean_field), terminal, rtol=1e-13)
    np.testing.assert_allclose(reward, expected, rtol=1e-13)


# --------------------------------------------------------------------------- the batched twin critics
def separate_critic(heads: StackedQNetworks, i: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Critic ``i`` of ``heads`` as the former separate network: its own ``nn.Linear`` layers with copies of its
    weights (action encoder ``g_i`` and head ``h_i``), the activation after every hidden layer."""

    def sequential(layers: nn.ModuleList, last_activated: bool) -> nn.Sequential:
        modules: list[nn.Module] = []
        for k, layer in enumerate(layers):
            linear = nn.Linear(layer.in_features, layer.out_features)
            with th.no_grad():
                linear.weight.copy_(layer.weight[i])
                linear.bias.copy_(layer.bias[i])
            modules.append(linear)
            if last_activated or k < len(layers) - 1:
                modules.append(nn.Tanh())
        return nn.Sequential(*modules)

    return sequential(heads.action_encoder, True), sequential(heads.q_head, False)


@pytest.mark.parametrize("n_critics", [1, 2, 3])
@pytest.mark.parametrize("encoder_arch", [[], [16, 8]])
def test_stacked_critics_are_the_separate_critics_outputs_and_gradients(n_critics, encoder_arch):
    th.manual_seed(0)
    heads = StackedQNetworks(n_critics, 12, 2, encoder_arch, [32, 16], nn.Tanh)
    features = th.randn(64, 12, requires_grad=True)
    actions = th.rand(64, 2, requires_grad=True) * 2 - 1
    targets = th.randn(64, 1)
    stacked = heads(features, actions)
    loss = sum(((q - targets) ** 2).mean() for q in stacked.unbind(0))
    stacked_grads = th.autograd.grad(loss, [features, actions, *heads.parameters()])
    separate = [separate_critic(heads, i) for i in range(n_critics)]
    outputs = [head(th.cat([features, encoder(actions)], dim=1)) for encoder, head in separate]
    weights = [p for encoder, head in separate for p in (*encoder.parameters(), *head.parameters())]
    grads = th.autograd.grad(sum(((q - targets) ** 2).mean() for q in outputs), [features, actions, *weights])
    assert stacked.shape == (n_critics, 64, 1)
    for q_stacked, q_separate in zip(stacked.unbind(0), outputs, strict=True):
        th.testing.assert_close(q_stacked, q_separate, rtol=0, atol=1e-6)
    th.testing.assert_close(stacked_grads[0], grads[0], rtol=0, atol=1e-6)  # inputs: summed over the critics
    th.testing.assert_close(stacked_grads[1], grads[1], rtol=0, atol=1e-6)
    # the stacked gradients, slice i, are critic i's own: per layer (weight, bias), critics one after the other
    layers = [*heads.action_encoder, *heads.q_head]
    per_critic = [grads[2 + 2 * len(layers) * i :][: 2 * len(layers)] for i in range(n_critics)]
    for k in range(len(layers)):
        for kind in range(2):
            th.testing.assert_close(
                stacked_grads[2 + 2 * k + kind], th.stack([own[2 * k + kind] for own in per_critic]), rtol=0, atol=1e-6
            )
    first = heads(features, actions, members=1)
    th.testing.assert_close(first[0], outputs[0], rtol=0, atol=1e-6)  # the actor's objective reads critic 1 only


def test_stacked_critics_start_from_the_draws_of_separate_networks():
    """Seeded, the stacked critics hold the initial weights the former separate critics drew, in their order."""
    th.manual_seed(3)
    heads = StackedQNetworks(2, 12, 2, [16], [32], nn.ReLU)
    th.manual_seed(3)
    separate = [(nn.Linear(2, 16), nn.Linear(28, 32), nn.Linear(32, 1)) for _ in range(2)]
    for i, layers in enumerate(separate):
        for stacked, linear in zip([*heads.action_encoder, *heads.q_head], layers, strict=True):
            assert th.equal(stacked.weight[i], linear.weight) and th.equal(stacked.bias[i], linear.bias)


def legacy_parameters(model: MFTD3) -> dict[str, dict]:
    """``model.get_parameters()`` in the former layout: one ``qf<i>`` module per critic (layers at even indices of
    an ``nn.Sequential``), its critic optimizer's state split the same way."""
    params = model.get_parameters()
    names = [name for name, _ in model.critic.named_parameters()]
    sources: list[tuple[str, str, int | None]] = []  # (legacy name, stacked name, critic), in the optimizer's order
    for name in names:
        if not name.startswith("q_networks."):
            sources.append((name, name, None))
            continue
        part, layer, kind = name.split(".")[1:]
        n_critics = params["policy"]["critic." + name].shape[0]
        sources += [(f"qf{i}.{part}.{2 * int(layer)}.{kind}", name, i) for i in range(n_critics)]
    policy = {key: value for key, value in params["policy"].items() if ".q_networks." not in key}
    for prefix in ("critic.", "critic_target."):
        for legacy, name, i in sources:
            value = params["policy"][prefix + name]
            policy[prefix + legacy] = value if i is None else value[i]
    optimizer = params["critic.optimizer"]
    state = {}
    for legacy_index, (_, name, i) in enumerate(sources):
        entry = optimizer["state"][names.index(name)]
        state[legacy_index] = {key: v if i is None or key == "step" else v[i] for key, v in entry.items()}
    group = {**optimizer["param_groups"][0], "params": list(range(len(sources)))}
    return {**params, "policy": policy, "critic.optimizer": {"state": state, "param_groups": [group]}}


def test_a_model_saved_with_one_module_per_critic_loads_into_the_stacked_critics():
    env = gym.make(LQ, n_particles=50, n_steps=10)
    model = MFTD3("MeanFieldPolicy", env, learning_starts=20, batch_size=16, seed=0).learn(60)
    legacy = legacy_parameters(model)
    assert any(key.startswith("critic.qf1.q_head.4.") for key in legacy["policy"])
    fresh = MFTD3("MeanFieldPolicy", env, seed=1)
    fresh.set_parameters(legacy)
    for (name, value), other in zip(model.policy.state_dict().items(), fresh.policy.state_dict().values()):
        assert th.equal(value, other), name
    saved, loaded = model.critic.optimizer.state_dict(), fresh.critic.optimizer.state_dict()
    for index, entry in saved["state"].items():
        for key, value in entry.items():
            assert th.equal(value, loaded["state"][index][key]), (index, key)
    obs = {key: th.tensor(value) for key, value in game_observation(n_particles=50).items()}
    actions = th.zeros(50, 1)
    for q_saved, q_loaded in zip(model.critic(obs, actions), fresh.critic(obs, actions), strict=True):
        assert th.equal(q_saved, q_loaded)


# --------------------------------------------------------------------------- optimizer, replay, training mode
@pytest.mark.parametrize("algo", [MFTD3, MFDDPG, MFSAC])
def test_adam_is_fused_unless_the_caller_chooses(algo):
    env = gym.make(LQ, n_particles=20)
    model = algo("MeanFieldPolicy", env, seed=0)
    assert all(group["fused"] for group in model.critic.optimizer.param_groups + model.actor.optimizer.param_groups)
    chosen = algo("MeanFieldPolicy", env, seed=0, policy_kwargs={"optimizer_kwargs": {"foreach": True}})
    assert [group["fused"] for group in chosen.critic.optimizer.param_groups] == [None]
    assert [group["foreach"] for group in chosen.critic.optimizer.param_groups] == [True]


def test_replay_samples_are_sb3_s_samples():
    env = PopulationVecEnv.from_id(LQ, n_particles=40, n_learners=8)
    model = MFTD3("MeanFieldPolicy", env, learning_starts=10**6, seed=0).learn(8 * 30)
    buffer = model.replay_buffer
    assert isinstance(buffer, MeanFieldReplayBuffer) and buffer.pos == 30
    batch_inds = np.random.default_rng(0).integers(0, buffer.pos, 64)
    np.random.seed(7)
    fast = buffer._get_samples(batch_inds)
    np.random.seed(7)  # the same draw of env indices
    reference = DictReplayBuffer._get_samples(buffer, batch_inds)
    for key in buffer.observations:
        assert th.equal(fast.observations[key], reference.observations[key])
        assert th.equal(fast.next_observations[key], reference.next_observations[key])
    for name in ("actions", "rewards", "dones"):
        assert th.equal(getattr(fast, name), getattr(reference, name)), name
    assert np.ptp(reference.rewards.numpy()) > 0  # distinct transitions were drawn


def test_training_mode_reaches_every_module_of_actor_and_critic_and_never_the_targets():
    policy = MFTD3("MeanFieldPolicy", gym.make(LQ, n_particles=20), seed=0).policy
    for mode in (True, True, False, False, True):
        policy.set_training_mode(mode)
        assert all(module.training == mode for module in (*policy.actor.modules(), *policy.critic.modules()))
        assert not any(module.training for module in (*policy.actor_target.modules(), *policy.critic_target.modules()))


def test_the_actor_objective_differentiates_in_the_action_only():
    """``q1_forward`` gives ``Q_1`` and its action gradient as the full critic does, and leaves no gradient on the
    critic's weights (SB3 clears it before the critic's next step: the same training)."""
    model = MFTD3("MeanFieldPolicy", gym.make(LQ, n_particles=50), seed=0)
    obs = {key: th.tensor(value) for key, value in game_observation(n_particles=50).items()}
    actions = th.linspace(-0.9, 0.9, 50).unsqueeze(1).requires_grad_()
    objective = model.critic.q1_forward(obs, actions)
    (gradient,) = th.autograd.grad(objective.sum(), actions)
    assert all(parameter.grad is None for parameter in model.critic.parameters())
    reference_actions = actions.detach().clone().requires_grad_()
    reference = model.critic(obs, reference_actions)[0]
    (reference_gradient,) = th.autograd.grad(reference.sum(), reference_actions)
    th.testing.assert_close(objective, reference, rtol=0, atol=1e-6)
    th.testing.assert_close(gradient, reference_gradient, rtol=0, atol=1e-6)
    assert reference_gradient.abs().max() > 0
