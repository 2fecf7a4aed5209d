"""rl_zoo3 hyperparameters for every mfg_envs id, one module per algorithm (``td3``, ``ddpg``, ``sac``).

Each module defines two tables keyed by env id (plus ``default`` for any other id):

- ``hyperparams``: rl_zoo3's format, for the representative agent (one learning particle per env,
  the population refreshed every ``sync_freq`` steps by
  :class:`~sb3_meanfield.common.callbacks.PopulationSyncCallback`). rl_zoo3 reads only this table::

      python -m rl_zoo3.train --algo td3 --env MFGCrowd-v0 --gym-packages mfg_envs \\
          --conf-file sb3_meanfield.hyperparams.td3 --num-threads 1

  (``--algo`` must be one of rl_zoo3's own names; the ``policy`` entry brings our policy class.)
- ``self_play``: overrides applied by ``python -m sb3_meanfield.train`` in its default self-play
  mode: ``n_learners`` learning particles of an ``n_particles`` population share one policy, so one
  env step stores ``n_learners`` transitions (``n_timesteps`` counts transitions).

Every entry also lists the callbacks: the population update (representative mode only), the
convergence monitors and, for models with an exact best response, the exact Nash gap.

Starting point: the design's values (DESIGN.md 6.3) with gamma = 1 on these finite horizons (the
exact values are undiscounted). What was changed, and why (exact Nash gap of the final policy, TD3,
self-play; the table with 3 seeds per algorithm is in BENCHMARKS.md, made by
``scripts/benchmark_equilibrium.py``):

- ``tau = 0.005`` instead of 0.001: with 0.001 the LQ gap was still 0.74 (relative 0.54) at the end
  of the budget, against 0.05 (relative 0.04) with 0.005: the targets follow too slowly.
- one learning rate for actor and critic (SB3 has one), decayed linearly from 1e-3 to 1e-5 in
  self-play (``lin_1e-3_1e-5``; rl_zoo3 only knows ``lin_<start>``, a decay to 0, used in
  ``hyperparams``). The decay removes the late oscillations of the gap.
- small networks (actor 32 units per block, critic 64) instead of the design's 256-128: a few inputs
  need few units, and each env step is a forward pass for every particle.
- the actor: with a concatenating ReLU actor the LQ gap stalled at relative 0.04-0.08, most of it from
  the jagged dependence on the own state; tanh heads gave 0.013-0.05 over 3 seeds, and an actor affine in
  the own state with (time, population)-dependent coefficients (:data:`POLICY_KWARGS`) 0.013-0.017
  (TD3), 0.003 (DDPG) and 0.006 (SAC) on one seed each. That form is exact for the LQ, crowd-LQ and price
  equilibria; the resource equilibrium divides by the capacity, where it did worse (0.13 against 0.055
  with the concatenating actor), so the resource model and the walled crowd keep
  :data:`CONCAT_POLICY_KWARGS`.
- 2 gradient steps per env step, batch 256, buffer 1e5, 800,000 transitions (12,500 env steps of 64
  learners); TD3 and DDPG explore with Gaussian noise decaying from 0.2 to 0.1 over the run. Decaying to 0.02
  (the first choice) let the critic see ever narrower actions, and late in training the actor could jump: one
  TD3 LQ run went from relative gap 0.03 at 640k transitions to 0.78 at 704k and ended at 0.10. With a floor
  of 0.1 the three TD3 seeds ended at 0.0065-0.0088 on LQ (0.0034-0.10 before) and 0.034-0.045 on the
  resource model (0.026-0.14 before) (``scripts/benchmark_equilibrium.py --algos td3 --hyperparams
  noise_final_std:0.1``, BENCHMARKS.md). The noise acts on the learners only: the population plays the
  deterministic policy and the Nash gap scores it.
- price model: the networks read inventory and signal but not cash (``state_indices=[0, 2]``,
  :data:`PRICE_POLICY_KWARGS`). No reward or transition depends on the cash level (its increments are the
  rewards), yet the trained TD3 actors had learned a dependence on it (d action / d cash between -0.4 and
  +0.7 in normalized units, against 0 for the equilibrium), the largest error of the price runs: TD3 went
  from relative gaps 0.022-0.17 to 0.028-0.036 and DDPG from 0.046-0.35 to 0.005-0.032 over 3 seeds.
  More data (1.6M transitions: 0.037-0.16) or a batch of 1024 (0.09-1.5) had not helped
  (``scripts/benchmark_equilibrium.py --envs MFGPrice-v0 --algos td3 ddpg [--hyperparams ...]``).
- crowd-LQ, TD3 and DDPG: without help they did not converge on MFGCrowdLQ-v0 (relative gaps 1.9 and 2.5 with
  the 0.1 noise floor; above 1 with Gaussian noise 0.1 or 0.2, OU noise, lr 3e-4, bigger nets, either actor).
  Within the first 200 env steps the untrained critic drives every initial action to the bound (the
  equilibrium's lie near 0.5), where a tanh actor has no gradient left (SAC's actions never sat there: its
  objective has the squashed Gaussian's log-density). The fix is a log barrier on the actor's objective,
  ``Q_1 + lambda sum_j log(1 - mu_j^2)`` (``MeanFieldTD3Policy(action_barrier=...)``), decayed from 0.2 to 0.1
  over the run (:class:`~sb3_meanfield.common.callbacks.ActionBarrierSchedule`). Measured, relative gaps of the
  final policy (``scripts/benchmark_equilibrium.py --envs MFGCrowdLQ-v0 --algos td3 ddpg``; the other schedules
  as single runs with the config's callbacks and another ``final_barrier``, e.g. for 0.2 to 0.02::

      python -m sb3_meanfield.train --algo td3 --env MFGCrowdLQ-v0 --seed 2 --hyperparams "callback:[
          {'sb3_meanfield.common.callbacks.MeanFieldMonitor': {'check_freq': 1000}},
          {'sb3_meanfield.NashGapCallback': {'eval_freq': 1000, 'n_particles': 2000}},
          {'sb3_meanfield.common.callbacks.ActionBarrierSchedule': {'final_barrier': 0.02}}]"

  and a constant barrier as ``final_barrier`` equal to the policy's ``action_barrier``): a constant 0.05 gave TD3
  0.018 / 0.044 / 0.18 and DDPG 0.027 / 0.41 / 0.025 (seeds 0 / 1 / 2; both misses oscillate between 0.1
  and 1 all run); 0.2 to 0.02 brought DDPG
  seed 1 to 0.011 but TD3 seed 2 to 0.31 (stable near 0.1 until the barrier fell below about 0.05, then
  worse); a constant 0.2 gave TD3 seed 2 0.062 (the barrier's tilt toward 0) and 0.2 to 0.1 gave 0.032. The
  three seeds of the shipped schedule are in BENCHMARKS.md. SAC needs no barrier.
- walled crowd (MFGCrowd-v0), TD3 and DDPG: their actors sat at the bound too (every initial action after 200
  env steps), and the RL lower bounds of their relative gaps were 1.4-3.3 (TD3) and 1.7-3.7 (DDPG) over 3 seeds
  (``scripts/compare_algorithms.py --envs MFGCrowd-v0`` before the change, each run's own algorithm as best
  responder). With the same barrier schedule DDPG's went to -1.5 to -0.97 (negative: the RL best response found no
  better deviation in 160,000 transitions) and TD3's to -1.3, 2.1 and 1.2 (seeds 0 / 1 / 2), so the walled crowd
  uses it too. Scored by one SAC responder for every algorithm (the script's default now): DDPG -0.26 to 0.03,
  TD3 0.15-1.46, SAC -0.16 to 0.65 (BENCHMARKS.md).
- two-population crowd (MFGCrowdMulti-v0), TD3 and DDPG: without the barrier every action of the final policies,
  of every particle at every step, lay at the bound (``scripts/action_saturation.py``); with the schedule, driving
  each population's model on its own progress, 0-0.2% did (SAC's: 5-7%). The RL lower bounds of the largest
  relative gap (one SAC responder for all) fell from 3.7-4.3 (DDPG) and 4.0-9.3 (TD3) to 0.17-0.63 and -0.45 to
  1.45 (3 seeds each; BENCHMARKS.md section 2b).
- the representative agent (one learner, population synced every 500 steps) reached relative gaps of
  0.11-0.85 (fixed point) and 0.09-1.73 (fictitious play) on the four exactly solvable models with the same
  number of gradient steps as self-play's 0.003-0.086 (``scripts/compare_modes.py``, one seed, BENCHMARKS.md),
  hence self-play by default.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from torch import nn

ENV_IDS = ("MFGCrowd-v0", "MFGCrowdLQ-v0", "MFGPrice-v0", "MFGResource-v0", "MFGLinearQuadratic-v0")
#: Ids whose model has an exact best response: their entries also log the exact Nash gap.
EXACT_ENV_IDS = ("MFGCrowdLQ-v0", "MFGPrice-v0", "MFGResource-v0", "MFGLinearQuadratic-v0")
#: Multi-population ids (``python -m sb3_meanfield.train_multi``: one model per population, each population's
#: ``n_learners`` learners and ``self_play`` values as in self-play, ``n_timesteps`` per population); the values
#: start from the single-population LQ and walled-crowd entries. Those with exact best responses log the
#: per-population exact Nash gap (the others' RL gap is too costly to run during training).
MULTI_ENV_IDS = ("MFGLinearQuadraticMulti-v0", "MFGCrowdMulti-v0")
EXACT_MULTI_ENV_IDS = ("MFGLinearQuadraticMulti-v0",)

#: Small networks (see the module docstring). The actor is affine in the agent's own state with coefficients
#: that depend on time and population (``state_coupling="affine"``, no hidden layer in the head): the form
#: of the equilibria of the linear-quadratic models, and it removes the jagged state dependence of a ReLU actor.
POLICY_KWARGS: dict[str, Any] = {
    "net_arch": {"pi": [], "qf": [64, 64]},
    "activation_fn": nn.Tanh,
    "actor_extractor_kwargs": {"state_arch": [32], "population_arch": [32], "state_coupling": "affine"},
    "critic_extractor_kwargs": {"state_arch": [64], "population_arch": [64]},
    "action_encoder_arch": [],
}
#: For models whose equilibrium is not affine in the state (the resource model's ``a = clip(theta - kappa abar,
#: 0, c)`` normalized by the capacity; the walled crowd): a concatenating actor with one hidden layer.
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
#: The price model's networks read inventory and signal, not cash: no reward or transition depends on the cash
#: level (its increments are the rewards), and a learned dependence on it was the price runs' largest error.
PRICE_POLICY_KWARGS: dict[str, Any] = {**POLICY_KWARGS, "features_extractor_kwargs": {"state_indices": [0, 2]}}
#: Per-id overrides shared by every algorithm.
PER_ENV: dict[str, dict[str, Any]] = {
    "MFGPrice-v0": {"policy_kwargs": PRICE_POLICY_KWARGS},
    "MFGResource-v0": {"policy_kwargs": CONCAT_POLICY_KWARGS},
    "MFGCrowd-v0": {"policy_kwargs": CONCAT_POLICY_KWARGS},
    "MFGCrowdMulti-v0": {"policy_kwargs": CONCAT_POLICY_KWARGS},
}
#: The log barrier on the deterministic actors' objective (``MeanFieldTD3Policy(action_barrier=...)``), decayed
#: linearly over the run (:class:`~sb3_meanfield.common.callbacks.ActionBarrierSchedule`), and the ids that use
#: it: those whose TD3/DDPG actors otherwise saturate at the action bound.
ACTION_BARRIER = 0.2
FINAL_ACTION_BARRIER = 0.1
ACTION_BARRIER_ENV_IDS = ("MFGCrowdLQ-v0", "MFGCrowd-v0", "MFGCrowdMulti-v0")


def with_action_barrier(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``entries`` (an rl_zoo3 table) with the decaying action barrier on the barrier ids."""
    schedule = {"sb3_meanfield.common.callbacks.ActionBarrierSchedule": {"final_barrier": FINAL_ACTION_BARRIER}}
    for env_id in ACTION_BARRIER_ENV_IDS:
        entries[env_id]["policy_kwargs"] = {**entries[env_id]["policy_kwargs"], "action_barrier": ACTION_BARRIER}
        entries[env_id]["callback"] = [*entries[env_id]["callback"], schedule]
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
#: Self-play exploration of the deterministic actors (TD3, DDPG): Gaussian noise decaying from 0.2 to 0.1.
DECAYING_NOISE: dict[str, Any] = {"noise_type": "decaying-normal", "noise_std": 0.2, "noise_final_std": 0.1}


def callbacks(env_id: str, sync_freq: int = 2500, check_freq: int = 1000) -> list[dict[str, dict[str, Any]]]:
    """Population update (dropped in self-play), convergence monitors, exact Nash gap where it exists; multi ids:
    the per-population exact Nash gap where it exists (``eval_freq`` in env steps of the game)."""
    if env_id in MULTI_ENV_IDS:
        gap = {"eval_freq": check_freq, "n_particles": 2000}
        return [{"sb3_meanfield.MultiPopulationNashGapCallback": gap}] if env_id in EXACT_MULTI_ENV_IDS else []
    entries = [
        {"sb3_meanfield.common.callbacks.PopulationSyncCallback": {"sync_freq": sync_freq, "mode": "fixed_point"}},
        {"sb3_meanfield.common.callbacks.MeanFieldMonitor": {"check_freq": check_freq}},
    ]
    if env_id in EXACT_ENV_IDS:
        entries.append({"sb3_meanfield.NashGapCallback": {"eval_freq": check_freq, "n_particles": 2000}})
    return entries


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
