"""SAC hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`.

SAC explores through its entropy bonus (``ent_coef="auto"``), so it takes no action noise.
"""

from sb3_meanfield.hyperparams import POLICY_KWARGS, self_play_table, table

COMMON = {
    "policy": "sb3_meanfield.sac.policies.MeanFieldSACPolicy",
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
    "ent_coef": "auto",
}

hyperparams = table(COMMON)
self_play = self_play_table()
