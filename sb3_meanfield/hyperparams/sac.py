"""SAC hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`.

SAC explores through its entropy bonus (``ent_coef="auto"``), so it takes no action noise.
"""

from sb3_meanfield.hyperparams import ZOO_COMMON, self_play_table, table

COMMON = {
    **ZOO_COMMON,
    "policy": "sb3_meanfield.sac.policies.MeanFieldSACPolicy",
    "ent_coef": "auto",
}

#: MF-SAC on MFGCrowd-v0: its soft critics take the known effort cost ``-l1 a_max ||a||`` outside their networks;
#: with the averaging of the last iterates the relative dp gaps of seeds 0 / 1 / 2 went from 0.062 / 0.075 / 0.045 to
#: 0.033 / 0.037 / 0.034, under the target of 0.05 (docs/tuning.md, "The known effort cost"). On MFGCrowdMulti-v0
#: too, with three-step returns and the averaging of the last iterates (below).
hyperparams = table(COMMON)
self_play = self_play_table()
#: MF-SAC on MFGCrowdLQ-v0: entropy target 0 (SB3's default is minus the action dimension, -2), as under the random
#: initial law of the LQ model; over three seeds the median relative gap fell from 0.0114 to 0.0082
#: (BENCHMARKS.md, section 1; docs/tuning.md).
#: The same on the walled crowds: on MFGCrowd-v0 seed 0 the relative dp gap fell from 0.157 to 0.105 (docs/tuning.md);
#: and on MFGPrice-v0 (target -1 by default): relative gaps 0.0456 / 0.0262 / 0.0392 to 0.0100 / 0.0108 / 0.0156;
#: and on MFGLinearQuadratic-v0 (target -1 by default): 0.0126 / 0.0241 / 0.0126 to 0.0072 / 0.0110 / 0.0058.
for env_id in ("MFGLinearQuadratic-v0", "MFGCrowdLQ-v0", "MFGCrowd-v0", "MFGCrowdMulti-v0", "MFGPrice-v0"):
    self_play[env_id]["target_entropy"] = 0.0
#: MF-SAC on MFGCrowdLQ-v0: 750,000 transitions, so that a run fits in 5 minutes on one core (800,000 took 312 s alone
#: on the machine); relative gaps 0.0064 / 0.0063 / 0.0083 against 0.0058 / 0.0082 / 0.0145 (docs/tuning.md).
self_play["MFGCrowdLQ-v0"]["n_timesteps"] = 750_000
#: MF-SAC on MFGCrowd-v0: three-step returns (``n_steps``, :mod:`sb3_meanfield.common.replay`); on this code the
#: relative dp gaps of seeds 0 / 1 / 2 went from 0.096 / 0.107 / 0.132 to 0.096 / 0.107 / 0.066 (docs/tuning.md).
self_play["MFGCrowd-v0"]["n_steps"] = 3
#: MF-SAC on MFGCrowdMulti-v0: the known effort cost, three-step returns and the average of the actor's iterates over
#: the second half of the run; the largest relative dp gaps of seeds 0 / 1 / 2 were 0.068 / 0.090 / 0.060, under the
#: target of 0.1 (0.114 / 0.133 / 0.168 before, on another machine). With the known cost alone seed 2 did not recover
#: from a blow-up of its critics early in the run; with three-step returns it did (docs/tuning.md, "MF-SAC on the two
#: crowds").
self_play["MFGCrowdMulti-v0"]["n_steps"] = 3
