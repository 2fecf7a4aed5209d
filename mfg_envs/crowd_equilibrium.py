"""A numerical reference equilibrium of the walled crowds, ``MFGCrowd-v0`` and ``MFGCrowdMulti-v0``.

Neither game has a closed form (:func:`mfg_envs.exactly_solvable` stays false for both); this module computes an
equilibrium numerically and model-based (docs/models.md, section "Reference equilibrium of the walled crowds").
Every best response is the dynamic program of :mod:`mfg_envs.crowd_dp`; every flow is the histograms of
``n_particles`` seeded particles per population (:func:`mfg_envs.game.population_rngs`: the same initial states
and noise in every simulation, common random numbers). Fictitious play on the flows, all populations at once:

- ``mu_bar_0 = mu^{pi_neutral}``: the flows when every particle plays the neutral policy (normalized action 0);
- ``pi_j = BR(mu_bar_j)``: population ``k``'s dp best response to the joint averaged flow ``mu_bar_j``;
- ``mu_j = mu^{pi_j}``: the flows when every population ``k`` plays ``pi_j^k``;
- ``gap_j^k = R^k(BR^k(mu_j); mu_j) - R^k(pi_j^k; mu_j)``: one replicate of the dp Nash gap of ``pi_j`` (seed
  ``seed``), scaled by the neutral policy's, ``gap_neutral^k = R^k(pi_0^k; mu_bar_0) - R^k(pi_neutral; mu_bar_0)``;
- stop at the first ``j`` with ``max_k gap_j^k / gap_neutral^k <= tolerance``; after ``max_iterations``
  without, keep the ``j`` of the smallest ratio (with a warning);
- ``mu_bar_{j+1} = mu_bar_j + (mu_j - mu_bar_j) / (j + 2)``: ``mu_bar_j`` is the mean of the neutral flow and
  of ``mu_0, ..., mu_{j-1}``.

The reference is the policy ``pi_j`` and its own flow ``mu_j`` (the equilibrium pair: what a Nash gap is measured
on); ``pi_j`` is the dp best response to ``mu_bar_j``, which still holds ``1 / (j + 1)`` of the neutral flow and
the early iterates, and is only a best response to ``mu_j`` to within the measured gap. It is a numerical object
(``numerical = True``): its dp Nash gap is measured as ``nash_gap(policy, env, method="dp")`` measures it
(:func:`mfg_envs.nash_gap.crn_nash_gap`, ``n_replicates`` replicates, relative to the neutral policy's gap), and its
``expected_return`` is the Monte Carlo mean return of the ``n_particles`` particles playing ``pi_j`` on their own
flow, with its standard error.

Cache: the flows ``mu_j`` and ``mu_bar_j`` (one histogram per step and population) and the numbers, keyed by the
model's parameters and the solver's settings, in ``$MFG_ENVS_CACHE`` (default ``~/.cache/mfg_envs``). Loading
recomputes the policies by one dp solve per population against ``mu_bar_j`` (deterministic).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mfg_envs.core import MeanFieldModel, PopulationFlow, check_int, check_real
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPBestResponse, DPPolicy, DPResolution
from mfg_envs.crowd_multi import CrowdGroup, CrowdMultiModel
from mfg_envs.equilibrium import Equilibrium, GameEquilibrium
from mfg_envs.game import (
    Game,
    GameModel,
    SinglePopulationGame,
    as_game_model,
    frozen_flows_returns,
    game_of,
    model_name,
    neutral_policies,
    rollout,
)
from mfg_envs.nash_gap import NashGap, PopulationGap, crn_nash_gap

LOGGER = logging.getLogger(__name__)
#: The environment variable naming the cache folder (default ``~/.cache/mfg_envs``).
CACHE_VARIABLE = "MFG_ENVS_CACHE"
#: Part of every cache key: raise it when the solver's results change, so that older entries are not read.
CACHE_FORMAT = 2


@dataclass(frozen=True)
class ReferenceSettings:
    """The solver's settings; with the model's parameters, the cache key.

    :param resolution: the dp grid of every best response and of the reported Nash gap.
    :param n_particles: particles per population of every simulated flow and of the reported Nash gap.
    :param seed: seed of the simulated flows and of the reported Nash gap's first replicate.
    :param tolerance: stop once every population's one-replicate gap is at most this fraction of its neutral gap
        (default: half the 1 % target, a margin for the spread between the replicates of the reported gap).
    :param max_iterations: best responses to averaged flows at most.
    :param n_replicates: replicates of the reported dp Nash gap.
    """

    resolution: DPResolution = DEFAULT_RESOLUTION
    n_particles: int = 10_000
    seed: int = 0
    tolerance: float = 0.005
    max_iterations: int = 30
    n_replicates: int = 4

    def __post_init__(self) -> None:
        check_int("n_particles", self.n_particles, 2)
        check_int("seed", self.seed, 0)
        check_real("tolerance", self.tolerance, 0.0, low_open=True)
        check_int("max_iterations", self.max_iterations)
        check_int("n_replicates", self.n_replicates, 2)


DEFAULT_SETTINGS = ReferenceSettings()


@dataclass(frozen=True)
class ReferenceReport:
    """What a reference solve measured (cached beside the flows).

    ``gap``: the dp Nash gap of the reference policies (``method="dp"``, relative to the neutral policy's gap);
    ``history[j]``: the one-replicate relative gaps ``gap_j^k / gap_neutral^k`` of ``pi_j``, one per population
    (the stopping rule's numbers); ``converged``: whether one of them met the tolerance; ``seconds``: the wall time
    of the solve (not of a load).
    """

    gap: NashGap
    history: tuple[tuple[float, ...], ...]
    converged: bool
    seconds: float

    @property
    def neutral_gaps(self) -> dict[str, float]:
        """Per population, the dp Nash gap of the neutral policy that ``gap.relative_gap`` divides by."""
        return {name: figures.gap / figures.relative_gap for name, figures in self.gap.gaps.items()}

    @property
    def iterations(self) -> int:
        """Fictitious-play iterations run: best responses to averaged flows that were simulated and measured."""
        return len(self.history)


@dataclass(frozen=True)
class NumericalEquilibrium(Equilibrium):
    """The reference equilibrium of ``MFGCrowd-v0``: numerical, not exact (``numerical = True``).

    ``policy`` is the dp best response to the averaged flow of the iteration (module docstring); the flow is the
    policy's own (``n_particles`` particles: ``mean_fields[n]`` the densities per cell, ``histograms[n]`` the cell
    masses, ``n = 0..N``); ``expected_return`` is a Monte Carlo mean with ``standard_error``; ``report`` holds the
    dp Nash gap of the policy on that flow and the iteration's numbers.
    """

    standard_error: float
    report: ReferenceReport
    numerical: ClassVar[bool] = True


@dataclass(frozen=True)
class NumericalGameEquilibrium(GameEquilibrium):
    """The reference equilibrium of ``MFGCrowdMulti-v0``: numerical, not exact (``numerical = True``).

    Per population its dp best response to the joint averaged flow of the iteration, its Monte Carlo
    ``expected_returns`` with ``standard_errors`` and its own flow (histograms and densities per step) when every
    population plays its policy; ``report`` as for :class:`NumericalEquilibrium`.
    """

    standard_errors: tuple[float, ...]
    report: ReferenceReport
    numerical: ClassVar[bool] = True


@dataclass(frozen=True)
class ReferenceSolution:
    """What the cache stores, per population: the cell masses ``(N+1, n_bins**2)`` of the reference flow ``mu_j``
    (``histograms``) and of the averaged flow ``mu_bar_j`` the policies best-respond to (``averages``), the Monte
    Carlo returns and their standard errors; and the report."""

    histograms: tuple[np.ndarray, ...]
    averages: tuple[np.ndarray, ...]
    expected_returns: tuple[float, ...]
    standard_errors: tuple[float, ...]
    report: ReferenceReport


@dataclass(frozen=True)
class Iterate:
    """Iteration ``j``: the averaged flows ``mu_bar_j``, ``pi_j = BR(mu_bar_j)``, the flows ``mu_j`` of the particles
    playing ``pi_j`` and their returns, and the relative gaps of ``pi_j``."""

    averages: list[np.ndarray]
    policies: list[DPPolicy]
    flows: tuple[PopulationFlow, ...]
    returns: list[np.ndarray]
    relative_gaps: tuple[float, ...]


# --------------------------------------------------------------------------- which models
def game_model_of(model: Any) -> GameModel:
    """The game model of a model, a game model or anything :func:`mfg_envs.game.game_of` accepts."""
    return as_game_model(model) if isinstance(model, (MeanFieldModel, GameModel)) else game_of(model).model


def has_reference(model: Any) -> bool:
    """THE answer to "does this model or game have a numerical reference equilibrium?" (a model, a game model or
    anything :func:`mfg_envs.game.game_of` accepts): the walled crowd (``CrowdModel``, ``MFGCrowd-v0``) and the two
    crowds (``CrowdMultiModel``, ``MFGCrowdMulti-v0``); a lone ``CrowdGroup`` needs its game. Not the walled crowd
    with a random initial mean (``init_mean_std > 0``): its equilibrium depends on the episode's draw, which the
    fictitious play on one flow does not capture."""
    game_model = game_model_of(model)
    if isinstance(game_model, SinglePopulationGame):
        member = game_model.model
        return isinstance(member, CrowdModel) and not isinstance(member, CrowdGroup) and not member.init_mean_std.any()
    return isinstance(game_model, CrowdMultiModel)


def reference_game(model: Any) -> GameModel:
    """The game model of ``model`` (as :func:`has_reference` takes it); ``NotImplementedError`` without a reference."""
    game_model = game_model_of(model)
    if not has_reference(game_model):
        raise NotImplementedError(
            f"{model_name(game_model)} has no numerical reference equilibrium (the walled crowds MFGCrowd-v0 and"
            " MFGCrowdMulti-v0 have one, with a fixed initial law: init_mean_std = 0)"
        )
    return game_model


# --------------------------------------------------------------------------- the iteration
def flows_of(game_model: GameModel, histograms: Sequence[np.ndarray]) -> tuple[PopulationFlow, ...]:
    """One flow per population from its cell masses per step: the histogram features and the model's mean fields
    (the densities ``m_n = hist_n / cell area``)."""
    return tuple(
        PopulationFlow(
            masses.astype(np.float32),
            tuple(member.mean_field(np.empty((0, member.state_dim)), None, hist) for hist in masses),
        )
        for member, masses in zip(game_model.populations, histograms)
    )


def best_responses(game: Game, responder: DPBestResponse, flows: Sequence[PopulationFlow], seed: int) -> list[DPPolicy]:
    """Every population's dp best response to the joint frozen ``flows``."""
    return [responder(game, k, flows, seed) for k in range(len(game.names))]


def frozen_gaps(
    game: Game, flows: Sequence[PopulationFlow], responses: Sequence[DPPolicy], returns: Sequence[np.ndarray], seed: int
) -> np.ndarray:
    """``(K,)``: ``R^k(response_k; flows) - R^k(played; flows)`` per population, the played policy's particle returns
    ``returns[k]`` and the response's ghosts seeded alike (common random numbers)."""
    n = game.n_particles
    return np.array(
        [
            (frozen_flows_returns(game, flows, k, response, n[k], seed) - returns[k]).mean()
            for k, response in enumerate(responses)
        ]
    )


def fictitious_play(game: Game, settings: ReferenceSettings) -> tuple[Iterate, list[tuple[float, ...]]]:
    """The iteration of the module docstring on ``game``'s particles: the iterate it stops at (the first within the
    tolerance, else the one of the smallest relative gap) and every iteration's relative gaps."""
    responder, seed = DPBestResponse(settings.resolution), settings.seed
    neutral_flows, neutral_returns = rollout(game, neutral_policies(game.model), seed)
    averages = [flow.population.astype(float) for flow in neutral_flows]
    policies = best_responses(game, responder, flows_of(game.model, averages), seed)
    neutral_gaps = frozen_gaps(game, neutral_flows, policies, neutral_returns, seed)
    history: list[tuple[float, ...]] = []
    best: Iterate | None = None
    for j in range(settings.max_iterations):  # a loop over fictitious-play iterations
        flows, returns = rollout(game, policies, seed)
        responses = best_responses(game, responder, flows, seed)
        relative = tuple(float(g) for g in frozen_gaps(game, flows, responses, returns, seed) / neutral_gaps)
        history.append(relative)
        LOGGER.info("iteration %d: relative gaps %s", j, ", ".join(f"{gap:.4f}" for gap in relative))
        if best is None or max(relative) < max(best.relative_gaps):
            best = Iterate(averages, policies, flows, returns, relative)
        if max(relative) <= settings.tolerance:
            break
        averages = [average + (flow.population - average) / (j + 2) for average, flow in zip(averages, flows)]
        policies = best_responses(game, responder, flows_of(game.model, averages), seed)
    assert best is not None, "max_iterations >= 1"
    return best, history


def solve(game_model: GameModel, settings: ReferenceSettings) -> ReferenceSolution:
    """Run :func:`fictitious_play` and measure the dp Nash gap of the policies it stops at (``crn_nash_gap``)."""
    started = time.perf_counter()
    game = Game(game_model, settings.n_particles)
    best, history = fictitious_play(game, settings)
    converged = max(best.relative_gaps) <= settings.tolerance
    if not converged:
        warnings.warn(
            f"{model_name(game_model)}: no fictitious-play iterate within tolerance {settings.tolerance:g} after"
            f" {settings.max_iterations} iterations; keeping the best, relative gaps {best.relative_gaps}",
            RuntimeWarning,
            stacklevel=3,
        )
    gap = crn_nash_gap(
        game,
        best.policies,
        lambda: DPBestResponse(settings.resolution),
        "dp",
        settings.n_particles,
        settings.seed,
        relative=True,
        n_replicates=settings.n_replicates,
    )
    report = ReferenceReport(gap, tuple(history), converged, time.perf_counter() - started)
    n = settings.n_particles
    return ReferenceSolution(
        tuple(flow.population.astype(float) for flow in best.flows),
        tuple(best.averages),
        tuple(float(r.mean()) for r in best.returns),
        tuple(float(r.std(ddof=1) / math.sqrt(n)) for r in best.returns),
        report,
    )


def equilibrium_of(
    game_model: GameModel, solution: ReferenceSolution, settings: ReferenceSettings
) -> NumericalEquilibrium | NumericalGameEquilibrium:
    """The public object of a solution: its flows and the dp best responses to its averaged flows (one dp solve per
    population)."""
    flows = flows_of(game_model, solution.histograms)
    averages = flows_of(game_model, solution.averages)
    game = Game(game_model, settings.n_particles)
    policies = best_responses(game, DPBestResponse(settings.resolution), averages, settings.seed)
    if len(game_model.names) == 1:
        return NumericalEquilibrium(
            policies[0],
            solution.expected_returns[0],
            flows[0].mean_fields,
            solution.histograms[0],
            solution.standard_errors[0],
            solution.report,
        )
    return NumericalGameEquilibrium(
        game_model.names, tuple(policies), solution.expected_returns, flows, solution.standard_errors, solution.report
    )


# --------------------------------------------------------------------------- the cache
def cache_folder() -> Path:
    """``$MFG_ENVS_CACHE``, else ``~/.cache/mfg_envs``."""
    return Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "mfg_envs")


def plain(value: Any) -> Any:
    """``value`` as JSON data: arrays and tuples as lists, numpy scalars as Python numbers, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): plain(entry) for key, entry in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(entry) for entry in value]
    return value.item() if isinstance(value, np.generic) else value


def cache_key(game_model: GameModel, settings: ReferenceSettings) -> dict[str, Any]:
    """Every population's model class and parameters, the population names, the settings and the format."""
    populations = [
        {"model": type(member).__name__, **{name: plain(getattr(member, name)) for name in member.keywords()}}
        for member in game_model.populations
    ]
    return {
        "format": CACHE_FORMAT,
        "names": list(game_model.names),
        "populations": populations,
        "settings": plain(settings),
    }


def cache_path(key: dict[str, Any]) -> Path:
    """``<cache folder>/crowd_reference/<hash of the key>.npz``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_folder() / "crowd_reference" / f"{digest}.npz"


def save_solution(game_model: GameModel, settings: ReferenceSettings, solution: ReferenceSolution) -> Path:
    """Write ``solution`` under its key (atomically: a temporary file, then a rename); return its path."""
    key = cache_key(game_model, settings)
    path = cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = {
        "key": key,
        "expected_returns": solution.expected_returns,
        "standard_errors": solution.standard_errors,
        "report": plain(solution.report),
    }
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        np.savez_compressed(
            file,
            histograms=np.stack(solution.histograms),
            averages=np.stack(solution.averages),
            numbers=np.array(json.dumps(numbers)),
        )
    os.replace(temporary, path)
    return path


def load_solution(game_model: GameModel, settings: ReferenceSettings) -> ReferenceSolution | None:
    """The cached solution of ``game_model`` with ``settings``, or ``None`` (no entry, or an unreadable one)."""
    key = cache_key(game_model, settings)
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            histograms, averages = stored["histograms"], stored["averages"]
            numbers = json.loads(str(stored["numbers"]))
    except (OSError, ValueError, KeyError):
        return None
    if numbers["key"] != key:
        return None
    report, gap = numbers["report"], numbers["report"]["gap"]
    return ReferenceSolution(
        tuple(histograms),
        tuple(averages),
        tuple(numbers["expected_returns"]),
        tuple(numbers["standard_errors"]),
        ReferenceReport(
            NashGap(
                {name: PopulationGap(**figures) for name, figures in gap["gaps"].items()},
                gap["method"],
                gap["n_replicates"],
            ),
            tuple(tuple(relative) for relative in report["history"]),
            report["converged"],
            report["seconds"],
        ),
    )


# --------------------------------------------------------------------------- public entry points
def solve_reference(
    model: Any, settings: ReferenceSettings = DEFAULT_SETTINGS
) -> NumericalEquilibrium | NumericalGameEquilibrium:
    """The reference equilibrium of a walled crowd (a model, game model or env): loaded from the cache, else solved
    (tens of minutes at the defaults: docs/models.md) and cached. ``NotImplementedError`` for other models."""
    game_model = reference_game(model)
    solution = load_solution(game_model, settings)
    if solution is None:
        solution = solve(game_model, settings)
        save_solution(game_model, settings, solution)
    return equilibrium_of(game_model, solution, settings)


def cached_reference(
    model: Any, settings: ReferenceSettings = DEFAULT_SETTINGS
) -> NumericalEquilibrium | NumericalGameEquilibrium | None:
    """:func:`solve_reference` when the cache holds the solution (one dp solve per population), else ``None``:
    never solves."""
    game_model = reference_game(model)
    solution = load_solution(game_model, settings)
    return None if solution is None else equilibrium_of(game_model, solution, settings)


def cached_reference_flows(
    model: Any, settings: ReferenceSettings = DEFAULT_SETTINGS
) -> tuple[PopulationFlow, ...] | None:
    """The reference flows (one per population) when the cache holds them, else ``None``: no dp solve, no
    iteration (what a renderer can afford)."""
    game_model = reference_game(model)
    solution = load_solution(game_model, settings)
    return None if solution is None else flows_of(game_model, solution.histograms)
