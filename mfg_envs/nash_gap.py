"""The Nash gap (exploitability) of population policies, estimated with common random numbers.

For a game of ``K`` populations (``K = 1``: one population) where population ``k`` plays ``pi_k``,

``gap_k(pi) = R^k(BR_k; mu^pi) - R^k(pi_k; mu^pi) >= 0``  (in returns; docs/models.md writes it in costs),

population ``k``'s best response with the flows ``mu^pi`` of every population frozen. The gap of the
game is ``max_k gap_k``. Per replicate (seeds ``seed, seed + 1, ...``):

1. ``n_particles`` particles per population play ``pi``; their flows ``mu^pi`` are recorded;
2. a best-response method (a :class:`BestResponder`) gives population ``k``'s best response to them;
3. a ghost cohort of population ``k``, seeded like the recorded population (same initial states, same
   noise: common random numbers), plays it against the frozen flows.

The reported gap is the mean over replicates and its standard error the replicates' spread,
``std / sqrt(n_replicates)``: the flow is estimated from the same particles, so the per-particle spread alone
would understate the error several-fold. The finite population adds a bias of order ``1/N``.

A best-response method is one object: :class:`ExactBestResponse` here (numpy only), the RL best response in
:mod:`sb3_meanfield.evaluation`. A method whose best response was fitted on the recorded noise (a learned one)
sets ``fresh_noise``: both the policy and the best response are then evaluated on noise never seen in the fit.

With common noise (:attr:`mfg_envs.core.MeanFieldModel.flow_is_random`) a recorded flow is one path of a random
flow: a best response to it would foresee the future common shocks. The best response then answers the policies
(step 2 receives them), as a feedback on the population (:mod:`mfg_envs.common_noise`); only the exact method
does, the others raise ``NotImplementedError``.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from mfg_envs.common_noise import common_noise_best_response
from mfg_envs.core import PopulationFlow, PopulationPolicy, check_int
from mfg_envs.game import Game, exactly_solvable, frozen_flows_returns, game_of, model_name, neutral_policies, rollout

#: Seed offset of the evaluation of a learned best response: noise never seen in its fit.
FRESH_NOISE_OFFSET = 1_000_003


@dataclass(frozen=True)
class PopulationGap:
    """One population's ``gap = best_response_return - policy_return``, its standard error over replicates,
    with ``relative=True`` ``relative_gap = gap / gap(neutral policy)``, and the best-response method's own value
    estimate of its best response where it has one (``dp``; else NaN), beside the simulated return."""

    gap: float
    standard_error: float
    policy_return: float
    best_response_return: float
    relative_gap: float = float("nan")
    value_estimate: float = field(default=float("nan"), compare=False)


@dataclass(frozen=True)
class NashGap:
    """The Nash gap of a game: ``gaps[name]`` per population and, as attributes, the figures of the population with
    the largest gap (for one population: its own). ``method`` names the best-response method."""

    gaps: dict[str, PopulationGap]
    method: str = "exact"
    n_replicates: int = field(default=0, compare=False)

    @property
    def worst(self) -> PopulationGap:
        """The population gap with the largest ``gap``."""
        return max(self.gaps.values(), key=lambda population: population.gap)

    @property
    def gap(self) -> float:
        """``max_k gap_k``."""
        return self.worst.gap

    @property
    def relative_gap(self) -> float:
        """``max_k gap_k / gap_k(neutral)``."""
        return max(population.relative_gap for population in self.gaps.values())

    @property
    def standard_error(self) -> float:
        return self.worst.standard_error

    @property
    def policy_return(self) -> float:
        return self.worst.policy_return

    @property
    def best_response_return(self) -> float:
        return self.worst.best_response_return

    def as_dict(self) -> dict[str, float]:
        """``gap``, ``standard_error``, ``policy_return``, ``best_response_return``, ``relative_gap`` (the worst
        population's) and, for several populations, ``<name>/<figure>`` for each."""
        keys = ("gap", "standard_error", "policy_return", "best_response_return", "relative_gap")
        result = {key: float(getattr(self, key)) for key in keys}
        if len(self.gaps) > 1:
            result |= {f"{name}/{key}": float(getattr(gap, key)) for name, gap in self.gaps.items() for key in keys}
        return result


class BestResponder(Protocol):
    """A best-response method: population ``population``'s best response to the frozen ``flows`` of ``game``
    (``seed``: the replicate's). ``fresh_noise``: see the module docstring."""

    fresh_noise: bool

    def __call__(
        self,
        game: Game,
        population: int,
        flows: Sequence[PopulationFlow],
        seed: int,
        policies: Sequence[PopulationPolicy] | None = None,
    ) -> PopulationPolicy:
        """The best response's policy (``policies``: those that made ``flows``; a game with common noise needs them)."""
        ...


class ExactBestResponse:
    """The model's own exact best response (Riccati recursion, per-step maximization) to the recorded flows; where
    the flow stays random after the initial draw (common noise), the best response to the policies as a feedback on
    the population (:func:`mfg_envs.common_noise.common_noise_best_response`: exact for a policy affine in
    ``(x, m)``, numerical for any other; computed once per population, as it does not depend on the replicate)."""

    fresh_noise = False

    def __init__(self) -> None:
        self.feedback: dict[int, PopulationPolicy] = {}

    def __call__(
        self,
        game: Game,
        population: int,
        flows: Sequence[PopulationFlow],
        seed: int,
        policies: Sequence[PopulationPolicy] | None = None,
    ) -> PopulationPolicy:
        if game.model.flow_is_random:
            if population not in self.feedback:
                self.feedback[population] = common_noise_best_response(game, population, policies, seed)
            return self.feedback[population]
        return game.model.best_response(population, flows).policy  # type: ignore[attr-defined]


def replicate_gaps(
    game: Game, policies: Sequence[PopulationPolicy], responder: BestResponder, n_particles: int, seed: int
) -> np.ndarray:
    """``(K, 4)``: per population ``(gap, policy return, best-response return, the responder's own value estimate of
    its best response (NaN when it gives none))`` of one replicate."""
    flows, policy_returns = rollout(game.clone(n_particles), policies, seed)
    evaluation_seed = seed + FRESH_NOISE_OFFSET if responder.fresh_noise else seed
    rows = []
    for k, recorded in enumerate(policy_returns):  # a loop over populations
        response = responder(game, k, flows, seed, policies)
        best = frozen_flows_returns(game, flows, k, response, n_particles, evaluation_seed)
        own = recorded
        if responder.fresh_noise:
            own = frozen_flows_returns(game, flows, k, policies[k], n_particles, evaluation_seed)
        estimate = getattr(response, "value_estimate", float("nan"))
        rows.append([(best - own).mean(), own.mean(), best.mean(), estimate])
    return np.array(rows)


def neutral_scale(game: Game, responder: BestResponder, n_particles: int, seed: int) -> np.ndarray:
    """Per population, the neutral policy's gap (normalized action 0 everywhere): the relative gap's scale.

    One replicate of seed ``seed`` by ``responder``; but where one population's flow is random over episodes and its
    model gives the neutral gap in closed form, averaged over the draws (``exact_gap``: the LQ family), that: one
    replicate would be the gap of one draw."""
    model = game.model.populations[0]
    if len(game.names) == 1 and model.random_population and hasattr(model, "exact_gap"):
        return np.array([model.exact_gap(neutral_policies(game.model)[0])])
    return replicate_gaps(game, neutral_policies(game.model), responder, n_particles, seed)[:, 0]


def crn_nash_gap(
    game: Game,
    policies: Sequence[PopulationPolicy],
    make_responder: Callable[[], BestResponder],
    method: str,
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    n_replicates: int = 4,
) -> NashGap:
    """The Nash gap of ``policies`` (one per population, in order) with the best responses of a responder from
    ``make_responder`` (see the module docstring); ``relative=True`` also divides each gap by that population's
    gap when every population plays the neutral policy (:func:`neutral_scale`, with a second responder)."""
    n_particles = check_int("n_particles", n_particles, 2)
    n_replicates = check_int("n_replicates", n_replicates, 2)
    if game.model.flow_is_random and method != "exact":
        raise NotImplementedError(
            f"method={method!r} answers one recorded flow, but with common noise the flow is random (the best response"
            " must be a feedback on the population); use method='exact'"
        )
    responder = make_responder()
    runs = np.stack([replicate_gaps(game, policies, responder, n_particles, seed + r) for r in range(n_replicates)])
    means = runs.mean(axis=0)
    errors = runs[:, :, 0].std(axis=0, ddof=1) / np.sqrt(n_replicates)
    scale = np.full(len(game.names), np.nan)
    if relative:
        scale = neutral_scale(game, make_responder(), n_particles, seed)
    gaps = {
        name: PopulationGap(
            gap=float(means[k, 0]),
            standard_error=float(errors[k]),
            policy_return=float(means[k, 1]),
            best_response_return=float(means[k, 2]),
            relative_gap=float(means[k, 0] / scale[k]),
            value_estimate=float(means[k, 3]),
        )
        for k, name in enumerate(game.names)
    }
    return NashGap(gaps, method, n_replicates)


#: Methods whose neutral-policy gap depends on the game and plain settings alone (an RL best response also depends on
#: its template and budget): :func:`neutral_gaps` caches it.
CACHED_METHODS = ("exact", "dp")


def model_responder(method: str, dp_resolution: Any = None) -> BestResponder:
    """The best responder of a model-based method (:data:`CACHED_METHODS`): ``"exact"`` (:class:`ExactBestResponse`)
    or ``"dp"`` (:class:`mfg_envs.crowd_dp.DPBestResponse` on the grid ``dp_resolution``)."""
    if method == "exact":
        return ExactBestResponse()
    if method == "dp":
        from mfg_envs.crowd_dp import DPBestResponse  # the crowd models' module, loaded when a dp gap is asked for

        return DPBestResponse(dp_resolution)
    raise ValueError(f"method must be one of {CACHED_METHODS} (the model-based methods), got {method!r}")


@functools.lru_cache(maxsize=32)
def neutral_gaps(
    model: bytes,
    representation: str,
    kde_bandwidth: float,
    method: str,
    n_particles: int,
    seed: int,
    dp: Any = None,
) -> tuple[float, ...]:
    """Per population, the gap by ``method`` when every population plays the neutral policy (normalized action 0):
    the relative gap's scale (:func:`neutral_scale`) of the game of the pickled ``model`` with that representation.

    Cached (least recently used, 32 entries) on all its arguments: the pickled model holds every parameter of the
    game, so a changed parameter is a new entry; ``dp`` is the dp grid (``None`` for the exact method). Call it
    through :func:`cached_neutral_scale`; a callback that checks the gap during training computes it once (a dp
    gap of the crowd: one grid solve per population)."""
    game = Game(pickle.loads(model), n_particles, representation, kde_bandwidth)
    gaps = neutral_scale(game, model_responder(method, dp), n_particles, seed)
    return tuple(float(gap) for gap in gaps)


def cached_neutral_scale(game: Game, method: str, n_particles: int, seed: int, dp: Any = None) -> tuple[float, ...]:
    """:func:`neutral_scale` of ``game`` by a method of :data:`CACHED_METHODS`, computed once per game (its model's
    parameters, representation, KDE bandwidth), method, ``n_particles``, ``seed`` and dp grid (:func:`neutral_gaps`)."""
    return neutral_gaps(
        pickle.dumps(game.model), game.representation, game.kde_bandwidth, method, n_particles, seed, dp
    )


def with_relative_gaps(result: NashGap, scale: Sequence[float]) -> NashGap:
    """``result`` with population ``k``'s ``relative_gap = gap / scale[k]`` (numpy division: 0 gives inf or NaN)."""
    gaps = {
        name: replace(gap, relative_gap=float(np.float64(gap.gap) / np.float64(value)))
        for (name, gap), value in zip(result.gaps.items(), scale)
    }
    return NashGap(gaps, result.method, result.n_replicates)


def exact_nash_gap(
    policy: PopulationPolicy | Sequence[PopulationPolicy] | Mapping[str, PopulationPolicy],
    env: Any,
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    n_replicates: int = 4,
) -> NashGap:
    """The exact Nash gap of ``policy`` on ``env`` (any mfg_envs env or core) with common random numbers.

    ``policy``: a callable ``obs -> normalized actions`` (one population), or one per population (a sequence in
    the order of the game's names, or a mapping by name). Exact best responses (:class:`ExactBestResponse`);
    ``NotImplementedError`` for a model without them. ``relative=True``: the neutral policy's gap is computed once per
    game and settings (:func:`cached_neutral_scale`).
    """
    game = game_of(env)
    if not exactly_solvable(game.model):
        raise NotImplementedError(
            f"{model_name(game.model)} has no exact best response; use nash_gap(policy, env, method='rl')"
        )
    policies = game.policies_in_order(policy)
    result = crn_nash_gap(game, policies, ExactBestResponse, "exact", n_particles, seed, False, n_replicates)
    if not relative:
        return result
    return with_relative_gaps(result, cached_neutral_scale(game, "exact", n_particles, seed))
