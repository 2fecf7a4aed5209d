"""TD3 hyperparameters (rl_zoo3 format) for every mfg_envs id; see :mod:`sb3_meanfield.hyperparams`."""

from sb3_meanfield.hyperparams import (
    BARRIER_TO_QUADRATIC,
    CROWD_ENV_IDS,
    DECAYING_NOISE,
    ZOO_COMMON,
    self_play_table,
    table,
    with_action_barrier,
)

COMMON = {
    **ZOO_COMMON,
    "policy": "sb3_meanfield.td3.policies.MeanFieldTD3Policy",
    "noise_type": "normal",
    "noise_std": 0.1,
}

#: MF-TD3 on MFGCrowd-v0: its critics take the known effort cost ``-l1 a_max ||a||`` outside their networks; with the
#: averaging of the last iterates the relative dp gaps of seeds 0 / 1 / 2 went from 0.086 / 0.066 / 0.063 to
#: 0.067 / 0.064 / 0.067 (docs/tuning.md, "The known effort cost"). On MFGCrowdMulti-v0 both together: the largest
#: relative dp gaps went from 0.110 / 0.133 on seeds 1 / 2 (last iterate, seed 0 not run) to 0.089 / 0.109 / 0.109
#: on seeds 0 / 1 / 2, 1.1 times that id's target of 0.1 (docs/tuning.md, "MF-TD3 on the two crowds").
#: Then, on both: critics on the post-decision state ``w = (p, v + dt u)`` (``post_decision``,
#: :class:`~sb3_meanfield.td3.critics.MeanFieldCritic`: the action's effect on ``Q`` is the value's own slope along
#: the velocity) and MF-DDPG's barrier schedule (:data:`BARRIER_TO_QUADRATIC`). The relative dp gaps of MFGCrowd-v0
#: went from 0.067 / 0.064 / 0.068 to 0.043 / 0.036 / 0.041 on seeds 0 / 1 / 2, the largest of MFGCrowdMulti-v0
#: from 0.102 / 0.086 / 0.098 to 0.094 / 0.053 / 0.070 (docs/tuning.md, "The post-decision critic"); seeds 3 / 4 of
#: MFGCrowd-v0, run after the choice, ended at 0.066 / 0.078 (0.081 / 0.078 before).
hyperparams = with_action_barrier(table(COMMON), {env_id: BARRIER_TO_QUADRATIC for env_id in CROWD_ENV_IDS})
for crowd_id in CROWD_ENV_IDS:
    hyperparams[crowd_id]["policy_kwargs"] = {**hyperparams[crowd_id]["policy_kwargs"], "post_decision": True}
self_play = self_play_table(DECAYING_NOISE)
#: MF-TD3 on MFGCrowdMulti-v0: a quarter more transitions per population, which its runs there fit within 10 minutes
#: of training (455-463 s); the largest relative dp gaps of seeds 0 / 1 / 2 went from 0.089 / 0.109 / 0.109 to
#: 0.102 / 0.086 / 0.098, 1.02 times that id's target of 0.1 at worst (docs/tuning.md, "The deterministic actors on
#: the two crowds"). MF-DDPG did worse there with it.
self_play["MFGCrowdMulti-v0"]["n_timesteps"] = 1_000_000
#: MF-TD3 on MFGPrice-v0: the best configuration of a 12-trial Nash-gap search (Optuna TPE, ASHA), which beat the
#: shared values on three seeds (median relative gap 0.0089 against 0.0595; BENCHMARKS.md, section 6, has the
#: commands). The values are those the search sampled, unrounded, so that its runs are what this entry trains.
PRICE_SEARCH = {
    "learning_rate": "lin_3e-3_1e-5",
    "batch_size": 512,
    "tau": 0.015588452230321891,
    "noise_std": 0.38909882815030883,
    "noise_final_std": 0.0698473974473511,
}
self_play["MFGPrice-v0"].update(PRICE_SEARCH)
#: The price search's learning rate, tau and noise with the shared batch of 256.
SEARCHED_BATCH_256 = {**PRICE_SEARCH, "batch_size": 256}
#: MF-TD3 on MFGLinearQuadratic-v0 (what ``make train`` runs): those values with half the shared budget; over three
#: seeds it ends below the shared values' final gap in about half their time (BENCHMARKS.md, sections 1 and 4;
#: docs/tuning.md).
LQ_FAST = {**SEARCHED_BATCH_256, "n_timesteps": 400_000}
self_play["MFGLinearQuadratic-v0"].update(LQ_FAST)
#: MF-TD3 on MFGCrowdLQ-v0: the same learning rate, tau and noise with the shared batch of 256 and budget; over three
#: seeds the relative gap went from 0.0225 / 0.0802 / 0.0318 to 0.0174 / 0.0116 / 0.0162 (docs/tuning.md).
self_play["MFGCrowdLQ-v0"].update(SEARCHED_BATCH_256)
#: MF-TD3 on MFGLinearQuadraticMulti-v0: the searched tau and noise with the shared learning rate (with the searched
#: rate too, one seed of three diverged); over three seeds the largest relative gap went from 0.0074 / 0.0389 / 0.0164
#: to 0.0022 / 0.0020 / 0.0122 (docs/tuning.md).
LQ_MULTI_SEARCHED = {key: PRICE_SEARCH[key] for key in ("tau", "noise_std", "noise_final_std")}
self_play["MFGLinearQuadraticMulti-v0"].update(LQ_MULTI_SEARCHED)
