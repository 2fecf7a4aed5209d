"""Mean field SAC (docs/design.md, "SAC"): ``max E[sum_t gamma^t (r(s_t, a_t, m_t) + alpha H(pi(. | s_t, m_t)))]``.

The stochastic policy is ``pi(a | s, m) = tanh(N(mu_theta(s, m), sigma_theta(s, m)))``, the twin
soft critics ``Q_i(s, a, m)``. SB3's SAC does the training; this class adds the policy name and the self-play
binding (:class:`~sb3_meanfield.common.vec_env.SelfPlayMixin`) and the loading of models saved with one module per
critic (:class:`~sb3_meanfield.td3.critics.LegacyCriticLoading`).
"""

from __future__ import annotations

from typing import ClassVar

from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy

from sb3_meanfield.common.vec_env import SelfPlayMixin
from sb3_meanfield.sac.policies import MeanFieldSACPolicy
from sb3_meanfield.td3.critics import LegacyCriticLoading


class MFSAC(SelfPlayMixin, LegacyCriticLoading, SAC):
    """SAC whose ``policy_aliases`` add ``"MeanFieldPolicy"`` (:class:`MeanFieldSACPolicy`).

    ``MFSAC("MeanFieldPolicy", env)``; every keyword is SB3's ``SAC``. The alias dict is a new one:
    SB3's ``SAC.policy_aliases`` is left untouched.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "MeanFieldPolicy": MeanFieldSACPolicy,
    }
