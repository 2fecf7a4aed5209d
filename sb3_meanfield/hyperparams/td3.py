"""TD3 hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`."""

from sb3_meanfield.hyperparams import DECAYING_NOISE, POLICY_KWARGS, self_play_table, table

COMMON = {
    "policy": "sb3_meanfield.td3.policies.MeanFieldTD3Policy",
    "policy_kwargs": POLICY_KWARGS,
    "n_timesteps": 50_000,
    "learning_rate": "lin_1e-3",
    "buffer_size": 100_000,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 1.0,
    "learning_starts": 1000,
    "train_freq": 1,
    "gradient_steps": 1,
    "noise_type": "normal",
    "noise_std": 0.1,
}

hyperparams = table(COMMON)
self_play = self_play_table(DECAYING_NOISE)
