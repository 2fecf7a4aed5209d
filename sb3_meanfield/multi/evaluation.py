"""Per-population Nash gaps of learned multi-population policies, exact where the game allows, RL everywhere.

``gap_k(pi) = R^k(BR_k; mu^pi) - R^k(pi_k; mu^pi)``: population ``k``'s best response with the flows of ALL
populations frozen to those of ``pi`` (:mod:`mfg_envs.multi_population`).

- ``method="exact"``: :func:`mfg_envs.multi_population.exact_nash_gaps` (the game's exact best responses,
  common random numbers); games without them raise ``NotImplementedError``.
- ``method="rl"``: the flows of ``pi`` are recorded (``rollout_joint``), every population is frozen to them
  (``game.freeze``) and a fresh agent of population ``k``'s algorithm learns population ``k``'s best response
  (:func:`rl_population_best_response`); then population ``k``'s policy and that agent are evaluated on FRESH
  noise (never seen in training) with common random numbers. A LOWER bound of each gap: the learned best
  response can only fall short of the best one (optimizer error, exploration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from mfg_envs.core import PopulationFlow, PopulationPolicy
from mfg_envs.equilibrium import NashGap
from mfg_envs.multi_env import policies_in_order
from mfg_envs.multi_population import (
    MultiPopulation,
    MultiPopulationNashGap,
    exact_nash_gaps,
    frozen_flows_returns,
    game_of,
    ghost_game,
    neutral_policies,
    rollout_joint,
)
from sb3_meanfield.evaluation import FRESH_NOISE_OFFSET, ModelPolicy, NashGapCallback, as_policy
from sb3_meanfield.multi.vec_env import PopulationVecEnv

METHODS = ("exact", "rl")


def rl_population_best_response(
    model: BaseAlgorithm,
    env: Any,
    population: str | int,
    flows: Sequence[PopulationFlow],
    total_timesteps: int = 320_000,
    seed: int = 0,
    n_learners: int = 64,
    **algo_kwargs: Any,
) -> BaseAlgorithm:
    """A fresh agent of ``model``'s algorithm and policy class trained as ``population``'s best response to ``flows``.

    ``n_learners`` agents of the population share its policy on a :class:`PopulationVecEnv` of a game whose
    populations are all frozen to ``flows`` (one per population): exactly the best-response problem, as
    :func:`sb3_meanfield.rl_best_response` for one population. ``total_timesteps`` counts their transitions.
    """
    game = game_of(env)
    k = game.model.index(population)
    venv = PopulationVecEnv(ghost_game(game, k, n_learners, flows), k)
    venv.seed(seed)
    kwargs = {"policy_kwargs": model.policy_kwargs, "gamma": 1.0, "seed": seed, "verbose": 0, **algo_kwargs}
    return type(model)(model.policy_class, venv, **kwargs).learn(total_timesteps)


def multi_nash_gap(
    policies: Sequence[BaseAlgorithm | PopulationPolicy] | Mapping[str, BaseAlgorithm | PopulationPolicy],
    env: Any,
    method: str = "exact",
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    n_replicates: int = 4,
    rl_timesteps: int = 320_000,
    rl_kwargs: dict[str, Any] | None = None,
    rl_template: BaseAlgorithm | None = None,
) -> MultiPopulationNashGap:
    """The Nash gap of every population (:class:`MultiPopulationNashGap`: ``gaps[name]``, ``max_gap``,
    ``max_relative_gap``) when population ``k`` plays ``policies[k]``.

    :param policies: one SB3 model or callable per population, in order or by name (a population missing from
        a mapping plays its current population policy).
    :param env: a multi-population env, its core, a :class:`PopulationVecEnv` or a trainer.
    :param method: ``"exact"`` (``n_replicates`` replicates of ``n_particles`` particles per population, seeds
        ``seed, seed + 1, ...``) or ``"rl"`` (one recorded flow of ``n_particles`` particles, a best response
        per population trained for ``rl_timesteps`` transitions of 64 agents, ``rl_kwargs`` to its algorithm,
        e.g. ``n_learners``; the algorithm is the population's model's, else ``rl_template``'s). See the module
        docstring: the RL gap is a lower bound.
    :param relative: also divide each gap by that population's gap when every population plays the neutral
        policy (normalized action 0), with the same method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    game = game_of(env)
    chosen = policies_in_order(game, policies)
    population_policies = [as_policy(policy) for policy in chosen]
    if method == "exact":
        return exact_nash_gaps(game, population_policies, n_particles, seed, relative, n_replicates)
    templates = [policy if isinstance(policy, BaseAlgorithm) else rl_template for policy in chosen]
    if any(template is None for template in templates):
        raise ValueError("method='rl' needs an SB3 model per population or an rl_template (its algorithm is trained)")
    rl = (templates, n_particles, seed, rl_timesteps, rl_kwargs or {})
    result = _rl_gaps(game, population_policies, *rl)
    if not relative:
        return result
    neutral = _rl_gaps(game, neutral_policies(game.model), *rl)
    return MultiPopulationNashGap(
        {name: replace(gap, relative_gap=gap.gap / neutral.gaps[name].gap) for name, gap in result.gaps.items()}
    )


def _rl_gaps(
    game: MultiPopulation,
    policies: Sequence[PopulationPolicy],
    templates: Sequence[BaseAlgorithm],
    n_particles: int,
    seed: int,
    rl_timesteps: int,
    rl_kwargs: dict[str, Any],
) -> MultiPopulationNashGap:
    recorder = MultiPopulation(game.model, n_particles, game.representation, game.kde_bandwidth)
    flows, _ = rollout_joint(recorder, policies, seed)
    fresh_seed = seed + FRESH_NOISE_OFFSET
    gaps = {}
    for k, name in enumerate(game.names):  # a loop over populations: one best response each
        best_response = rl_population_best_response(templates[k], game, k, flows, rl_timesteps, seed, **rl_kwargs)
        own = frozen_flows_returns(game, flows, k, policies[k], n_particles, fresh_seed)
        best = frozen_flows_returns(game, flows, k, ModelPolicy(best_response), n_particles, fresh_seed)
        diff = best - own
        gaps[name] = NashGap(
            gap=float(diff.mean()),
            standard_error=float(diff.std(ddof=1) / np.sqrt(n_particles)),
            policy_return=float(own.mean()),
            best_response_return=float(best.mean()),
        )
    return MultiPopulationNashGap(gaps)


class MultiPopulationNashGapCallback(NashGapCallback):
    """Log every population's Nash gap and their maximum every ``eval_freq`` calls.

    Records ``mfg/nash_gap/<name>``, ``mfg/relative_nash_gap/<name>``, ``mfg/nash_gap_se/<name>``,
    ``mfg/policy_return/<name>`` per population, ``mfg/nash_gap_max`` and ``mfg/relative_nash_gap_max``, and
    dumps the logger at that step; ``history`` keeps ``(num_timesteps, MultiPopulationNashGap)``. Keywords as
    :class:`sb3_meanfield.NashGapCallback` (``eval_freq``, ``method``, ``n_particles``, ``seed``, ``rl_timesteps``,
    ``verbose``) plus ``n_replicates`` (exact method) and ``relative``.

    With a :class:`~sb3_meanfield.multi.MultiPopulationTrainer` (``trainer.learn(callback=...)``; one call per
    env step of the game) the policies are its models. Passed to one SB3 model's ``learn`` on a
    :class:`PopulationVecEnv`, the policies are that model for its population and the current population
    policies of the others (and ``method="rl"`` trains that model's algorithm for every population). All
    keywords are scalars, so an rl_zoo3-style YAML entry builds it.
    """

    def __init__(self, eval_freq: int = 5_000, *, n_replicates: int = 4, relative: bool = True, **kwargs: Any) -> None:
        super().__init__(eval_freq, **kwargs)
        self.n_replicates, self.relative = n_replicates, relative
        self.history: list[tuple[int, MultiPopulationNashGap]] = []  # type: ignore[assignment]

    def evaluate(self) -> MultiPopulationNashGap:
        game = self.training_env.get_attr("game", indices=[0])[0]
        policies = getattr(self.model, "models", None)
        if policies is None:
            own = self.training_env.get_attr("population_index", indices=[0])[0]
            policies = [self.model if k == own else member.policy for k, member in enumerate(game.members)]
        template = self.model if isinstance(self.model, BaseAlgorithm) else None
        result = multi_nash_gap(
            policies,
            game,
            self.method,
            self.n_particles,
            self.eval_seed,
            self.relative,
            self.n_replicates,
            self.rl_timesteps,
            rl_template=template,
        )
        self.history.append((self.num_timesteps, result))
        for name, gap in result.gaps.items():
            self.logger.record(f"mfg/nash_gap/{name}", gap.gap)
            self.logger.record(f"mfg/relative_nash_gap/{name}", gap.relative_gap)
            self.logger.record(f"mfg/nash_gap_se/{name}", gap.standard_error)
            self.logger.record(f"mfg/policy_return/{name}", gap.policy_return)
        self.logger.record("mfg/nash_gap_max", result.max_gap)
        self.logger.record("mfg/relative_nash_gap_max", result.max_relative_gap)
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            gaps = ", ".join(f"{name} {gap.gap:.4g}" for name, gap in result.gaps.items())
            print(f"step {self.num_timesteps}: Nash gaps {gaps} (max {result.max_gap:.4g})")
        return result
