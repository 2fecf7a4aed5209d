"""Mean field DDPG (docs/design.md, "The DDPG update"): one critic ``Q_phi(s, a, m)``, actor ``mu_theta(s, m)``.

Critic loss ``(Q_phi(s, a, m) - y)^2`` with ``y = r + gamma Q_{phi'}(s', mu_{theta'}(s', m'), m')``,
actor ascent on ``Q_phi(s, mu_theta(s, m), m)``, Polyak targets ``phi' <- tau phi + (1 - tau) phi'``.
SB3's DDPG does the training; this class adds the policy name and the self-play
binding (:class:`~sb3_meanfield.common.vec_env.SelfPlayMixin`) and the loading of models saved with one module per
critic (:class:`~sb3_meanfield.td3.critics.LegacyCriticLoading`).
"""

from __future__ import annotations

from typing import ClassVar

from stable_baselines3 import DDPG
from stable_baselines3.common.policies import BasePolicy

from sb3_meanfield.common.vec_env import SelfPlayMixin
from sb3_meanfield.td3.critics import LegacyCriticLoading
from sb3_meanfield.td3.policies import MeanFieldTD3Policy


class MFDDPG(SelfPlayMixin, LegacyCriticLoading, DDPG):
    """DDPG whose ``policy_aliases`` add ``"MeanFieldPolicy"`` (:class:`MeanFieldTD3Policy`, one critic).

    ``MFDDPG("MeanFieldPolicy", env)``; every keyword is SB3's ``DDPG``. The alias dict is a new
    one: SB3's ``DDPG.policy_aliases`` (the same object as ``TD3.policy_aliases``) is left untouched.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **DDPG.policy_aliases,
        "MeanFieldPolicy": MeanFieldTD3Policy,
    }
