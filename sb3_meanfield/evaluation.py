"""The Nash gap of learned policies, one entry for every method and every game: :func:`nash_gap`.

``gap_k(pi) = R^k(BR_k; mu^pi) - R^k(pi_k; mu^pi) >= 0`` per population (returns; docs/models.md writes it in
costs), where ``mu^pi`` are the flows of the populations playing ``pi`` and ``BR_k`` population ``k``'s best
response to them, frozen; the game's gap is their maximum. The estimate, its common random numbers and its
replicates are :func:`mfg_envs.nash_gap.crn_nash_gap`; the best response is a method of :data:`METHODS`:

- ``"exact"``: the model's exact best response (:class:`mfg_envs.nash_gap.ExactBestResponse`);
- ``"dp"``: a dynamic-programming best response on a grid, for the crowd models (:mod:`mfg_envs.crowd_dp`);
- ``"rl"``: a fresh agent of the policy's algorithm trained against the frozen flows (:class:`RLBestResponse`),
  so its gap is a LOWER bound of the true one (optimizer error and exploration only make the learned best
  response worse).

A new method is one class with the :class:`mfg_envs.nash_gap.BestResponder` interface and one entry of
:data:`METHODS`. :func:`gap_method` says which method a game has (exact, else dp, else none but the RL bound);
the relative gap's scale, the neutral policy's gap, depends on the game only and is computed once
(:func:`~mfg_envs.nash_gap.neutral_gaps`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from mfg_envs.core import MeanFieldModel, PopulationFlow, PopulationPolicy
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPResolution, dp_solvable
from mfg_envs.game import (
    Game,
    GameModel,
    Policies,
    exactly_solvable,
    game_of,
    ghost_game,
    model_name,
    population_rngs,
    rollout,
)
from mfg_envs.nash_gap import (
    CACHED_METHODS,
    BestResponder,
    NashGap,
    cached_neutral_scale,
    crn_nash_gap,
    model_responder,
    with_relative_gaps,
)
from sb3_meanfield.common.vec_env import ModelPolicy, PopulationVecEnv, check_model_spaces


def as_policy(
    policy: BaseAlgorithm | PopulationPolicy, game: Game | None = None, population: int = 0
) -> PopulationPolicy:
    """Accept an SB3 model (whose spaces must be those of ``population`` of ``game``, when given) or a callable
    ``obs -> normalized actions``."""
    if isinstance(policy, BaseAlgorithm):
        if game is not None:
            check_model_spaces(policy, game, population)
        return ModelPolicy(policy)
    if not callable(policy):
        raise ValueError(f"policy must be an SB3 model or a callable obs -> actions, got {type(policy).__name__}")
    return policy


def critic_value(model: BaseAlgorithm, observations: dict[str, np.ndarray]) -> float:
    """``mean_i Q_1(s^i, mu(s^i, m), m)``: the first critic at the deterministic policy's actions."""
    device = model.device
    critic = cast("TD3 | SAC", model).critic  # SB3's critic interface (DDPG is a TD3); BaseAlgorithm declares none
    with th.no_grad():
        q_values = critic(
            {key: th.tensor(np.asarray(value, dtype=np.float32), device=device) for key, value in observations.items()},
            th.tensor(ModelPolicy(model)(observations), dtype=th.float32, device=device),
        )[0]
    return float(q_values.mean())


def critic_discount(model: BaseAlgorithm) -> float:
    """The ``gamma`` the model's critic discounts by (SB3's off-policy actor-critics; BaseAlgorithm declares none)."""
    return float(cast("TD3 | SAC", model).gamma)


def monte_carlo_mean(returns: np.ndarray) -> tuple[float, float]:
    """The mean of the particles' ``returns`` and its standard error ``std / sqrt(n)``."""
    return float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(returns.size))


def overestimation(critic: float, returns: np.ndarray) -> dict[str, float]:
    """``critic_value``, the Monte Carlo ``realized_return`` (and its standard error) and ``q_overestimation``, their
    difference (positive: the critic is optimistic). ``returns`` are discounted as the critic's (the model's
    ``gamma``)."""
    realized, error = monte_carlo_mean(returns)
    return {
        "critic_value": critic,
        "realized_return": realized,
        "realized_return_se": error,
        "q_overestimation": critic - realized,
    }


def critic_overestimation(model: BaseAlgorithm, env: Any, n_particles: int = 10_000, seed: int = 0) -> dict[str, float]:
    """How far the first critic's value of the initial states lies above the return the policy actually gets.

    ``n_particles`` particles all play the deterministic policy ``mu`` from one seeded episode;
    ``critic_value = mean_i Q_1(s_0^i, mu(s_0^i, m_0), m_0)``, ``realized_return = mean_i sum_n gamma^n r_n^i``
    (the same particles, Monte Carlo, discounted by the model's ``gamma`` as the critic's value is, with its standard
    error ``realized_return_se``) and ``q_overestimation = critic_value - realized_return`` (:func:`overestimation`).
    SAC's soft critic also counts its entropy bonus, so its figure includes ``alpha`` times the remaining entropy.
    """
    game = game_of(env).clone(n_particles)
    own = None
    if len(game.names) > 1:
        model_env = model.get_env()
        if model_env is None:
            raise ValueError("a model of a game of several populations needs its PopulationVecEnv (model.get_env())")
        own = model_env.get_attr("population", indices=[0])[0]
    population = next((k for k, member in enumerate(game_of(env).members) if member is own), 0)
    game.reset(population_rngs(seed, len(game.names)))
    critic = critic_value(model, game.observation(population))
    policies = {game.names[population]: ModelPolicy(model)}
    discounts = [critic_discount(model) if k == population else 1.0 for k in range(len(game.names))]
    returns = rollout(game, policies, seed, discounts)[1][population]  # same seed: same initial particles
    return overestimation(critic, returns)


def rl_best_response(
    model: BaseAlgorithm,
    env: Any,
    flows: PopulationFlow | Sequence[PopulationFlow],
    population: str | int = 0,
    total_timesteps: int = 320_000,
    seed: int = 0,
    n_learners: int = 64,
    **algo_kwargs: Any,
) -> BaseAlgorithm:
    """A fresh agent of ``model``'s algorithm and policy class trained as ``population``'s best response to ``flows``.

    ``n_learners`` agents of the population share its policy on a :class:`PopulationVecEnv` of a game whose
    populations are all frozen to ``flows`` (one flow per population; one population: one flow): exactly the
    best-response problem. ``total_timesteps`` counts their transitions.
    """
    game = game_of(env)
    k = game.model.index(population)
    frozen = (flows,) if isinstance(flows, PopulationFlow) else tuple(flows)
    venv = PopulationVecEnv(ghost_game(game, k, n_learners, frozen), k)
    venv.seed(seed)
    kwargs = {"policy_kwargs": model.policy_kwargs, "gamma": 1.0, "seed": seed, "verbose": 0, **algo_kwargs}
    return type(model)(model.policy_class, venv, **kwargs).learn(total_timesteps)


class RLBestResponse:
    """Population ``k``'s best response learned by a fresh agent of ``templates[k]``'s algorithm
    (:func:`rl_best_response`), trained once, on the first replicate's flows, and evaluated on every replicate
    with fresh noise (``fresh_noise``)."""

    fresh_noise = True

    def __init__(self, templates: Sequence[BaseAlgorithm], total_timesteps: int, rl_kwargs: dict[str, Any]) -> None:
        self.templates, self.total_timesteps, self.rl_kwargs = templates, total_timesteps, rl_kwargs
        self.trained: dict[int, PopulationPolicy] = {}

    def __call__(
        self,
        game: Game,
        population: int,
        flows: Sequence[PopulationFlow],
        seed: int,
        policies: Sequence[PopulationPolicy] | None = None,
    ) -> PopulationPolicy:
        """The learned best response to ``flows`` (it answers the flows: ``policies`` is not needed)."""
        if population not in self.trained:
            agent = rl_best_response(
                self.templates[population], game, flows, population, self.total_timesteps, seed, **self.rl_kwargs
            )
            self.trained[population] = ModelPolicy(agent)
        return self.trained[population]


def rl_method(templates: Sequence[BaseAlgorithm | None], options: dict[str, Any]) -> BestResponder:
    if any(template is None for template in templates):
        raise ValueError("method='rl' needs an SB3 model per population or an rl_template (its algorithm is trained)")
    return RLBestResponse(templates, options["rl_timesteps"], options["rl_kwargs"])  # type: ignore[arg-type]


#: Best-response methods: ``name -> factory(templates, options) -> BestResponder`` (one per estimate).
METHODS: dict[str, Callable[[Sequence[BaseAlgorithm | None], dict[str, Any]], BestResponder]] = {
    "exact": lambda templates, options: model_responder("exact"),
    "rl": rl_method,
    "dp": lambda templates, options: model_responder("dp", options["dp_resolution"]),
}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    return method


def gap_method(game: Any) -> str | None:
    """THE answer to "which best response gives this game's Nash gap?": ``"exact"`` where the model has exact best
    responses (:func:`~mfg_envs.game.exactly_solvable`), else ``"dp"`` where the crowd dynamic program covers it
    (:func:`mfg_envs.crowd_dp.dp_solvable`), else ``None`` (only ``"rl"``'s lower bound, a training, which no default
    pays for). ``game``: a model or game, its class (built with its default keywords), or anything
    :func:`~mfg_envs.game.game_of` accepts."""
    if exactly_solvable(game):
        return "exact"
    if isinstance(game, type):
        model = game()
    else:
        model = game if isinstance(game, (MeanFieldModel, GameModel)) else game_of(game).model
    return "dp" if dp_solvable(model) else None


def fit_resolution(resolution: DPResolution, model: Any) -> DPResolution:
    """``resolution`` on the crowd ``model`` (or game model): as it is where its velocity step is a whole multiple of
    the velocity shift between two accelerations, ``dt * 2 action_bound / (actions_per_axis - 1)``, as the dynamic
    program requires (the shipped crowds, ``dt = 0.1``, and the default grids); else with its velocity step rounded
    to the nearest such multiple (at least one) and its velocity range to a multiple of that step."""
    member = getattr(model, "populations", (model,))[0]
    shift = member.dt * 2 * member.action_bound / (resolution.actions_per_axis - 1)
    step = max(1, round(resolution.velocity_step / shift)) * shift
    if math.isclose(step, resolution.velocity_step, rel_tol=1e-9):
        return resolution
    span = max(1, round(resolution.velocity_range / step)) * step
    return dataclasses.replace(resolution, velocity_step=step, velocity_range=span)


AnyPolicy = BaseAlgorithm | PopulationPolicy


def nash_gap(
    policy: AnyPolicy | Sequence[AnyPolicy] | Mapping[str, AnyPolicy],
    env: Any,
    method: str = "exact",
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    n_replicates: int = 4,
    rl_timesteps: int = 320_000,
    rl_kwargs: dict[str, Any] | None = None,
    rl_template: BaseAlgorithm | None = None,
    dp_resolution: DPResolution | None = None,
) -> NashGap:
    """The Nash gap of ``policy`` on ``env``: one :class:`mfg_envs.NashGap` (per population ``gaps[name]``; as
    attributes the largest gap and its figures, with standard errors over ``n_replicates`` replicates).

    :param policy: an SB3 model or a callable ``obs -> normalized actions``; for several populations one per
        population, in order or by name (a population missing from a mapping plays its current policy).
    :param env: any mfg_envs env, core, :class:`PopulationVecEnv` or trainer.
    :param method: a key of :data:`METHODS`: ``"exact"`` (``NotImplementedError`` for a model without exact best
        responses) or ``"rl"`` (a best response per population trained for ``rl_timesteps`` transitions of 64
        agents, ``rl_kwargs`` to its algorithm, e.g. ``n_learners``; the algorithm is the population's model's,
        else ``rl_template``'s): a lower bound; or ``"dp"`` on the crowd models (a dynamic-programming best response
        on the grid ``dp_resolution``, :mod:`mfg_envs.crowd_dp`, one grid solve per population and replicate; by
        default :data:`~mfg_envs.crowd_dp.DEFAULT_RESOLUTION` fitted to the model's time step, :func:`fit_resolution`;
        ``NotImplementedError`` for other models; each population's ``value_estimate`` is the solver's own value
        beside the simulated return). :func:`gap_method` names the game's method.
    :param relative: also divide each gap by that population's gap when every population plays the neutral
        policy (normalized action 0), with the same method (``"exact"``, ``"dp"``: computed once per game and
        settings, :func:`~mfg_envs.nash_gap.neutral_gaps`).
    """
    check_method(method)
    game = game_of(env)
    if method == "exact" and not exactly_solvable(game.model):
        raise NotImplementedError(f"{model_name(game.model)} has no exact best response; use method='rl'")
    if method == "dp" and not dp_solvable(game.model):
        raise NotImplementedError(f"{model_name(game.model)} has no dynamic-programming best response (crowd models)")
    # policies_in_order only validates the container and reorders it: SB3 models pass through like callables
    chosen = game.policies_in_order(cast("Policies", [policy] if isinstance(policy, BaseAlgorithm) else policy))
    templates = [p if isinstance(p, BaseAlgorithm) else rl_template for p in chosen]
    resolution = None
    if method == "dp":
        resolution = fit_resolution(DEFAULT_RESOLUTION, game.model) if dp_resolution is None else dp_resolution
    options = {"rl_timesteps": rl_timesteps, "rl_kwargs": rl_kwargs or {}, "dp_resolution": resolution}
    policies = [as_policy(p, game, k) for k, p in enumerate(chosen)]
    cached = relative and method in CACHED_METHODS
    result = crn_nash_gap(
        game,
        policies,
        lambda: METHODS[method](templates, options),
        method,
        n_particles,
        seed,
        relative and not cached,
        n_replicates,
    )
    if not cached:
        return result
    return with_relative_gaps(result, cached_neutral_scale(game, method, n_particles, seed, resolution))


#: The coarse grid of the dp checks during training (:class:`NashGapCallback`), every field given: one position node
#: per cell edge, velocities in ``[-2, 2]`` by 0.2, 5 accelerations per axis.
TRAINING_RESOLUTION = DPResolution(nodes_per_cell=1, velocity_step=0.2, velocity_range=2.0, actions_per_axis=5)
#: :class:`NashGapCallback`'s defaults by method (where not listed, :func:`nash_gap`'s: 10,000 particles, 4
#: replicates): a dp gap solves one grid per population and replicate whatever the particles, so a check during
#: training takes 1,000 particles, 2 replicates and :data:`TRAINING_RESOLUTION` (3 s of CPU per check on
#: ``MFGCrowd-v0``, docs/sb3_meanfield.md).
CHECK_DEFAULTS: dict[str, dict[str, Any]] = {
    "dp": {"n_particles": 1000, "n_replicates": 2, "dp_resolution": TRAINING_RESOLUTION},
}


def check_defaults(method: str) -> dict[str, Any]:
    """``n_particles``, ``n_replicates`` and ``dp_resolution`` of a :class:`NashGapCallback` of ``method`` that
    leaves them unset: :data:`CHECK_DEFAULTS`, else :func:`nash_gap`'s."""
    defaults: dict[str, Any] = {"n_particles": 10_000, "n_replicates": 4, "dp_resolution": DEFAULT_RESOLUTION}
    return defaults | CHECK_DEFAULTS.get(check_method(method), {})


def as_resolution(value: DPResolution | Mapping[str, Any]) -> DPResolution:
    """A :class:`~mfg_envs.crowd_dp.DPResolution`, or one from a mapping of its fields (a YAML entry's)."""
    if isinstance(value, DPResolution):
        return value
    fields = tuple(field.name for field in dataclasses.fields(DPResolution))
    if not isinstance(value, Mapping) or not set(value) <= set(fields):
        raise ValueError(f"dp_resolution must be a DPResolution or a mapping of some of {fields}, got {value!r}")
    return DPResolution(**value)


class NashGapCallback(BaseCallback):
    """Log the Nash gap of the current policies every ``eval_freq`` calls.

    Records ``mfg/nash_gap``, ``mfg/relative_nash_gap``, ``mfg/nash_gap_se``, ``mfg/br_return`` and
    ``mfg/policy_return`` (the population with the largest gap: for one population, its own) and, for several
    populations, the same keys per population as ``<key>/<name>``; then dumps the logger at that step.
    ``history`` keeps ``(num_timesteps, NashGap)``. The policies are the trainer's models (a
    :class:`~sb3_meanfield.training.MultiPopulationTrainer`), else the model for its population and the current
    population policies of the others. ``n_particles``, ``n_replicates`` and ``dp_resolution`` default to
    :data:`CHECK_DEFAULTS` for the method, else to :func:`nash_gap`'s (``method="dp"``: a coarser grid, fewer
    particles and replicates than a final evaluation); the neutral policy's gap is computed once
    (:func:`~mfg_envs.nash_gap.neutral_gaps`). All keywords are plain data, so an rl_zoo3 YAML entry
    ``sb3_meanfield.NashGapCallback: {eval_freq: 5000, method: dp}`` builds it (``dp_resolution`` as a mapping of
    :class:`~mfg_envs.crowd_dp.DPResolution`'s fields; fitted to the model's time step, :func:`fit_resolution`).
    """

    def __init__(
        self,
        eval_freq: int = 5_000,
        method: str = "exact",
        n_particles: int | None = None,
        seed: int = 0,
        rl_timesteps: int = 320_000,
        n_replicates: int | None = None,
        relative: bool = True,
        dp_resolution: DPResolution | Mapping[str, Any] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be an integer >= 1, got {eval_freq!r}")
        defaults = check_defaults(method)
        self.eval_freq, self.method, self.eval_seed, self.rl_timesteps = eval_freq, method, seed, rl_timesteps
        self.n_particles = defaults["n_particles"] if n_particles is None else n_particles
        self.n_replicates = defaults["n_replicates"] if n_replicates is None else n_replicates
        self.dp_resolution = as_resolution(defaults["dp_resolution"] if dp_resolution is None else dp_resolution)
        self.relative = relative
        self.history: list[tuple[int, NashGap]] = []

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def current_policies(self) -> tuple[Game, list[AnyPolicy]]:
        """The game and its current policies (the trainer's models, or this model for its population)."""
        game = self.training_env.get_attr("game", indices=[0])[0]
        models = getattr(self.model, "models", None)
        if models is not None:
            return game, list(models)
        own = self.training_env.get_attr("population", indices=[0])[0]
        return game, [self.model if member is own else member.policy for member in game.members]

    def evaluate(self) -> NashGap:
        game, policies = self.current_policies()
        template = self.model if isinstance(self.model, BaseAlgorithm) else None
        resolution = fit_resolution(self.dp_resolution, game.model) if self.method == "dp" else None
        result = nash_gap(
            policies,
            game,
            self.method,
            n_particles=self.n_particles,
            seed=self.eval_seed,
            relative=self.relative,
            n_replicates=self.n_replicates,
            rl_timesteps=self.rl_timesteps,
            rl_template=template,
            dp_resolution=resolution,
        )
        self.history.append((self.num_timesteps, result))
        scopes = [("", result)] + (
            [(f"/{name}", gap) for name, gap in result.gaps.items()] if len(game.names) > 1 else []
        )
        for suffix, figures in scopes:
            self.logger.record(f"mfg/nash_gap{suffix}", figures.gap)
            self.logger.record(f"mfg/relative_nash_gap{suffix}", figures.relative_gap)
            self.logger.record(f"mfg/nash_gap_se{suffix}", figures.standard_error)
            self.logger.record(f"mfg/br_return{suffix}", figures.best_response_return)
            self.logger.record(f"mfg/policy_return{suffix}", figures.policy_return)
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            gap, relative = f"{result.gap:.4g}", f"{result.relative_gap:.4g}"
            print(f"step {self.num_timesteps}: {self.method} Nash gap {gap} (relative {relative})")
        return result


class StopTrainingOnNashGap(NashGapCallback):
    """A :class:`NashGapCallback` that stops training once the (relative, by default) gap is below ``threshold``."""

    def __init__(self, threshold: float, relative: bool = True, **kwargs: Any) -> None:
        super().__init__(relative=True, **kwargs)
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        self.threshold, self.use_relative = threshold, relative

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq:
            return True
        result = self.evaluate()
        value = result.relative_gap if self.use_relative else result.gap
        return bool(value > self.threshold)
