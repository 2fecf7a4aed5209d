"""The mean field critics: ``n`` independent action-encoding Q networks on one observation extractor, evaluated as
one batched network.

``Q_i(s, a, m) = h_i([phi(s, t, m), g_i(a)])``, ``i = 1..n`` (2 for TD3 and SAC, 1 for DDPG), with its own action
encoder ``g_i`` and head ``h_i`` per critic. Layer ``l`` of every critic is one :class:`StackedLinear` (weights
``(n, out, in)``): slice ``i`` is critic ``i``'s ``nn.Linear``, so the ``n`` critics stay independent networks (their
own weights, their own gradients) while one batched product evaluates them all; an input shared by every critic
(the features, the raw action) is multiplied by all their weights in one matrix product. The clipped double-Q
target ``y = r + gamma min_i Q_i'(s', a', m')`` sees the same ``n`` values as from ``n`` separate networks.

Models saved before the critics were stacked (one ``qf<i>`` module per critic) still load: :func:`stack_legacy_keys`
turns their parameters, and their optimizer's state (:func:`stack_legacy_optimizer_state`), into this layout.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from itertools import pairwise
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from mfg_envs.core import check_real
from sb3_meanfield.common.encoders import check_arch, output_dim

#: Hidden layers of the critic's action encoder ``g`` (docs/design.md, "Critic network").
DEFAULT_ACTION_ENCODER_ARCH: list[int] = [64]
#: The critic values a deterministic actor may ascend (:class:`MeanFieldCritic`'s ``actor_objective``).
ACTOR_OBJECTIVES = ("first", "mean")
#: A parameter of the former layout: ``qf<critic>.<action_encoder|q_head>.<index in its nn.Sequential>.<kind>``.
LEGACY_KEY = re.compile(r"qf(\d+)\.(action_encoder|q_head)\.(\d+)\.(weight|bias)$")


class StackedLinear(nn.Module):
    """``n`` independent affine maps ``y_i = W_i x_i + b_i`` evaluated as one batched product.

    ``weight`` is ``(n, out, in)`` and ``bias`` ``(n, out)``; slice ``i`` is initialized as ``nn.Linear(in, out)``
    initializes its own (:meth:`reset_member`).
    """

    def __init__(self, n: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(th.empty(n, out_features, in_features))
        self.bias = nn.Parameter(th.empty(n, out_features))

    def extra_repr(self) -> str:
        return f"n={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"

    def reset_member(self, i: int) -> None:
        """Draw map ``i``'s weight and bias as ``nn.Linear.reset_parameters`` does (the same draws, in order)."""
        with th.no_grad():
            nn.init.kaiming_uniform_(self.weight[i], a=math.sqrt(5))
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias[i], -bound, bound)

    def forward(self, inputs: th.Tensor, members: int, constant: bool = False) -> th.Tensor:
        """``(members, batch, out)``: the first ``members`` maps on ``inputs``, ``(batch, in)`` shared by every map
        (one matrix product with their stacked weights) or ``(members, batch, in)``, one slice per map.
        ``constant``: the weights enter as constants (gradients reach ``inputs`` only)."""
        weight: th.Tensor = self.weight.detach() if constant else self.weight
        bias: th.Tensor = self.bias.detach() if constant else self.bias
        if members < weight.shape[0]:  # a slice only when needed: its backward writes a zero-filled full gradient
            weight, bias = weight[:members], bias[:members]
        if inputs.dim() == 2:
            stacked = nn.functional.linear(inputs, weight.reshape(-1, self.in_features), bias.reshape(-1))
            return stacked.view(inputs.shape[0], members, self.out_features).transpose(0, 1)
        return th.baddbmm(bias.unsqueeze(1), inputs, weight.transpose(1, 2))


class StackedQNetworks(nn.Module):
    """The heads of ``n`` critics on precomputed features: ``Q_i(phi, a) = h_i([phi, g_i(a)])``, all at once.

    :param n_critics: ``n``.
    :param features_dim: width of ``phi(s, t, m)``.
    :param action_dim: ``d_a``.
    :param action_encoder_arch: widths of each ``g_i`` (empty: the raw action).
    :param net_arch: hidden widths of each ``h_i`` (its output is the scalar Q value).
    :param activation_fn: activation after every hidden layer.
    """

    def __init__(
        self,
        n_critics: int,
        features_dim: int,
        action_dim: int,
        action_encoder_arch: list[int],
        net_arch: list[int],
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        self.n_critics = n_critics
        encoder_widths = [action_dim, *action_encoder_arch]
        head_widths = [features_dim + output_dim(action_dim, action_encoder_arch), *net_arch, 1]
        self.action_encoder = nn.ModuleList(StackedLinear(n_critics, a, b) for a, b in pairwise(encoder_widths))
        self.q_head = nn.ModuleList(StackedLinear(n_critics, a, b) for a, b in pairwise(head_widths))
        self.activation = activation_fn()
        for i in range(n_critics):  # the draws of n separate networks built one after the other
            for layer in (*self.action_encoder, *self.q_head):
                layer.reset_member(i)

    def forward(
        self, features: th.Tensor, actions: th.Tensor, members: int | None = None, constant: bool = False
    ) -> th.Tensor:
        """``(members, batch, 1)``: ``Q_i(phi, a)`` of the first ``members`` critics (default: all); ``constant``: the
        critics' weights enter as constants, gradients reach the features and the actions only."""
        members = self.n_critics if members is None else members
        encoded = actions
        for layer in self.action_encoder:
            encoded = self.activation(layer(encoded, members, constant))
        if encoded.dim() == 2:  # the raw action: the head's input is shared by every critic
            hidden = th.cat([features, encoded], dim=1)
        else:
            hidden = th.cat([features.expand(members, -1, -1), encoded], dim=2)
        *hidden_layers, output = self.q_head
        for layer in hidden_layers:
            hidden = self.activation(layer(hidden, members, constant))
        return output(hidden, members, constant)


class MeanFieldCritic(BaseModel):
    """``n_critics`` action-encoding critics ``Q_i(s, a, m)`` on one shared observation extractor.

    A drop-in for SB3's ``ContinuousCritic`` (same ``forward`` / ``q1_forward`` and optimizer
    contract, so TD3, DDPG and SAC train it unchanged) that feeds the action through its own
    encoder ``g_i`` before the Q head instead of concatenating it raw. Each critic has its own
    ``g_i`` and ``h_i``, so the twin estimates of the clipped double-Q target
    ``y = r + gamma min_i Q_i'(s', a', m')`` stay independent; the features are extracted once for all of them and
    the heads run as one batched network (:class:`StackedQNetworks`).

    :param observation_space: the ``Dict`` observation space.
    :param action_space: the ``Box`` action space.
    :param net_arch: hidden widths of each Q head ``h_i``.
    :param features_extractor: extractor of ``phi(s, t, m)``.
    :param features_dim: its output width.
    :param activation_fn: activation after every hidden layer.
    :param normalize_images: passed to SB3's preprocessing (no images here).
    :param n_critics: number of critics (2 for TD3 and SAC, 1 for DDPG).
    :param share_features_extractor: whether the extractor is the actor's; it is then trained by the
        actor loss only and the critic sees its features without gradient.
    :param action_encoder_arch: widths of each action encoder ``g_i``.
    :param action_barrier: weight ``lambda >= 0`` of the log barrier that :meth:`q1_forward` (the actor's
        objective) adds to ``Q_1``.
    :param action_l2: weight ``kappa >= 0`` of the quadratic ``-kappa sum_j a_j^2`` that :meth:`q1_forward` adds
        to ``Q_1`` beside the barrier.
    :param action_cost: rate ``c >= 0`` of a known effort cost ``-c ||a||`` (Euclidean norm of the normalized
        action) in the env's reward, added to every critic outside its network: ``Q_i = net_i(s, a, m) - c ||a||``.
        The reward is paid for the action taken, so the decomposition is exact; the networks fit what is smooth in
        the action, the cost's kink at ``a = 0`` is exact (docs/tuning.md, "The known effort cost").
    :param post_decision: the critics read the post-decision state ``w = s + B a`` instead of the action, for
        dynamics in which the action moves the next state only through ``w`` and a reward whose state part is
        ``-||s - s_goal||``: ``Q_i = -||s - s_goal|| - c ||a|| + net_i(w, t, m)``, exact for such a model (the walled
        crowds: ``w`` is the state with the velocity ``v + dt u``). ``B`` and ``s_goal`` come from the env
        (:meth:`configure_post_decision`, called by the algorithms when they get their env); until then the
        critic refuses to evaluate. The action's effect on ``Q`` is then the value's own slope along the velocity,
        learned from every state the population visits, not only from the actions explored at each state
        (docs/tuning.md, "The post-decision critic").
    :param horizon_scaled: the networks fit the value per reward left in the episode: ``Q_i = k net_i(s, a, m) -
        c ||a||`` (a post-decision critic's network part likewise), ``k = sum_{j < N - n} gamma^j`` the rewards
        from step ``n = N t`` to the horizon ``N`` (``N - n`` undiscounted), so that a network's output has one
        size at every step and the small values and slopes of the last steps are not drowned by the first steps'
        large ones. The critic's own fit (actions that carry no gradient) trains the networks on the squared error
        over the rewards left, ``(Q - y)^2 / k = k (net - y / k)^2``: in the networks' units a step weighs ``k``
        where the plain squared error would weigh it ``k^2``. Wherever a gradient reaches the action (an actor's
        objective) ``Q`` is ``k net`` exactly. ``N`` and ``gamma`` come from the env and the algorithm
        (:meth:`configure_horizon`); until then the critic refuses to evaluate (docs/tuning.md, "A critic scaled
        by the rewards left").
    :param actor_objective: the critic value :meth:`q1_forward` gives the deterministic actor: ``"first"``
        (default; SB3's TD3 and DDPG) ``Q_1``, ``"mean"`` the mean ``(1 / n) sum_i Q_i`` of the ``n`` critics, whose
        independent fitting errors partly cancel in the actor's action gradient (docs/tuning.md, "MF-DDPG with two
        critics").
    """

    features_extractor: BaseFeaturesExtractor
    post_decision_matrix: th.Tensor  # buffers of a post_decision critic
    goal_state: th.Tensor
    horizon_steps: th.Tensor  # buffers of a horizon_scaled critic: N and gamma
    horizon_discount: th.Tensor
    #: Largest ``|a|`` the barrier is evaluated at (``log(1 - a^2)`` is finite there in float32).
    BARRIER_EDGE = 1.0 - 1e-6

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        action_encoder_arch: list[int] | None = None,
        action_barrier: float = 0.0,
        action_l2: float = 0.0,
        action_cost: float = 0.0,
        post_decision: bool = False,
        actor_objective: str = "first",
        horizon_scaled: bool = False,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        if actor_objective not in ACTOR_OBJECTIVES:
            raise ValueError(f"actor_objective must be one of {ACTOR_OBJECTIVES}, got {actor_objective!r}")
        self.actor_objective = actor_objective
        self.action_barrier = check_real("action_barrier", action_barrier, 0.0)
        self.action_l2 = check_real("action_l2", action_l2, 0.0)
        self.action_cost = check_real("action_cost", action_cost, 0.0)
        action_encoder_arch = check_arch(
            "action_encoder_arch", DEFAULT_ACTION_ENCODER_ARCH if action_encoder_arch is None else action_encoder_arch
        )
        if not isinstance(post_decision, bool):
            raise ValueError(f"post_decision must be True or False, got {post_decision!r}")
        self.share_features_extractor = share_features_extractor
        if post_decision and share_features_extractor:
            raise ValueError("post_decision needs the critic's own extractor: share_features_extractor must be False")
        if post_decision and action_encoder_arch:
            raise ValueError(
                f"post_decision critics take no action input: action_encoder_arch must be [], got {action_encoder_arch}"
            )
        if post_decision and not (isinstance(observation_space, spaces.Dict) and "state" in observation_space.spaces):
            raise ValueError(f"post_decision needs a Dict observation with a 'state' entry, got {observation_space}")
        self.post_decision = post_decision
        self.n_critics = n_critics
        action_dim = get_action_dim(self.action_space)
        self.q_networks = StackedQNetworks(
            n_critics, features_dim, 0 if post_decision else action_dim, action_encoder_arch, net_arch, activation_fn
        )
        if post_decision:  # NaN until configure_post_decision: an unconfigured critic must not train
            state_dim = get_flattened_obs_dim(cast(spaces.Dict, observation_space)["state"])
            self.register_buffer("post_decision_matrix", th.full((state_dim, action_dim), math.nan))
            self.register_buffer("goal_state", th.full((state_dim,), math.nan))
        if not isinstance(horizon_scaled, bool):
            raise ValueError(f"horizon_scaled must be True or False, got {horizon_scaled!r}")
        if horizon_scaled and not (isinstance(observation_space, spaces.Dict) and "time" in observation_space.spaces):
            raise ValueError(f"horizon_scaled needs a Dict observation with a 'time' entry, got {observation_space}")
        self.horizon_scaled = horizon_scaled
        if horizon_scaled:  # NaN until configure_horizon, as the post-decision map
            self.register_buffer("horizon_steps", th.tensor(math.nan))
            self.register_buffer("horizon_discount", th.tensor(math.nan))
        self.register_load_state_dict_pre_hook(stack_legacy_keys)

    def configure_post_decision(self, matrix: np.ndarray, goal_state: np.ndarray) -> None:
        """Set ``B`` (``(d_s, d_a)``: ``w = s + B a``) and ``s_goal`` (``(d_s,)``) of a ``post_decision`` critic."""
        for name, value in (("post_decision_matrix", matrix), ("goal_state", goal_state)):
            buffer = getattr(self, name)
            tensor = th.as_tensor(np.asarray(value), dtype=buffer.dtype)
            if tensor.shape != buffer.shape or not th.isfinite(tensor).all():
                raise ValueError(f"{name} must be finite with shape {tuple(buffer.shape)}, got {np.asarray(value)!r}")
            buffer.copy_(tensor)

    def configure_horizon(self, n_steps: int, gamma: float) -> None:
        """Set the horizon ``N`` (steps per episode) and the discount ``gamma`` of a ``horizon_scaled`` critic."""
        if not (isinstance(n_steps, int | np.integer) and n_steps >= 1):
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        self.horizon_steps.fill_(float(n_steps))
        self.horizon_discount.fill_(float(gamma))

    def rewards_left(self, obs: PyTorchObs) -> th.Tensor:
        """``k = sum_{j < N - n} gamma^j`` per row (``(batch, 1)``), ``n = N t`` the step of the time entry ``t``."""
        if self.horizon_steps.isnan():
            raise RuntimeError("a horizon_scaled critic needs configure_horizon (from its env) before use")
        time = cast(dict[str, th.Tensor], obs)["time"]
        left = (self.horizon_steps - th.round(time * self.horizon_steps)).clamp_min(0.0)
        gamma = self.horizon_discount
        if gamma == 1.0:
            return left
        return (1.0 - gamma**left) / (1.0 - gamma)

    def scale_to_horizon(self, values: th.Tensor, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """``k net`` of the networks' outputs ``values`` (``(members, batch, 1)``); in the critic's own fit (the
        actions carry no gradient) with the parameter gradient of ``net`` itself: the squared error ``(Q - y)^2``
        then trains the networks as ``(k net - y)^2 / k`` would."""
        if not self.horizon_scaled:
            return values
        left = self.rewards_left(obs)
        if actions.requires_grad or not th.is_grad_enabled():
            return left * values
        fixed = values.detach()
        return left * fixed + (values - fixed)

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """``(Q_1(s, a, m), ..., Q_n(s, a, m))``, each of shape ``(batch, 1)``."""
        if self.post_decision:
            features, known = self.post_decision_features(obs, actions)
            values = self.q_networks(features, actions[:, :0])
            return tuple((self.scale_to_horizon(values, obs, actions) + known).unbind(0))
        # a shared extractor learns from the actor loss only (SB3's convention)
        with th.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(obs, self.features_extractor)
        values = self.scale_to_horizon(self.q_networks(features, actions), obs, actions)
        return tuple((values - self.known_cost(actions)).unbind(0))

    def post_decision_features(
        self, obs: PyTorchObs, actions: th.Tensor, constant: bool = False
    ) -> tuple[th.Tensor, th.Tensor]:
        """The features of the post-decision observation (the state ``w = s + B a``) and the known part of ``Q``,
        ``-||s - s_goal|| - c ||a||`` (``(batch, 1)``). ``constant``: the extractor's weights enter as constants
        (gradients reach the observation and the action only)."""
        observations = cast(dict[str, th.Tensor], obs)
        state = observations["state"]
        if self.goal_state.isnan().any():
            raise RuntimeError("a post_decision critic needs configure_post_decision (from its env) before use")
        post = {**observations, "state": state + actions @ self.post_decision_matrix.T}
        if constant:  # no weight gradients for SB3 to clear: the backward pass computes the action's only
            self.features_extractor.requires_grad_(False)
            try:
                features = self.extract_features(post, self.features_extractor)
            finally:
                self.features_extractor.requires_grad_(True)
        else:
            features = self.extract_features(post, self.features_extractor)
        distance = th.linalg.vector_norm(state - self.goal_state, dim=1, keepdim=True)
        return features, -distance - self.known_cost(actions)

    def known_cost(self, actions: th.Tensor) -> th.Tensor | float:
        """``c ||a||`` per row (``(batch, 1)``), or 0 without a known effort cost. Its gradient at ``a = 0`` is 0, the
        subgradient of the cone that keeps an action at rest."""
        if self.action_cost == 0.0:
            return 0.0
        return self.action_cost * th.linalg.vector_norm(actions, dim=1, keepdim=True)

    def q1_forward(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """The actor's objective ``Q(s, a, m) + sum_j (lambda log(1 - a_j^2) - kappa a_j^2)``, ``Q`` the first critic
        or the critics' mean (``actor_objective``) with its known effort cost (SB3's TD3 and DDPG minimize minus its
        mean, and call it for nothing else): its gradient reaches the actions only. The critic's weights enter as
        constants, as SB3 clears the gradient the actor loss would leave on them before the critic's next step."""
        members = self.n_critics if self.actor_objective == "mean" else 1
        if self.post_decision:  # the action reaches Q through the features: the extractor enters the gradient
            features, known = self.post_decision_features(obs, actions, constant=True)
            values = self.q_networks(features, actions[:, :0], members=members, constant=True)
            q_value = self.scale_to_horizon(values.mean(0, keepdim=True), obs, actions)[0] + known
        else:
            with th.no_grad():
                features = self.extract_features(obs, self.features_extractor)
            values = self.q_networks(features, actions, members=members, constant=True)
            q_value = self.scale_to_horizon(values.mean(0, keepdim=True), obs, actions)[0] - self.known_cost(actions)
        if self.action_barrier != 0.0:
            inside = actions.clamp(-self.BARRIER_EDGE, self.BARRIER_EDGE)
            q_value = q_value + self.action_barrier * th.log1p(-inside.square()).sum(dim=1, keepdim=True)
        if self.action_l2 != 0.0:
            q_value = q_value - self.action_l2 * actions.square().sum(dim=1, keepdim=True)
        return q_value


def stacked_key(legacy: re.Match[str]) -> str:
    """The stacked parameter that holds the former per-critic parameter ``legacy`` (:data:`LEGACY_KEY`): layer ``l``
    of an ``nn.Sequential`` of linear layers and activations sat at index ``2 l``."""
    _, part, index, kind = legacy.groups()
    return f"q_networks.{part}.{int(index) // 2}.{kind}"


def current_name(name: str) -> str:
    """The critic parameter's name in this layout (a former per-critic name: its stacked parameter's)."""
    legacy = LEGACY_KEY.fullmatch(name)
    return name if legacy is None else stacked_key(legacy)


def stack_legacy_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook of :class:`MeanFieldCritic`: a state dict of the former layout (one ``qf<i>`` per
    critic) gets its per-critic parameters replaced, in place, by the stacked ones."""
    members: dict[str, dict[int, th.Tensor]] = defaultdict(dict)
    for key in [key for key in state_dict if key.startswith(prefix)]:
        legacy = LEGACY_KEY.fullmatch(key[len(prefix) :])
        if legacy is not None:
            members[prefix + stacked_key(legacy)][int(legacy.group(1))] = state_dict.pop(key)
    for key, tensors in members.items():
        state_dict[key] = th.stack([tensors[i] for i in sorted(tensors)])


def stack_legacy_optimizer_state(
    optimizer_state: dict[str, Any], legacy_names: list[str], names: list[str]
) -> dict[str, Any]:
    """A critic optimizer's state dict of the former layout (parameters ``legacy_names``, in the optimizer's order)
    for the stacked parameters ``names``: the per-parameter state of critic ``i`` becomes slice ``i`` of the
    stacked parameter's (tensors with a dimension stacked, scalars such as Adam's ``step`` taken from critic 0,
    as every critic stepped together); the extractor's state is kept as it is."""
    old_state, (group,) = optimizer_state["state"], optimizer_state["param_groups"]
    sources: dict[str, list[int]] = defaultdict(list)
    for index, name in zip(group["params"], legacy_names):
        sources[current_name(name)].append(index)
    stacked = {current_name(name) for name in legacy_names if LEGACY_KEY.fullmatch(name)}
    state = {}
    for new_index, name in enumerate(names):
        entries = [old_state[index] for index in sources[name] if index in old_state]
        if entries and name in stacked:
            state[new_index] = {
                key: th.stack([entry[key] for entry in entries]) if th.is_tensor(value) and value.dim() else value
                for key, value in entries[0].items()
            }
        elif entries:
            state[new_index] = entries[0]
    return {"state": state, "param_groups": [{**group, "params": list(range(len(names)))}]}


class LegacyCriticLoading:
    """Mixed into the mean field algorithms: ``load`` and ``set_parameters`` accept a model saved with one ``qf<i>``
    module per critic (the policy's parameters are stacked by :func:`stack_legacy_keys`, the critic optimizer's
    state here)."""

    policy: Any

    def set_parameters(
        self, load_path_or_dict: str | dict[str, Any], exact_match: bool = True, device: th.device | str = "auto"
    ) -> None:
        params: dict[str, Any]
        if isinstance(load_path_or_dict, dict):
            params = load_path_or_dict
        else:
            _, params, _ = load_from_zip_file(load_path_or_dict, device=device, load_data=False)
        saved_names = [key.removeprefix("critic.") for key in params.get("policy", {}) if key.startswith("critic.")]
        if "critic.optimizer" in params and any(LEGACY_KEY.fullmatch(name) for name in saved_names):
            critic = self.policy.critic
            names_by_id = {id(parameter): name for name, parameter in critic.named_parameters()}
            names = [names_by_id[id(parameter)] for parameter in critic.optimizer.param_groups[0]["params"]]
            legacy_names = [name for name in saved_names if current_name(name) in names]
            saved_state = cast("dict[str, Any]", params["critic.optimizer"])  # an optimizer's state dict
            optimizer = stack_legacy_optimizer_state(saved_state, legacy_names, names)
            params = {**params, "critic.optimizer": optimizer}
        super().set_parameters(params, exact_match, device)  # type: ignore[misc]  # the host SB3 algorithm's
