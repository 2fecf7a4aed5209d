"""SAC hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`.

SAC explores through its entropy bonus (``ent_coef="auto"``), so it takes no action noise.
"""

from sb3_meanfield.hyperparams import ZOO_COMMON, self_play_table, table

COMMON = {
    **ZOO_COMMON,
    "policy": "sb3_meanfield.sac.policies.MeanFieldSACPolicy",
    "ent_coef": "auto",
}

hyperparams = table(COMMON)
self_play = self_play_table()
