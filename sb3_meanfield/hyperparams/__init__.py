"""rl_zoo3 hyperparameters for every mfg_envs id, one module per algorithm (``td3``, ``ddpg``, ``sac``).

What the tables hold and how the values were chosen: docs/tuning.md.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from torch import nn

import mfg_envs
from mfg_envs.crowd import CrowdModel
from sb3_meanfield.evaluation import gap_method

ENV_IDS = mfg_envs.ENV_IDS
#: Several populations (``n_timesteps`` per population).
MULTI_ENV_IDS = mfg_envs.MULTI_ENV_IDS
#: The Nash-gap method of every id (:func:`~sb3_meanfield.evaluation.gap_method`): its entry logs that gap.
GAP_METHODS = {
    env_id: gap_method(env_class.model_class)
    for env_id, env_class in {**mfg_envs.ENV_CLASSES, **mfg_envs.MULTI_ENV_CLASSES}.items()
}
#: The Nash-gap check of each method: the exact gap every ``check_freq`` env steps on 2,000 particles; the dp gap
#: (:class:`~sb3_meanfield.evaluation.NashGapCallback`'s dp defaults: seconds per population and check,
#: docs/sb3_meanfield.md) every 2,500 env steps of each population, five checks in a default self-play run.
GAP_CHECKS: dict[str, dict[str, Any]] = {
    "exact": {"n_particles": 2000},
    "dp": {"eval_freq": 2500, "method": "dp"},
}
#: A multi id's callbacks count env steps of the game, in which the default alternating schedule moves one of its
#: two populations at a time: its dp period is twice as long.
MULTI_DP_EVAL_FREQ = 5000

#: Small networks; the actor is affine in the agent's own state with time- and population-dependent coefficients.
POLICY_KWARGS: dict[str, Any] = {
    "net_arch": {"pi": [], "qf": [64, 64]},
    "activation_fn": nn.Tanh,
    "actor_extractor_kwargs": {"state_arch": [32], "population_arch": [32], "state_coupling": "affine"},
    "critic_extractor_kwargs": {"state_arch": [64], "population_arch": [64]},
    "action_encoder_arch": [],
}
#: A concatenating actor with one hidden layer, for the models whose equilibrium is not affine in the state.
CONCAT_POLICY_KWARGS: dict[str, Any] = {
    "net_arch": {"pi": [32], "qf": [64, 64]},
    "actor_extractor_kwargs": {"state_arch": [32], "population_arch": [32]},
    "critic_extractor_kwargs": {"state_arch": [64], "population_arch": [64]},
    "action_encoder_arch": [],
}
#: rl_zoo3 entries shared by every algorithm (each module adds its policy class and exploration).
ZOO_COMMON: dict[str, Any] = {
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
}
#: The walled crowds' known effort cost, taken by the critics outside their networks (``policy_kwargs``
#: ``action_cost``, :class:`~sb3_meanfield.td3.critics.MeanFieldCritic`): the reward's ``-l1 ||u||`` is ``-c ||a||`` in
#: normalized actions, ``c = l1 a_max`` (``effort_rate``), 0.1 x 2.0 = 0.2 at the model's defaults (the algorithms
#: refuse a value that is not the env's, so a run with another ``action_cost`` or ``action_bound`` in its
#: ``env_kwargs`` sets its own).
CROWD_EFFORT_RATE = CrowdModel().effort_rate
#: The walled crowds' networks: the population by its moments (``population_representation="moments"``: per axis the
#: mean and standard deviation of the positions, per population), the agent's position relative to each crowd
#: (``population_offsets``, :class:`~sb3_meanfield.common.encoders.MeanFieldExtractor`) beside its own state,
#: critics of 128-128 that take the known effort cost; docs/tuning.md has the runs that chose each.
CROWD_POLICY_KWARGS: dict[str, Any] = {
    **CONCAT_POLICY_KWARGS,
    "net_arch": {"pi": [32], "qf": [128, 128]},
    "features_extractor_kwargs": {"population_offsets": [0, 1]},
    "critic_extractor_kwargs": {"state_arch": [128], "population_arch": [64]},
    "action_cost": CROWD_EFFORT_RATE,
}
CROWD: dict[str, Any] = {"policy_kwargs": CROWD_POLICY_KWARGS, "env_kwargs": {"population_representation": "moments"}}
#: The walled crowds, one population and two.
CROWD_ENV_IDS = ("MFGCrowd-v0", "MFGCrowdMulti-v0")
#: The price model's networks read inventory and signal, not cash.
PRICE_POLICY_KWARGS: dict[str, Any] = {**POLICY_KWARGS, "features_extractor_kwargs": {"state_indices": [0, 2]}}
#: The resource model's allocations do not move its states (demand and capacity are exogenous), so every discount
#: has the same best responses and equilibrium: with ``gamma = 0`` the critic learns the reward ``r(s, a, m)`` alone,
#: without the variance of the future return, which had set the final gap (docs/tuning.md).
RESOURCE: dict[str, Any] = {"policy_kwargs": CONCAT_POLICY_KWARGS, "gamma": 0.0}
#: Per-id overrides shared by every algorithm.
PER_ENV: dict[str, dict[str, Any]] = {
    "MFGPrice-v0": {"policy_kwargs": PRICE_POLICY_KWARGS},
    "MFGResource-v0": RESOURCE,
    "MFGCrowd-v0": CROWD,
    "MFGCrowdMulti-v0": CROWD,
}
#: The log barrier on the deterministic actors' objective (``MeanFieldTD3Policy(action_barrier=...)``), decayed
#: linearly over the run (:class:`~sb3_meanfield.common.callbacks.ActionBarrierSchedule`), and the ids that use it.
ACTION_BARRIER = 0.2
FINAL_ACTION_BARRIER = 0.1
ACTION_BARRIER_ENV_IDS = ("MFGCrowdLQ-v0", "MFGCrowd-v0", "MFGCrowdMulti-v0")
#: The barrier schedule of MF-DDPG and MF-TD3 on the walled crowds: the log barrier decays to 0.01
#: instead of 0.1 while a quadratic ``-kappa sum_j mu_j^2`` grows from 0 to 0.09: the pull toward 0 keeps the
#: curvature at 0 of a barrier of 0.1, but the bound, where the best response brakes, is no longer forbidden. On one
#: machine MF-DDPG's relative dp gap of MFGCrowd-v0 went from 0.149 / 0.144 / 0.156 / 0.202 to 0.121 / 0.096 /
#: 0.102 / 0.160 over four seeds, the largest of MFGCrowdMulti-v0 from 0.142 / 0.330 / 0.244 to 0.160 / 0.096 /
#: 0.176 over three (docs/tuning.md, "The barrier's edge"). MF-TD3 did worse with it until its critics read the
#: post-decision state (docs/tuning.md, "The post-decision critic").
BARRIER_TO_QUADRATIC = {"final_barrier": 0.01, "final_action_l2": 0.09}


def with_action_barrier(
    entries: dict[str, dict[str, Any]], schedules: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, Any]]:
    """``entries`` (an rl_zoo3 table) with the decaying action barrier on the barrier ids; ``schedules``: the
    ``ActionBarrierSchedule`` keywords of some of them (default ``final_barrier=FINAL_ACTION_BARRIER``)."""
    for env_id in ACTION_BARRIER_ENV_IDS:
        schedule = (schedules or {}).get(env_id, {"final_barrier": FINAL_ACTION_BARRIER})
        entries[env_id]["policy_kwargs"] = {**entries[env_id]["policy_kwargs"], "action_barrier": ACTION_BARRIER}
        entries[env_id]["callback"] = [
            *entries[env_id]["callback"],
            {"sb3_meanfield.common.callbacks.ActionBarrierSchedule": dict(schedule)},
        ]
    return entries


#: Self-play values shared by every algorithm and id (overrides of the rl_zoo3 entries).
SELF_PLAY: dict[str, Any] = {
    "n_particles": 1000,
    "n_learners": 64,
    "n_timesteps": 800_000,
    "learning_starts": 6400,
    "gradient_steps": 2,
    "learning_rate": "lin_1e-3_1e-5",
}
#: Self-play exploration of the deterministic actors (TD3, DDPG).
DECAYING_NOISE: dict[str, Any] = {"noise_type": "decaying-normal", "noise_std": 0.2, "noise_final_std": 0.1}


#: The walled crowd's final policy: the average of the actor's weights over the second half of the run, one sample
#: every 25,000 transitions (:class:`~sb3_meanfield.common.callbacks.PolicyAveraging`). On MFGCrowd-v0 every run of
#: the three algorithms ended closer to equilibrium (worst of three seeds: MF-TD3 0.120 -> 0.086, MF-DDPG 0.121 ->
#: 0.101, MF-SAC 0.107 -> 0.075); on MFGCrowdMulti-v0 it moved runs both ways alone, and took the worst of three
#: runs of every algorithm closer with the critics' known effort cost (docs/tuning.md, "Averaging the last iterates"
#: and the sections after it).
POLICY_AVERAGING: dict[str, dict[str, Any]] = {
    "sb3_meanfield.common.callbacks.PolicyAveraging": {"start": 0.5, "every": 25_000}
}
#: The ids whose configs end on the averaged actor (:data:`POLICY_AVERAGING`).
POLICY_AVERAGING_ENV_IDS = CROWD_ENV_IDS


def callbacks(env_id: str, sync_freq: int = 2500, check_freq: int = 1000) -> list[dict[str, dict[str, Any]]]:
    """Population update (dropped in self-play), convergence monitors, the Nash gap of the id's method
    (:data:`GAP_METHODS`, :data:`GAP_CHECKS`), the averaging of the last iterates (:data:`POLICY_AVERAGING_ENV_IDS`);
    multi ids: the per-population Nash gap of the id's method only, and the averaging (``eval_freq`` in env steps of
    the game)."""
    method, gap = GAP_METHODS.get(env_id), []
    if method is not None:
        kwargs = {"eval_freq": check_freq, **GAP_CHECKS[method]}
        if method == "dp" and env_id in MULTI_ENV_IDS:
            kwargs["eval_freq"] = MULTI_DP_EVAL_FREQ
        gap = [{"sb3_meanfield.NashGapCallback": kwargs}]
    averaging = [deepcopy(POLICY_AVERAGING)] if env_id in POLICY_AVERAGING_ENV_IDS else []
    if env_id in MULTI_ENV_IDS:
        return [*gap, *averaging]
    return [
        {"sb3_meanfield.common.callbacks.PopulationSyncCallback": {"sync_freq": sync_freq, "mode": "fixed_point"}},
        {"sb3_meanfield.common.callbacks.MeanFieldMonitor": {"check_freq": check_freq}},
        *gap,
        *averaging,
    ]


def table(common: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{id: common | PER_ENV[id]}`` with the callbacks, for every id and ``default`` (independent copies)."""
    return {
        env_id: {**deepcopy(common), **deepcopy(PER_ENV.get(env_id, {})), "callback": callbacks(env_id)}
        for env_id in (*ENV_IDS, *MULTI_ENV_IDS, "default")
    }


def self_play_table(extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{id: SELF_PLAY | extra}`` for every id and ``default``."""
    return {
        env_id: {**deepcopy(SELF_PLAY), **deepcopy(extra or {})} for env_id in (*ENV_IDS, *MULTI_ENV_IDS, "default")
    }
