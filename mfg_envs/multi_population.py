"""Several interacting populations: ``K`` particle populations coupled through a joint mean field.

Population ``k`` has its own model (state and action spaces, dynamics, reward), its own particles and
its own histogram; all share one clock. One step of the game, for every population at once:

1. population ``k`` maps its normalized actions to physical ones and measures its own mean field
   ``mu^k_n`` (or reads it from a frozen flow): :meth:`Population.own_mean_field`;
2. the joint mean field ``{name_k: mu^k_n}`` is formed;
3. population ``k`` pays its particles ``r^k(s, a, joint)`` and moves them, ``s' = F^k(s, a, joint, xi)``,
   then recomputes its histogram: :meth:`Population.advance`;
4. every agent of every population observes all ``K`` population entries, concatenated in the
   order of :attr:`MultiPopulationModel.names`.

Each population is a :class:`mfg_envs.core.Population` of its own model, so particles, histograms,
representations and frozen flows work exactly as with one population. A flow of the game is one
:class:`PopulationFlow` per population (its own features and its own mean field).

The multi-population Nash gap is per population: ``gap_k(pi) = J^k(pi_k; mu^pi) - min_pi' J^k(pi'; mu^pi)``,
population ``k``'s best response with every population's flow frozen (:func:`exact_nash_gaps`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfg_envs.core import (
    ConstantPolicy,
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    PopulationPolicy,
    check_actions,
    check_int,
    check_real,
    core_of,
)
from mfg_envs.equilibrium import AffinePolicy, BestResponse, NashGap, represent

JointMeanField = dict[str, MeanField]
"""``{population name: that population's mean field}``: what every population's reward and dynamics receive."""


class MultiPopulationModel(abc.ABC):
    """``K`` population models on one clock, and the game's exact solution where it exists.

    ``populations[k]`` is a :class:`MeanFieldModel` whose ``mean_field`` measures population ``k`` alone
    and whose ``reward``, ``transition`` and ``terminal_reward`` receive the :data:`JointMeanField`.
    Subclasses take every parameter as a keyword (per-population values as sequences in the order of
    ``names``) and set ``names`` and ``populations``.
    """

    names: tuple[str, ...]
    populations: tuple[MeanFieldModel, ...]

    @property
    def n_steps(self) -> int:
        return self.populations[0].n_steps

    @property
    def horizon(self) -> float:
        return self.populations[0].horizon

    @property
    def dt(self) -> float:
        return self.horizon / self.n_steps

    def index(self, population: str | int) -> int:
        """The index of a population given by name or index (``ValueError`` listing the names otherwise)."""
        if isinstance(population, str) and population in self.names:
            return self.names.index(population)
        is_index = isinstance(population, (int, np.integer)) and not isinstance(population, bool)
        if is_index and 0 <= population < len(self.names):
            return int(population)
        raise ValueError(f"population must be one of {self.names} or an index in [0, {len(self.names) - 1}]")

    def solve_equilibrium(self) -> MultiPopulationEquilibrium:
        """The exact multi-population equilibrium (games with a closed form override this)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no exact equilibrium; estimate its Nash gaps with RL best responses"
        )

    def best_response(self, population: int, flows: Sequence[PopulationFlow]) -> BestResponse:
        """Population ``population``'s exact best response to the frozen flows of all populations."""
        raise NotImplementedError(
            f"{type(self).__name__} has no exact best response; estimate its Nash gaps with RL best responses"
        )

    keywords = classmethod(MeanFieldModel.keywords.__func__)


def per_population(name: str, value: Any, n_populations: int) -> tuple[Any, ...]:
    """``value`` repeated for every population when it is a scalar, else checked to hold one entry per population."""
    if isinstance(value, (str, bytes)) or not (isinstance(value, Sequence) or np.ndim(value) > 0):
        return (value,) * n_populations
    if len(value) != n_populations:
        raise ValueError(
            f"{name} must be one value or a sequence of {n_populations} (one per population), got {value!r}"
        )
    return tuple(value)


def per_population_reals(name: str, value: Any, n_populations: int, low: float = -np.inf) -> list[float]:
    """:func:`per_population` of finite reals ``>= low`` (``ValueError`` naming ``name[k]`` otherwise)."""
    return [check_real(f"{name}[{k}]", v, low) for k, v in enumerate(per_population(name, value, n_populations))]


def check_matrix(name: str, value: Sequence[Sequence[float]], size: int) -> np.ndarray:
    """A finite ``size x size`` matrix, else ``ValueError`` naming ``name``."""
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (size, size) or not np.isfinite(matrix).all():
        raise ValueError(f"{name} must be a {size}x{size} matrix of finite reals (rows: populations), got {value!r}")
    return matrix


@dataclass(frozen=True)
class MultiPopulationEquilibrium:
    """The exact equilibrium: per population its policy, its return ``-J^k*`` and its exact flow (histograms)."""

    names: tuple[str, ...]
    policies: tuple[AffinePolicy, ...]
    expected_returns: tuple[float, ...]
    flows: tuple[PopulationFlow, ...]

    def flows_for(self, env: Any) -> tuple[PopulationFlow, ...]:
        """The equilibrium flows in ``env``'s population representation (histogram, KDE or moments)."""
        members = game_of(env).members
        return tuple(PopulationFlow(represent(f.population, m), f.mean_fields) for f, m in zip(self.flows, members))


@dataclass(frozen=True)
class MultiPopulationNashGap:
    """Per-population Nash gaps (:class:`NashGap` each, keyed by name) and their maximum."""

    gaps: dict[str, NashGap]

    @property
    def max_gap(self) -> float:
        return max(gap.gap for gap in self.gaps.values())

    @property
    def max_relative_gap(self) -> float:
        return max(gap.relative_gap for gap in self.gaps.values())


class MultiPopulation:
    """The particles of every population of a game, their shared clock and their joint observation.

    :param model: the game.
    :param n_particles: particles per population (one int for all, or one per population).
    :param representation: population representation of every population (``histogram``, ``moments``, ``kde``).
    """

    def __init__(
        self,
        model: MultiPopulationModel,
        n_particles: int | Sequence[int] = 1000,
        representation: str = "histogram",
        kde_bandwidth: float = 1.0,
    ) -> None:
        sizes = per_population("n_particles", n_particles, len(model.names))
        self.model = model
        self.members = tuple(
            Population(member, check_int("n_particles", size), representation, kde_bandwidth)
            for member, size in zip(model.populations, sizes)
        )
        self.representation, self.kde_bandwidth = representation, kde_bandwidth
        self.last_own_mean_fields: tuple[MeanField, ...] = ()
        self.terminal_own_mean_fields: tuple[MeanField, ...] = ()
        self._join_features()

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    @property
    def n_particles(self) -> tuple[int, ...]:
        return tuple(member.n_particles for member in self.members)

    @property
    def n_features(self) -> int:
        return sum(member.n_features for member in self.members)

    @property
    def time(self) -> float:
        return self.members[0].time

    @property
    def step_index(self) -> int:
        return self.members[0].step_index

    @property
    def done(self) -> bool:
        return self.members[0].done

    @property
    def frozen(self) -> bool:
        return self.members[0].flow is not None

    def set_policy(self, population: str | int, policy: PopulationPolicy | None) -> None:
        """Population policy of ``population`` (``None``: neutral); it sees the joint observation."""
        self.members[self.model.index(population)].set_policy(policy)

    def freeze(self, flows: Sequence[PopulationFlow] | None) -> None:
        """Play against one frozen flow per population from the next reset (``None``: unfreeze all)."""
        if flows is not None and len(flows) != len(self.members):
            raise ValueError(f"flows must hold one PopulationFlow per population ({len(self.members)})")
        for k, member in enumerate(self.members):
            member.freeze(None if flows is None else flows[k])

    def reset(self, rngs: Sequence[np.random.Generator], n_particles: Sequence[int | None] | None = None) -> None:
        """Draw every population's initial states from its own generator (``n_particles``: per-population override)."""
        sizes = n_particles or (None,) * len(self.members)
        for member, rng, size in zip(self.members, rngs, sizes):
            member.reset(rng, size)
        self._join_features()

    def step(self, normalized_actions: Sequence[np.ndarray], noises: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Advance every population with its particles' own actions; return each population's rewards."""
        own = tuple(member.own_mean_field(actions) for member, actions in zip(self.members, normalized_actions))
        joint = dict(zip(self.names, own))
        rewards = [member.advance(joint, noise) for member, noise in zip(self.members, noises)]
        self.last_own_mean_fields = own
        if self.done:
            self.terminal_own_mean_fields = tuple(member.own_terminal_mean_field() for member in self.members)
            terminal = dict(zip(self.names, self.terminal_own_mean_fields))
            rewards = [r + member.terminal_rewards(terminal) for r, member in zip(rewards, self.members)]
        self._join_features()
        return rewards

    def observation(self, population: int, indices: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """Batched observations of the selected particles of ``population``: own states, all populations."""
        return self.members[population].observation(indices, self.features)

    def policy_actions(self, population: int, indices: slice = slice(None)) -> np.ndarray:
        """Population ``population``'s policy on its selected particles (one batched call)."""
        return self.members[population].policy_actions(indices, self.features)

    def _join_features(self) -> None:
        self.features = np.concatenate([member.features for member in self.members])


def population_rngs(seed: int | None, n_populations: int) -> list[np.random.Generator]:
    """One independent generator per population from one seed: the same seed gives population ``k`` the same
    initial states and noise in every game built with it (common random numbers)."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_populations)]


def rollout_joint(
    game: MultiPopulation, policies: Sequence[PopulationPolicy], seed: int | None
) -> tuple[tuple[PopulationFlow, ...], list[np.ndarray]]:
    """One episode with population ``k`` following ``policies[k]`` (all of the game's particles, generators from
    :func:`population_rngs`); return each population's flow and its particles' returns."""
    rngs = population_rngs(seed, len(game.members))
    game.reset(rngs)
    features = [[member.features.copy()] for member in game.members]
    mean_fields: list[list[MeanField]] = [[] for _ in game.members]
    returns = [np.zeros(member.states.shape[0]) for member in game.members]
    while not game.done:  # a loop over time steps
        actions, noises = [], []
        for k, (member, policy, rng) in enumerate(zip(game.members, policies, rngs)):
            n = member.states.shape[0]
            actions.append(check_actions(policy(game.observation(k)), (n, member.model.action_dim), "policy output"))
            noises.append(member.model.noise(n, rng))
        for k, rewards in enumerate(game.step(actions, noises)):
            returns[k] += rewards
            mean_fields[k].append(game.last_own_mean_fields[k])
            features[k].append(game.members[k].features.copy())
    for k, terminal in enumerate(game.terminal_own_mean_fields):
        mean_fields[k].append(terminal)
    flows = tuple(PopulationFlow(np.stack(f), tuple(m)) for f, m in zip(features, mean_fields))
    return flows, returns


def game_of(env: Any) -> MultiPopulation:
    """The multi-population core behind ``env`` (a ``gym.make`` env, wrappers included, a front end, or a core)."""
    return core_of(env, "game", MultiPopulation, "a multi-population mfg_envs environment")


def neutral_policies(model: MultiPopulationModel) -> list[PopulationPolicy]:
    """The neutral policy (normalized action 0) of every population."""
    return [ConstantPolicy(np.zeros(member.action_dim)) for member in model.populations]


def ghost_game(
    game: MultiPopulation, population: int, n_particles: int, flows: Sequence[PopulationFlow]
) -> MultiPopulation:
    """``n_particles`` agents of ``population`` (one particle for each other population) against the frozen ``flows``
    of every population: the best-response problem of ``population``."""
    sizes = [n_particles if j == population else 1 for j in range(len(game.members))]
    ghosts = MultiPopulation(game.model, sizes, game.representation, game.kde_bandwidth)
    ghosts.freeze(flows)
    return ghosts


def frozen_flows_returns(
    game: MultiPopulation,
    flows: Sequence[PopulationFlow],
    population: int,
    policy: PopulationPolicy,
    n_agents: int,
    seed: int,
) -> np.ndarray:
    """Returns of ``n_agents`` agents of ``population`` playing ``policy`` against the frozen ``flows``. Seeded as the
    game (:func:`population_rngs`): population ``k``'s initial states and noise depend on ``seed`` only, so policies
    compare with common random numbers."""
    policies = neutral_policies(game.model)
    policies[population] = policy
    return rollout_joint(ghost_game(game, population, n_agents, flows), policies, seed)[1][population]


def _gap_replicate(
    template: MultiPopulation, policies: Sequence[PopulationPolicy], n_particles: int, seed: int
) -> np.ndarray:
    """``(K, 3)``: per population ``(gap, policy return, best-response return)`` of one replicate."""
    game = MultiPopulation(template.model, n_particles, template.representation, template.kde_bandwidth)
    flows, policy_returns = rollout_joint(game, policies, seed)
    rows = []
    for k, returns in enumerate(policy_returns):
        best_response = template.model.best_response(k, flows).policy
        best = frozen_flows_returns(template, flows, k, best_response, n_particles, seed)
        rows.append([(best - returns).mean(), returns.mean(), best.mean()])
    return np.array(rows)


def exact_nash_gaps(
    env: Any,
    policies: Sequence[PopulationPolicy] | Mapping[str, PopulationPolicy],
    n_particles: int = 10_000,
    seed: int = 0,
    relative: bool = True,
    n_replicates: int = 4,
) -> MultiPopulationNashGap:
    """Exact Nash gap of every population with common random numbers (as :func:`mfg_envs.equilibrium.exact_nash_gap`).

    Per replicate (seeds ``seed, seed + 1, ...``): ``n_particles`` particles per population play ``policies``
    and their flows ``mu^pi`` are recorded; then, for each population ``k``, a ghost cohort seeded like
    population ``k`` (same initial states, same noise) plays population ``k``'s exact best response with
    every flow frozen. ``gap_k = mean(R_BR - R_pi)`` over replicates; its standard error is the replicates'
    spread. ``relative=True`` divides each by the gap of population ``k`` when every population plays the
    neutral policy (normalized action 0).
    """
    template = game_of(env)
    model = template.model
    if isinstance(policies, Mapping):
        policies = [policies[name] for name in model.names]
    if len(policies) != len(model.names):
        raise ValueError(f"policies must hold one policy per population {model.names}")
    if n_replicates < 2:
        raise ValueError(f"n_replicates must be an integer >= 2 (its spread gives the error), got {n_replicates!r}")
    runs = np.stack([_gap_replicate(template, policies, n_particles, seed + r) for r in range(n_replicates)])
    means = runs.mean(axis=0)
    errors = runs[:, :, 0].std(axis=0, ddof=1) / np.sqrt(n_replicates)
    scale = np.full(len(model.names), np.nan)
    if relative:
        scale = _gap_replicate(template, neutral_policies(model), n_particles, seed)[:, 0]
    return MultiPopulationNashGap(
        {
            name: NashGap(
                gap=float(means[k, 0]),
                standard_error=float(errors[k]),
                policy_return=float(means[k, 1]),
                best_response_return=float(means[k, 2]),
                relative_gap=float(means[k, 0] / scale[k]),
            )
            for k, name in enumerate(model.names)
        }
    )
