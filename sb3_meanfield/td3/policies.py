"""Mean field actor-critic policies for TD3 and DDPG (docs/design.md, "Network architecture").

The actor is SB3's TD3 ``Actor`` on :class:`~sb3_meanfield.common.encoders.MeanFieldExtractor`
features: ``mu(s, m) = tanh(W_2 relu(W_1 [f_s(s, t), f_m(m)]))`` with ``f_s`` 256-128,
``f_m`` 128-64 and an action head of 128 units. The critic, :class:`~sb3_meanfield.td3.critics.MeanFieldCritic`,
also encodes the action: ``Q_i(s, a, m) = h_i([f_s(s, t), g_i(a), f_m(m)])`` with ``f_s`` 256, ``g_i`` 64,
``f_m`` 128 and the head ``h_i`` 256-128-1.

``action_barrier = lambda > 0`` (TD3/DDPG) makes the actor's objective
``Q_1(s, mu, m) + lambda sum_j log(1 - mu_j^2)``. With ``mu = tanh(z)`` the barrier's gradient in the
pre-activation is ``-2 lambda tanh(z)``: a pull back from the action bound that, unlike the gradient of
``Q_1`` (damped by ``1 - tanh(z)^2``), does not vanish once the actor saturates. SAC's objective has the same
term through the log-density of its squashed Gaussian. ``action_l2 = kappa > 0`` adds ``-kappa sum_j mu_j^2``: the
same pull toward 0 near 0 (the barrier is ``-lambda mu^2 + O(mu^4)`` there) without the barrier's ban of the bound.

Actor and critic have different default encoder sizes, so the policy builds their extractors from
their own keywords (``actor_extractor_kwargs`` / ``critic_extractor_kwargs``, on top of the role
defaults and the shared ``features_extractor_kwargs``) in :meth:`make_actor` / :meth:`make_critic`,
the two factories SB3's ``_build`` calls for the networks and their targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from mfg_envs.core import check_real
from sb3_meanfield.common.encoders import (
    ACTOR_EXTRACTOR_DEFAULTS,
    CRITIC_EXTRACTOR_DEFAULTS,
    MeanFieldExtractor,
    check_arch,
    role_extractor_kwargs,
)
from sb3_meanfield.td3.critics import DEFAULT_ACTION_ENCODER_ARCH, MeanFieldCritic

#: Hidden layers of the actor's action head and of the critic's Q head (docs/design.md, "Network architecture").
DEFAULT_NET_ARCH: dict[str, list[int]] = {"pi": [128], "qf": [256, 128]}


#: Optimizers that have a fused implementation (one kernel updates every parameter).
FUSED_OPTIMIZERS = (th.optim.Adam, th.optim.AdamW)


def fused_optimizer_kwargs(
    optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """``optimizer_kwargs`` (a copy) with ``fused=True`` for torch's Adam and AdamW unless they choose an
    implementation (``fused`` or ``foreach``): the same update in one kernel for all the parameters, where the default
    loops over them in Python (on the shipped small networks the loop cost more than the arithmetic)."""
    kwargs = dict(optimizer_kwargs or {})
    if optimizer_class in FUSED_OPTIMIZERS and not {"fused", "foreach"} & set(kwargs):
        kwargs["fused"] = True
    return kwargs


class MeanFieldNetworksMixin:
    """Builds the actor's and the critic's extractors with their own defaults, and the :class:`MeanFieldCritic`.

    Mixed into SB3's ``TD3Policy`` and ``SACPolicy`` (before them in the bases). The parent's
    ``__init__`` calls ``_build`` and thus :meth:`make_actor` / :meth:`make_critic`, so the
    subclass sets the attributes these read with :meth:`_set_mean_field_kwargs` before calling it.
    """

    observation_space: spaces.Space
    features_extractor_class: type[BaseFeaturesExtractor]
    features_extractor_kwargs: dict[str, Any]
    critic_kwargs: dict[str, Any]
    device: th.device
    actor: Any  # the host policy's actor (SB3's TD3 or SAC Actor)
    critic: MeanFieldCritic
    training: bool
    if TYPE_CHECKING:  # provided by the host policy (SB3's BaseModel)

        def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor: ...

        def _update_features_extractor(
            self, net_kwargs: dict[str, Any], features_extractor: BaseFeaturesExtractor | None = None
        ) -> dict[str, Any]: ...

    def _set_mean_field_kwargs(
        self,
        actor_extractor_kwargs: dict[str, Any] | None,
        critic_extractor_kwargs: dict[str, Any] | None,
        action_encoder_arch: list[int] | None,
        action_cost: float,
        post_decision: bool = False,
        horizon_scaled: bool = False,
    ) -> None:
        self.action_cost = check_real("action_cost", action_cost, 0.0)
        self.post_decision = post_decision
        self.horizon_scaled = horizon_scaled  # checked by the critic
        self.actor_extractor_kwargs = dict(actor_extractor_kwargs or {})
        self.critic_extractor_kwargs = dict(critic_extractor_kwargs or {})
        self.action_encoder_arch = check_arch(
            "action_encoder_arch", DEFAULT_ACTION_ENCODER_ARCH if action_encoder_arch is None else action_encoder_arch
        )

    def make_extractor(self, role: str) -> BaseFeaturesExtractor:
        """A new extractor for ``role`` (``"actor"`` or ``"critic"``) with that role's keywords."""
        role_defaults, role_kwargs = {
            "actor": (ACTOR_EXTRACTOR_DEFAULTS, self.actor_extractor_kwargs),
            "critic": (CRITIC_EXTRACTOR_DEFAULTS, self.critic_extractor_kwargs),
        }[role]
        kwargs = role_extractor_kwargs(
            self.features_extractor_class, role_defaults, self.features_extractor_kwargs, role_kwargs
        )
        return self.features_extractor_class(self.observation_space, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Any:
        """The parent's actor on ``features_extractor`` (shared) or on a new actor extractor."""
        if features_extractor is None:
            features_extractor = self.make_extractor("actor")
        return super().make_actor(features_extractor)  # type: ignore[misc]  # super() is the host TD3/SAC policy

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> MeanFieldCritic:
        """A :class:`MeanFieldCritic` on ``features_extractor`` (shared) or on a new critic extractor."""
        if features_extractor is None:
            features_extractor = self.make_extractor("critic")
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        critic_kwargs.update(action_encoder_arch=self.action_encoder_arch, **self.critic_keywords())
        return MeanFieldCritic(**critic_kwargs).to(self.device)

    def critic_keywords(self) -> dict[str, Any]:
        """Keywords of :class:`MeanFieldCritic` set by the policy's own (a subclass adds its own)."""
        return {
            "action_cost": self.action_cost,
            "post_decision": self.post_decision,
            "horizon_scaled": self.horizon_scaled,
        }

    def deterministic_head(self) -> list[Callable[[th.Tensor], th.Tensor]]:
        """The layers the actor applies to its features for its deterministic action, squashing included."""
        raise NotImplementedError

    def population_actions(self, state: th.Tensor, population: th.Tensor, time: th.Tensor) -> th.Tensor:
        """The deterministic actions ``mu(s^i, t, m)`` of ``M`` agents that share the population and the time.

        ``state`` ``(M, d_s)``, ``population`` ``(1, k)``, ``time`` ``(1, 1)``: with a :class:`MeanFieldExtractor`
        the context is computed once and folded into the actor's first layer
        (:meth:`MeanFieldExtractor.shared_linear`); the affine actor is then one affine map of each agent's state
        and the squashing. The same actions as ``_predict`` on the ``M`` full observations, up to float rounding.
        """
        first, *rest = self.deterministic_head()
        extractor = self.actor.features_extractor
        if not isinstance(extractor, MeanFieldExtractor) or not isinstance(first, nn.Linear):
            rows = state.shape[0]
            observations = {"state": state, "population": population.expand(rows, -1), "time": time.expand(rows, -1)}
            return self._predict(observations, deterministic=True)
        hidden = extractor.shared_linear(state, population, time, first)
        for layer in rest:
            hidden = layer(hidden)
        return hidden

    def set_training_mode(self, mode: bool) -> None:
        """SB3's switch of the actor's and the critic's ``training`` flags (recursively; the targets stay in eval
        mode), skipped when the policy, its actor and its critic already have ``mode``: SB3 switches before every
        rollout step and every ``train`` call, and walking the modules costs more than a small forward pass."""
        if not self.training == self.actor.training == self.critic.training == mode:
            super().set_training_mode(mode)  # type: ignore[misc]

    def obs_to_tensor(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[PyTorchObs, bool]:
        """SB3's conversion, copied into torch's own (64-byte aligned) memory.

        CPU matrix products round differently with the input's alignment, and SB3's tensors share numpy's memory
        (16-byte aligned, wherever the heap puts it): actions would depend on the heap layout, and a resumed run
        (:mod:`sb3_meanfield.common.checkpoint`) would drift from the uninterrupted one by float rounding.
        """
        tensors, vectorized = super().obs_to_tensor(observation)  # type: ignore[misc]
        if isinstance(tensors, dict):
            return {key: value.clone() for key, value in tensors.items()}, vectorized
        return tensors.clone(), vectorized

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]  # super() is the host TD3/SAC policy
        data.update(
            actor_extractor_kwargs=self.actor_extractor_kwargs,
            critic_extractor_kwargs=self.critic_extractor_kwargs,
            action_encoder_arch=self.action_encoder_arch,
            action_cost=self.action_cost,
            post_decision=self.post_decision,
            horizon_scaled=self.horizon_scaled,
        )
        return data


# make_critic returns a MeanFieldCritic: a drop-in for SB3's ContinuousCritic, not a subclass of it
class MeanFieldTD3Policy(MeanFieldNetworksMixin, TD3Policy):  # type: ignore[misc]
    """TD3/DDPG policy, actor ``mu(s, m)`` and critics ``Q_i(s, a, m)`` (docs/design.md, "Network architecture").

    Use it as ``MFTD3("MeanFieldPolicy", env)``, ``MFDDPG("MeanFieldPolicy", env)`` or
    ``TD3(MeanFieldTD3Policy, env)``. The defaults reproduce the design's networks; keywords:

    :param observation_space: ``Dict(state, population, time)``.
    :param action_space: the ``Box`` action space (normalized to ``[-1, 1]``).
    :param lr_schedule: learning rate schedule.
    :param net_arch: hidden widths after the extractors, ``{"pi": actor head, "qf": Q head}`` or a
        list for both (default ``{"pi": [128], "qf": [256, 128]}``).
    :param activation_fn: activation of the heads (the extractors take theirs from their keywords).
    :param features_extractor_class: extractor class (default :class:`MeanFieldExtractor`).
    :param features_extractor_kwargs: keywords for both extractors, e.g.
        ``{"population_encoder": "cnn"}``.
    :param actor_extractor_kwargs: keywords for the actor's extractor only (over the defaults
        ``state_arch=[256, 128], population_arch=[128, 64]`` and the shared keywords).
    :param critic_extractor_kwargs: keywords for the critic's extractor only (over the defaults
        ``state_arch=[256], population_arch=[128]`` and the shared keywords).
    :param action_encoder_arch: widths of the critic's action encoder (default ``[64]``).
    :param normalize_images: SB3's image preprocessing flag (no images here).
    :param optimizer_class: optimizer (default Adam).
    :param optimizer_kwargs: optimizer keywords besides the learning rate (Adam and AdamW default to their fused
        implementation, :func:`fused_optimizer_kwargs`).
    :param n_critics: number of critics.
    :param share_features_extractor: share the actor's extractor with the critic (SB3's semantics:
        the critic then uses the actor's encoder sizes and does not train it).
    :param action_barrier: weight ``lambda >= 0`` of the log barrier ``lambda sum_j log(1 - mu_j^2)`` added to
        the actor's objective (module docstring); 0 (default): plain TD3/DDPG.
    :param action_l2: weight ``kappa >= 0`` of the quadratic ``-kappa sum_j mu_j^2`` added to the actor's objective
        (module docstring); 0 (default): none.
    :param action_cost: rate ``c >= 0`` of the env reward's known effort cost ``-c ||a||``, added to the critics
        outside their networks (:class:`~sb3_meanfield.td3.critics.MeanFieldCritic`); 0 (default): none.
    :param post_decision: critics on the post-decision state instead of the action (``MeanFieldCritic``), for the
        walled crowds; False (default): critics of the state and the action.
    :param actor_objective: the critic value the actor ascends (``MeanFieldCritic``): ``"first"`` (default) ``Q_1``,
        as SB3's TD3 and DDPG; ``"mean"`` the mean of the ``n_critics`` critics.
    :param horizon_scaled: critics whose networks fit the value per reward left in the episode (``MeanFieldCritic``);
        False (default): the value itself.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = MeanFieldExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        actor_extractor_kwargs: dict[str, Any] | None = None,
        critic_extractor_kwargs: dict[str, Any] | None = None,
        action_encoder_arch: list[int] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        action_barrier: float = 0.0,
        action_l2: float = 0.0,
        action_cost: float = 0.0,
        post_decision: bool = False,
        actor_objective: str = "first",
        horizon_scaled: bool = False,
    ) -> None:
        # read by make_actor / make_critic, which TD3Policy.__init__ calls through _build
        self._set_mean_field_kwargs(
            actor_extractor_kwargs,
            critic_extractor_kwargs,
            action_encoder_arch,
            action_cost,
            post_decision,
            horizon_scaled,
        )
        self.action_barrier = check_real("action_barrier", action_barrier, 0.0)
        self.action_l2 = check_real("action_l2", action_l2, 0.0)
        self.actor_objective = actor_objective  # checked by the critic, which super().__init__ builds
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            DEFAULT_NET_ARCH if net_arch is None else net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            fused_optimizer_kwargs(optimizer_class, optimizer_kwargs),
            n_critics,
            share_features_extractor,
        )

    def critic_keywords(self) -> dict[str, Any]:
        return {
            **super().critic_keywords(),
            "action_barrier": self.action_barrier,
            "action_l2": self.action_l2,
            "actor_objective": self.actor_objective,
        }

    def deterministic_head(self) -> list[Callable[[th.Tensor], th.Tensor]]:
        return list(self.actor.mu)  # hidden layers, the action layer and tanh

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self.critic_keywords()}
