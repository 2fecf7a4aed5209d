"""TD3 hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`."""

from sb3_meanfield.hyperparams import DECAYING_NOISE, ZOO_COMMON, self_play_table, table, with_action_barrier

COMMON = {
    **ZOO_COMMON,
    "policy": "sb3_meanfield.td3.policies.MeanFieldTD3Policy",
    "noise_type": "normal",
    "noise_std": 0.1,
}

hyperparams = with_action_barrier(table(COMMON))
self_play = self_play_table(DECAYING_NOISE)
