"""Mean field SAC policy: ``pi(a | s, m) = tanh(N(mu_theta(s, m), sigma_theta(s, m)))`` and ``Q_i(s, a, m)``.

The same encoders and critic as :class:`~sb3_meanfield.td3.MeanFieldTD3Policy` (docs/design.md, "Network architecture",
"SAC"): the actor is SB3's SAC ``Actor`` (a 128-unit layer, then the mean and log-std heads of the
squashed Gaussian) on the actor's :class:`~sb3_meanfield.common.encoders.MeanFieldExtractor`, the
twin soft critics are :class:`~sb3_meanfield.td3.policies.MeanFieldCritic`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from sb3_meanfield.common.encoders import MeanFieldExtractor
from sb3_meanfield.td3.policies import DEFAULT_NET_ARCH, MeanFieldNetworksMixin, fused_optimizer_kwargs


# make_critic returns a MeanFieldCritic: a drop-in for SB3's ContinuousCritic, not a subclass of it
class MeanFieldSACPolicy(MeanFieldNetworksMixin, SACPolicy):  # type: ignore[misc]
    """SAC policy with population encoders; ``MFSAC("MeanFieldPolicy", env)`` or ``SAC(MeanFieldSACPolicy, env)``.

    Keywords are SAC's (``use_sde``, ``log_std_init``, ``use_expln``, ``clip_mean``, ...) plus, as for
    :class:`~sb3_meanfield.td3.MeanFieldTD3Policy`:

    :param net_arch: hidden widths after the extractors (default ``{"pi": [128], "qf": [256, 128]}``).
    :param features_extractor_class: extractor class (default :class:`MeanFieldExtractor`).
    :param features_extractor_kwargs: keywords for both extractors.
    :param actor_extractor_kwargs: keywords for the actor's extractor only (defaults 256-128 / 128-64).
    :param critic_extractor_kwargs: keywords for the critic's extractor only (defaults 256 / 128).
    :param action_encoder_arch: widths of the critic's action encoder (default ``[64]``).
    :param optimizer_kwargs: optimizer keywords besides the learning rate (Adam and AdamW default to their fused
        implementation, :func:`~sb3_meanfield.td3.policies.fused_optimizer_kwargs`).
    :param action_cost: rate ``c >= 0`` of the env reward's known effort cost ``-c ||a||``, added to the soft critics
        outside their networks (:class:`~sb3_meanfield.td3.critics.MeanFieldCritic`); 0 (default): none.
    :param post_decision: soft critics on the post-decision state instead of the action (``MeanFieldCritic``), for
        the walled crowds; False (default): critics of the state and the action.
    :param horizon_scaled: soft critics whose networks fit the value per reward left in the episode
        (``MeanFieldCritic``); False (default): the value itself.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
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
        action_cost: float = 0.0,
        post_decision: bool = False,
        horizon_scaled: bool = False,
    ) -> None:
        # read by make_actor / make_critic, which SACPolicy.__init__ calls through _build
        self._set_mean_field_kwargs(
            actor_extractor_kwargs,
            critic_extractor_kwargs,
            action_encoder_arch,
            action_cost,
            post_decision,
            horizon_scaled,
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            DEFAULT_NET_ARCH if net_arch is None else net_arch,
            activation_fn,
            use_sde,
            log_std_init,
            use_expln,
            clip_mean,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            fused_optimizer_kwargs(optimizer_class, optimizer_kwargs),
            n_critics,
            share_features_extractor,
        )

    def deterministic_head(self) -> list[Callable[[th.Tensor], th.Tensor]]:
        # the mode of the squashed Gaussian (gSDE's too): tanh of the mean, clipped to [-clip_mean, clip_mean] with gSDE
        mean = self.actor.mu if isinstance(self.actor.mu, nn.Sequential) else [self.actor.mu]
        return [*self.actor.latent_pi, *mean, th.tanh]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        # SACPolicy leaves this keyword out, so a policy saved alone would reload unshared
        data = super()._get_constructor_parameters()
        data.update(share_features_extractor=self.share_features_extractor)
        return data
