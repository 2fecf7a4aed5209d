"""Mean field TD3 (docs/design.md, "TD3"): twin critics ``Q_i(s, a, m)`` and the clipped double-Q target.

``y = r + gamma min_{i=1,2} Q_{phi_i'}(s', mu_{theta'}(s', m') + eps, m')``,
``eps ~ clip(N(0, sigma), -c, c)``; the actor maximizes ``Q_{phi_1}(s, mu_theta(s, m), m)`` every
``policy_delay`` critic updates. SB3's TD3 does the training; this class adds the policy name and the self-play
binding (:class:`~sb3_meanfield.common.vec_env.SelfPlayMixin`) and the loading of models saved with one module per
critic (:class:`~sb3_meanfield.td3.critics.LegacyCriticLoading`).
"""

from __future__ import annotations

from typing import ClassVar

from stable_baselines3 import TD3
from stable_baselines3.common.policies import BasePolicy

from sb3_meanfield.common.vec_env import SelfPlayMixin
from sb3_meanfield.td3.critics import LegacyCriticLoading
from sb3_meanfield.td3.policies import MeanFieldTD3Policy


class MFTD3(SelfPlayMixin, LegacyCriticLoading, TD3):
    """TD3 whose ``policy_aliases`` add ``"MeanFieldPolicy"`` (:class:`MeanFieldTD3Policy`).

    ``MFTD3("MeanFieldPolicy", env)``; every keyword is SB3's ``TD3``. The alias dict is a new one:
    SB3's ``TD3.policy_aliases`` (the same object as ``DDPG.policy_aliases``) is left untouched.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **TD3.policy_aliases,
        "MeanFieldPolicy": MeanFieldTD3Policy,
    }
