"""DDPG hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`.

DDPG takes TD3's values: the same policy class (one critic) and the same budget (docs/tuning.md); on
MFGLinearQuadratic-v0 it takes MF-TD3's ``LQ_FAST`` too; on the walled crowds its barrier gives way to a quadratic,
it trains two critics that take the known effort cost and are scaled by the rewards left, on MFGCrowd-v0 on batches
of 512 and on MFGCrowdMulti-v0 on three-step returns (below).
"""

from sb3_meanfield.hyperparams import (
    BARRIER_TO_QUADRATIC,
    CROWD_ENV_IDS,
    DECAYING_NOISE,
    self_play_table,
    table,
    with_action_barrier,
)
from sb3_meanfield.hyperparams.td3 import COMMON, LQ_FAST

#: MF-DDPG on the walled crowds: the barrier gives way to a quadratic (:data:`BARRIER_TO_QUADRATIC`). On MFGCrowd-v0
#: its critic takes the known effort cost ``-l1 a_max ||a||`` outside its network; with the
#: averaging of the last iterates the relative dp gaps of seeds 0 / 1 / 2 went from 0.101 / 0.058 / 0.092 to
#: 0.055 / 0.059 / 0.071 (docs/tuning.md, "The known effort cost"). On MFGCrowdMulti-v0 both, with three-step
#: returns (below).
hyperparams = with_action_barrier(table(COMMON), {env_id: BARRIER_TO_QUADRATIC for env_id in CROWD_ENV_IDS})
self_play = self_play_table(DECAYING_NOISE)
#: MF-DDPG on MFGLinearQuadratic-v0: MF-TD3's half budget with the price search's values; over three seeds the
#: relative gap went from 0.0048 / 0.0140 / 0.0123 to 0.0044 / 0.0026 / 0.0060 in about half the time, and under a
#: common noise of 1.0 seed 1, which had ended at 0.091, reached 0.009 (docs/tuning.md).
self_play["MFGLinearQuadratic-v0"].update(LQ_FAST)
#: MF-DDPG on MFGCrowd-v0: batches of 512; over three seeds the relative dp gap went from 0.145 / 0.191 / 0.150 to
#: 0.105 / 0.102 / 0.115 (docs/tuning.md). On MFGCrowdMulti-v0 it did worse (seeds 0 / 1: 0.204 / 0.442 against
#: 0.119 / 0.216), so that id keeps 256.
self_play["MFGCrowd-v0"]["batch_size"] = 512
#: MF-DDPG on MFGCrowdMulti-v0: the known effort cost, three-step returns and the averaging of the last iterates;
#: the largest relative dp gaps of seeds 0 / 1 / 2 went from 0.160 / 0.096 / 0.176 (last iterate) to
#: 0.103 / 0.125 / 0.106, 1.25 times that id's target of 0.1 (docs/tuning.md, "MF-DDPG on the two crowds").
self_play["MFGCrowdMulti-v0"]["n_steps"] = 3
#: MF-DDPG on the walled crowds: two critics, the clipped double-Q target ``min(Q_1', Q_2')`` and the actor on their
#: mean (``actor_objective="mean"``, :class:`~sb3_meanfield.td3.critics.MeanFieldCritic`); its actor moved at every
#: critic update and its target action without smoothing stay DDPG's. The relative dp gaps of MFGCrowd-v0's seeds
#: 0 / 1 / 2 went from 0.055 / 0.059 / 0.071 to 0.044 / 0.053 / 0.053, the largest of MFGCrowdMulti-v0 from
#: 0.103 / 0.125 / 0.106 to 0.112 / 0.082 / 0.113 (docs/tuning.md, "MF-DDPG with two critics"). Then critics scaled
#: by the rewards left (``horizon_scaled``): MFGCrowd-v0 0.046 / 0.045 / 0.050, MFGCrowdMulti-v0 0.055 / 0.056 / 0.056
#: (docs/tuning.md, "A critic scaled by the rewards left").
for crowd_id in CROWD_ENV_IDS:
    hyperparams[crowd_id]["policy_kwargs"] = {
        **hyperparams[crowd_id]["policy_kwargs"],
        "n_critics": 2,
        "actor_objective": "mean",
        "horizon_scaled": True,
    }
