"""The Nash gap of a learned policy: exact where the model allows, an RL best response everywhere.

``gap(pi) = R(BR; mu^pi) - R(pi; mu^pi) >= 0`` (returns; MODELS.md writes it in costs), where
``mu^pi`` is the flow of a population that plays ``pi`` and ``BR`` a best response to that frozen
flow. ``method="exact"`` solves the best response exactly (Riccati / per-step clip) and evaluates it
with common random numbers; ``method="rl"`` trains a fresh agent of the same algorithm against the
frozen flow, so its gap is a LOWER bound of the true one (optimizer error and exploration only
make the learned best response worse).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from mfg_envs import env_like
from mfg_envs.core import ConstantPolicy, Population, PopulationFlow, PopulationPolicy, population_of, rollout
from mfg_envs.equilibrium import NashGap, exact_nash_gap
from sb3_meanfield.common.vec_env import SelfPlayVecEnv

#: Seed offset of the evaluation after an RL best response: noise never seen in its training.
FRESH_NOISE_OFFSET = 1_000_003


class ModelPolicy:
    """An SB3 model as a population policy: batched observation dict -> deterministic normalized actions.

    ``frozen=True`` keeps a copy of the policy network, so later training does not change it.
    """

    def __init__(self, model: BaseAlgorithm, frozen: bool = False) -> None:
        self.policy = copy.deepcopy(model.policy) if frozen else model.policy

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.policy.set_training_mode(False)
        device = self.policy.device
        # th.tensor copies into torch's aligned memory: the actions do not depend on where numpy put obs (see
        # MeanFieldNetworksMixin.obs_to_tensor)
        tensors = {key: th.tensor(np.asarray(value, dtype=np.float32), device=device) for key, value in obs.items()}
        with th.no_grad():
            actions = self.policy._predict(tensors, deterministic=True)
        return actions.cpu().numpy().astype(np.float64)


def as_policy(policy: BaseAlgorithm | PopulationPolicy) -> PopulationPolicy:
    """Accept an SB3 model or a callable ``obs -> normalized actions``."""
    if isinstance(policy, BaseAlgorithm):
        return ModelPolicy(policy)
    if not callable(policy):
        raise ValueError(f"policy must be an SB3 model or a callable obs -> actions, got {type(policy).__name__}")
    return policy


def frozen_flow_returns(
    population: Population, flow: PopulationFlow, policy: PopulationPolicy, n_agents: int, seed: int
) -> np.ndarray:
    """Returns of ``n_agents`` agents playing ``policy`` against the frozen ``flow`` (seeded: common random numbers)."""
    cohort = Population(population.model, n_agents, population.representation, population.kde_bandwidth)
    cohort.flow = flow
    return rollout(cohort, policy, np.random.default_rng(seed))[1]


def critic_value(model: BaseAlgorithm, observations: dict[str, np.ndarray]) -> float:
    """``mean_i Q_1(s^i, mu(s^i, m), m)``: the first critic at the deterministic policy's actions."""
    device = model.device
    with th.no_grad():
        q_values = model.critic(
            {key: th.tensor(np.asarray(value, dtype=np.float32), device=device) for key, value in observations.items()},
            th.tensor(ModelPolicy(model)(observations), dtype=th.float32, device=device),
        )[0]
    return float(q_values.mean())


def overestimation(critic: float, returns: np.ndarray) -> dict[str, float]:
    """``critic_value``, the Monte Carlo ``realized_return`` (and its standard error) and ``q_overestimation``, their
    difference (positive: the critic is optimistic)."""
    realized = float(returns.mean())
    return {
        "critic_value": critic,
        "realized_return": realized,
        "realized_return_se": float(returns.std(ddof=1) / np.sqrt(returns.size)),
        "q_overestimation": critic - realized,
    }


def critic_overestimation(model: BaseAlgorithm, env: Any, n_particles: int = 10_000, seed: int = 0) -> dict[str, float]:
    """How far the first critic's value of the initial states lies above the return the policy actually gets.

    ``n_particles`` particles all play the deterministic policy ``mu`` from one seeded episode;
    ``critic_value = mean_i Q_1(s_0^i, mu(s_0^i, m_0), m_0)``, ``realized_return = mean_i R^i`` (the same
    particles, Monte Carlo, with its standard error ``realized_return_se``) and
    ``q_overestimation = critic_value - realized_return`` (:func:`overestimation`). With ``gamma = 1`` both
    estimate the same undiscounted value; SAC's soft critic also counts its entropy bonus, so its figure
    includes ``alpha`` times the remaining entropy.
    """
    population = population_of(env)
    cohort = Population(population.model, n_particles, population.representation, population.kde_bandwidth)
    cohort.reset(np.random.default_rng(seed))
    critic = critic_value(model, cohort.observation())
    _, returns = rollout(cohort, ModelPolicy(model), np.random.default_rng(seed))  # same seed: same initial particles
    return overestimation(critic, returns)


def rl_best_response(
    model: BaseAlgorithm,
    env: Any,
    flow: PopulationFlow,
    total_timesteps: int = 320_000,
    seed: int = 0,
    n_learners: int = 64,
    **algo_kwargs: Any,
) -> BaseAlgorithm:
    """Train a fresh agent of ``model``'s algorithm and policy class against the frozen ``flow``.

    ``n_learners`` agents of ``env``'s model share the learner's policy and all play against the
    recorded mean field (:meth:`SelfPlayVecEnv.against_flow`), which is exactly the best-response
    problem; ``total_timesteps`` counts their transitions. ``n_learners=1`` trains a single agent.
    """
    population = population_of(env)
    if n_learners == 1:
        best_env: Any = env_like(population, n_particles=1)
        best_env.set_population_flow(flow)
    else:
        best_env = SelfPlayVecEnv.against_flow(population, flow, n_learners)
        best_env.seed(seed)
    kwargs = {"policy_kwargs": model.policy_kwargs, "gamma": 1.0, "seed": seed, "verbose": 0, **algo_kwargs}
    learner = type(model)(model.policy_class, best_env, **kwargs)
    return learner.learn(total_timesteps)


def nash_gap(
    policy: BaseAlgorithm | PopulationPolicy,
    env: Any,
    method: str = "exact",
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    rl_timesteps: int = 320_000,
    rl_kwargs: dict[str, Any] | None = None,
    rl_template: BaseAlgorithm | None = None,
) -> NashGap:
    """Nash gap of ``policy`` (an SB3 model or a callable) on ``env`` (any mfg_envs env or its population).

    - ``method="exact"``: exact best response with common random numbers
      (:func:`mfg_envs.equilibrium.exact_nash_gap`); models without a closed form raise
      ``NotImplementedError``.
    - ``method="rl"``: a fresh agent of ``rl_template``'s algorithm, policy class and policy
      keywords (default: ``policy`` itself when it is an SB3 model) trained for ``rl_timesteps``
      transitions of 64 agents against the frozen flow (:func:`rl_best_response`; ``rl_kwargs`` go to
      the algorithm, e.g. ``n_learners``), then both evaluated on fresh noise with common random
      numbers. A lower bound of the gap: the learned best response can only fall short of the best one.

    ``relative=True`` divides by the gap of the neutral policy (normalized action 0), computed with
    the same method.
    """
    if method not in ("exact", "rl"):
        raise ValueError(f"method must be 'exact' or 'rl', got {method!r}")
    population = population_of(env)
    if method == "exact":
        return exact_nash_gap(population, as_policy(policy), n_particles, seed, relative)
    template = rl_template or policy
    if not isinstance(template, BaseAlgorithm):
        raise ValueError("method='rl' needs an SB3 model as policy or as rl_template (its algorithm is trained)")
    rl = (template, rl_timesteps, rl_kwargs or {})
    result = _rl_gap(as_policy(policy), population, n_particles, seed, *rl)
    if not relative:
        return result
    neutral = _rl_gap(ConstantPolicy(np.zeros(population.model.action_dim)), population, n_particles, seed, *rl)
    return replace(result, relative_gap=result.gap / neutral.gap)


def _rl_gap(
    policy: PopulationPolicy,
    population: Population,
    n_particles: int,
    seed: int,
    template: BaseAlgorithm,
    rl_timesteps: int,
    rl_kwargs: dict[str, Any],
) -> NashGap:
    recorder = Population(population.model, n_particles, population.representation, population.kde_bandwidth)
    flow, _ = rollout(recorder, policy, np.random.default_rng(seed))
    best_response = rl_best_response(template, population, flow, rl_timesteps, seed, **rl_kwargs)
    fresh_seed = seed + FRESH_NOISE_OFFSET
    own = frozen_flow_returns(population, flow, policy, n_particles, fresh_seed)
    best = frozen_flow_returns(population, flow, ModelPolicy(best_response), n_particles, fresh_seed)
    diff = best - own
    return NashGap(
        gap=float(diff.mean()),
        standard_error=float(diff.std(ddof=1) / np.sqrt(n_particles)),
        policy_return=float(own.mean()),
        best_response_return=float(best.mean()),
    )


class NashGapCallback(BaseCallback):
    """Log the Nash gap of the current policy every ``eval_freq`` steps.

    Records ``mfg/nash_gap``, ``mfg/relative_nash_gap``, ``mfg/nash_gap_se``, ``mfg/br_return`` and
    ``mfg/policy_return`` and dumps the logger at that step. The env is the training env's model
    (read with ``get_attr("population")``). All keywords are scalars, so an rl_zoo3 YAML entry
    ``sb3_meanfield.NashGapCallback: {eval_freq: 5000}`` builds it.
    """

    def __init__(
        self,
        eval_freq: int = 5_000,
        method: str = "exact",
        n_particles: int = 10_000,
        seed: int = 0,
        rl_timesteps: int = 320_000,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be an integer >= 1, got {eval_freq!r}")
        if method not in ("exact", "rl"):
            raise ValueError(f"method must be 'exact' or 'rl', got {method!r}")
        self.eval_freq, self.method, self.n_particles = eval_freq, method, n_particles
        self.eval_seed, self.rl_timesteps = seed, rl_timesteps
        self.history: list[tuple[int, NashGap]] = []

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def evaluate(self) -> NashGap:
        population = self.training_env.get_attr("population", indices=[0])[0]
        result = nash_gap(
            self.model, population, self.method, self.n_particles, self.eval_seed, rl_timesteps=self.rl_timesteps
        )
        self.history.append((self.num_timesteps, result))
        self.logger.record("mfg/nash_gap", result.gap)
        self.logger.record("mfg/relative_nash_gap", result.relative_gap)
        self.logger.record("mfg/nash_gap_se", result.standard_error)
        self.logger.record("mfg/br_return", result.best_response_return)
        self.logger.record("mfg/policy_return", result.policy_return)
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            print(f"step {self.num_timesteps}: Nash gap {result.gap:.4g} (relative {result.relative_gap:.4g})")
        return result


class StopTrainingOnNashGap(NashGapCallback):
    """A :class:`NashGapCallback` that stops training once the (relative, by default) gap is below ``threshold``."""

    def __init__(self, threshold: float, relative: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        self.threshold, self.relative = threshold, relative

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq:
            return True
        result = self.evaluate()
        value = result.relative_gap if self.relative else result.gap
        return bool(value > self.threshold)
