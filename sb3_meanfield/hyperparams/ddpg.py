"""DDPG hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`.

DDPG takes TD3's values: the same policy class (one critic) and the same budget (docs/tuning.md); on MFGCrowd-v0
it trains on batches of 512 (below).
"""

from sb3_meanfield.hyperparams import DECAYING_NOISE, self_play_table, table, with_action_barrier
from sb3_meanfield.hyperparams.td3 import COMMON

hyperparams = with_action_barrier(table(COMMON))
self_play = self_play_table(DECAYING_NOISE)
#: MF-DDPG on MFGCrowd-v0: batches of 512; over three seeds the relative dp gap went from 0.145 / 0.191 / 0.150 to
#: 0.105 / 0.102 / 0.115 (docs/tuning.md). On MFGCrowdMulti-v0 it did worse (seeds 0 / 1: 0.204 / 0.442 against
#: 0.119 / 0.216), so that id keeps 256.
self_play["MFGCrowd-v0"]["batch_size"] = 512
