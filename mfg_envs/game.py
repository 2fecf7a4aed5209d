"""The game: ``K`` particle populations on one clock, coupled through a joint mean field.

A single population is the case ``K = 1``: every front end, the rollout and the Nash gap go through
this one path. Population ``k`` has its own model (state and action spaces, dynamics, reward), its own
particles and its own histogram (:class:`mfg_envs.core.Population`); all share one clock. One step of
the game, for every population at once:

1. population ``k`` maps its normalized actions to physical ones and measures its own mean field
   ``mu^k_n`` (or reads it from a frozen flow): :meth:`Population.own_mean_field`;
2. the game forms what rewards and dynamics receive, :meth:`GameModel.joint_mean_field`: the
   ``{name_k: mu^k_n}`` mapping, or, for one population, its own mean field ``mu_n`` itself;
3. population ``k`` pays its particles ``r^k(s, a, joint)`` and moves them, ``s' = F^k(s, a, joint, xi)``,
   then recomputes its histogram: :meth:`Population.advance`;
4. every agent of every population observes all ``K`` population entries, concatenated in the
   order of :attr:`GameModel.names`.

A flow of the game is one :class:`PopulationFlow` per population (its own features and mean field).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

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
)

JointMeanField = dict[str, MeanField]
"""``{population name: that population's mean field}``: what a multi-population game's rewards and dynamics receive."""

Policies = PopulationPolicy | Sequence[PopulationPolicy] | Mapping[str, PopulationPolicy]
"""One policy (a single population), one per population in order, or a mapping population name -> policy."""

#: The name of the population of a single-population game.
SINGLE_POPULATION = "population"


@runtime_checkable
class ExactlySolvable(Protocol):
    """A model (one population) or a game with an exact equilibrium and exact best responses.

    A model defines ``solve_equilibrium() -> Equilibrium`` and ``best_response(flow) -> BestResponse``; a game
    ``solve_equilibrium()`` and ``best_response(population, flows) -> BestResponse``
    (:mod:`mfg_envs.equilibrium` holds the result types).
    """

    def solve_equilibrium(self) -> Any: ...

    def best_response(self, *args: Any) -> Any: ...


def exactly_solvable(model: Any) -> bool:
    """THE answer to "does this model or game have an exact equilibrium and best response?" (a model or game, its
    class, or anything :func:`game_of` accepts)."""
    if isinstance(model, type):  # a model or game class
        return issubclass(model, ExactlySolvable)
    if not isinstance(model, (MeanFieldModel, GameModel)):
        model = game_of(model).model
    return isinstance(model, ExactlySolvable)


class GameModel:
    """``K`` population models on one clock.

    ``populations[k]`` is a :class:`MeanFieldModel` whose ``mean_field`` measures population ``k`` alone
    and whose ``reward``, ``transition`` and ``terminal_reward`` receive :meth:`joint_mean_field`.
    Multi-population games subclass it, take every parameter as a keyword (per-population values as
    sequences in the order of ``names``) and set ``names`` and ``populations``; a game with an exact
    solution also defines ``solve_equilibrium()`` and ``best_response(population, flows)``
    (:func:`exactly_solvable`).
    """

    #: The populations' names, in the order of every per-population sequence and of the observation.
    names: tuple[str, ...]
    #: The populations' models, in the order of :attr:`names`.
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

    @property
    def flow_is_random(self) -> bool:
        """Whether a population's flow stays random after the initial draw (:attr:`MeanFieldModel.flow_is_random`)."""
        return any(member.flow_is_random for member in self.populations)

    def joint_mean_field(self, own: Sequence[MeanField]) -> Any:
        """What every population's reward and dynamics receive: ``{name_k: mu^k}``."""
        return dict(zip(self.names, own))

    def index(self, population: str | int) -> int:
        """The index of a population given by name or index (``ValueError`` listing the names otherwise)."""
        if isinstance(population, str) and population in self.names:
            return self.names.index(population)
        if (
            isinstance(population, (int, np.integer))
            and not isinstance(population, bool)
            and 0 <= population < len(self.names)
        ):
            return int(population)
        raise ValueError(f"population must be one of {self.names} or an index in [0, {len(self.names) - 1}]")

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """Names of the game's constructor keywords."""
        return tuple(inspect.signature(cls.__init__).parameters)[1:]


class SinglePopulationGame(GameModel):
    """The game of one population: its rewards and dynamics receive its own mean field ``mu_n``.

    Exactly solvable when its model is: then ``solve_equilibrium()`` is the model's and
    ``best_response(0, flows)`` the model's best response to ``flows[0]`` (see :func:`single_population_game`).
    """

    names = (SINGLE_POPULATION,)

    def __init__(self, model: MeanFieldModel) -> None:
        self.populations = (model,)

    @property
    def model(self) -> MeanFieldModel:
        return self.populations[0]

    def joint_mean_field(self, own: Sequence[MeanField]) -> MeanField:
        return own[0]


class ExactSinglePopulationGame(SinglePopulationGame):
    """:class:`SinglePopulationGame` of an exactly solvable model (its solvers, seen as the game's)."""

    def solve_equilibrium(self) -> Any:
        return self.model.solve_equilibrium()  # type: ignore[attr-defined]

    def best_response(self, population: int, flows: Sequence[PopulationFlow]) -> Any:
        return self.model.best_response(flows[0])  # type: ignore[attr-defined]


def single_population_game(model: MeanFieldModel) -> SinglePopulationGame:
    """The ``K = 1`` game of ``model``, exactly solvable exactly when the model is."""
    return ExactSinglePopulationGame(model) if exactly_solvable(model) else SinglePopulationGame(model)


def as_game_model(model: GameModel | MeanFieldModel) -> GameModel:
    """A game model as it is, a single population's model as its ``K = 1`` game."""
    return model if isinstance(model, GameModel) else single_population_game(model)


def model_name(model: GameModel) -> str:
    """The class name of a game's model, or of its one population's model."""
    return type(model.populations[0] if isinstance(model, SinglePopulationGame) else model).__name__


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


class Game:
    """The particles of every population of a game, their shared clock and their joint observation.

    :param model: the game (a single population's model is taken as its ``K = 1`` game).
    :param n_particles: particles per population (one int for all, or one per population).
    :param representation: population representation of every population (``histogram``, ``moments``, ``kde``).
    :param kde_bandwidth: the ``kde`` representation's bandwidth, in bins.
    """

    def __init__(
        self,
        model: GameModel | MeanFieldModel,
        n_particles: int | Sequence[int] = 1000,
        representation: str = "histogram",
        kde_bandwidth: float = 1.0,
    ) -> None:
        model = as_game_model(model)
        sizes = per_population("n_particles", n_particles, len(model.names))
        members = [
            Population(member, check_int("n_particles", size), representation, kde_bandwidth)
            for member, size in zip(model.populations, sizes)
        ]
        self._attach(model, members)

    @classmethod
    def of(cls, population: Population) -> Game:
        """The ``K = 1`` game whose one member IS ``population`` (its particles, policy and frozen flow)."""
        game = cls.__new__(cls)
        game._attach(single_population_game(population.model), [population])
        return game

    def _attach(self, model: GameModel, members: Sequence[Population]) -> None:
        self.model = model
        self.members = tuple(members)
        self.representation, self.kde_bandwidth = members[0].representation, members[0].kde_bandwidth
        self.generators: list[np.random.Generator] | None = None
        self.last_own_mean_fields: tuple[MeanField, ...] = ()
        self.terminal_own_mean_fields: tuple[MeanField, ...] = ()
        self._join_features()

    def clone(self, n_particles: int | Sequence[int] | None = None) -> Game:
        """A fresh game of the same model and representation (``n_particles``: default the same sizes)."""
        sizes = self.n_particles if n_particles is None else n_particles
        return Game(self.model, sizes, self.representation, self.kde_bandwidth)

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

    @property
    def started(self) -> bool:
        return self.members[0].states.shape[0] > 0

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
        """Draw every population's initial states from its own generator (``n_particles``: per-population override);
        the generators are kept as ``generators`` (the noise of the episode's steps comes from them)."""
        self.generators = list(rngs)
        sizes = n_particles or (None,) * len(self.members)
        for member, rng, size in zip(self.members, rngs, sizes):
            member.reset(rng, size)
        self._join_features()

    def step(self, normalized_actions: Sequence[np.ndarray], noises: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Advance every population with its particles' own actions; return each population's rewards."""
        own = tuple(member.own_mean_field(actions) for member, actions in zip(self.members, normalized_actions))
        joint = self.model.joint_mean_field(own)
        rewards = [member.advance(joint, noise) for member, noise in zip(self.members, noises)]
        self.last_own_mean_fields = own
        if self.done:
            self.terminal_own_mean_fields = tuple(member.own_terminal_mean_field() for member in self.members)
            terminal = self.model.joint_mean_field(self.terminal_own_mean_fields)
            rewards = [r + member.terminal_rewards(terminal) for r, member in zip(rewards, self.members)]
        self._join_features()
        return rewards

    def observation(self, population: int, indices: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """Batched observations of the selected particles of ``population``: own states, all populations."""
        return self.members[population].observation(indices, self.features)

    def policy_actions(self, population: int, indices: slice = slice(None)) -> np.ndarray:
        """Population ``population``'s policy on its selected particles (one batched call)."""
        return self.members[population].policy_actions(indices, self.features)

    def policies_in_order(self, policies: Policies) -> list[PopulationPolicy]:
        """One policy per population, in the game's order: from a sequence, a ``{name: policy}`` mapping (a missing
        population plays its current policy) or, for a single population, one callable."""
        if isinstance(policies, Mapping):
            unknown = sorted(set(policies) - set(self.names))
            if unknown:
                raise ValueError(f"unknown population(s) {unknown}; the populations are {self.names}")
            return [policies.get(name, member.policy) for name, member in zip(self.names, self.members)]
        if callable(policies):
            if len(self.members) != 1:
                raise ValueError(f"policies must map each population {self.names} to a policy, got one callable")
            return [policies]
        if isinstance(policies, (str, bytes)) or not isinstance(policies, Sequence):
            raise ValueError(f"policies must be a callable, a sequence or a mapping, got {type(policies).__name__}")
        if len(policies) != len(self.members):
            raise ValueError(f"policies must hold one policy per population {self.names}")
        return list(policies)

    def _join_features(self) -> None:
        self.features = np.concatenate([member.features for member in self.members])


def population_rngs(seed: int | None, n_populations: int) -> list[np.random.Generator]:
    """One independent generator per population from one seed: the same seed gives population ``k`` the same
    initial states and noise in every game built with it (common random numbers). A single population draws
    from ``default_rng(seed)`` itself, as a Gymnasium env seeded with ``seed`` does."""
    if n_populations == 1:
        return [np.random.default_rng(seed)]
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_populations)]


def rollout(
    game: Game,
    policies: Policies,
    seed: int | None,
    discounts: Sequence[float] | None = None,
) -> tuple[tuple[PopulationFlow, ...], list[np.ndarray]]:
    """One episode of all of ``game``'s particles, population ``k`` following its policy (generators from
    :func:`population_rngs`); return each population's flow ``mu_0..mu_N`` and its particles' returns
    ``sum_n gamma_k^n r_n`` (``discounts``: one ``gamma_k`` in ``[0, 1]`` per population; default 1, the game's
    undiscounted return)."""
    chosen = game.policies_in_order(policies)
    gammas = np.ones(len(game.members)) if discounts is None else np.asarray(discounts, dtype=np.float64)
    if gammas.shape != (len(game.members),) or not np.all((gammas >= 0) & (gammas <= 1)):
        raise ValueError(f"discounts must be one value in [0, 1] per population ({len(game.members)}), got {discounts}")
    rngs = population_rngs(seed, len(game.members))
    game.reset(rngs)
    features = [[member.features.copy()] for member in game.members]
    mean_fields: list[list[MeanField]] = [[] for _ in game.members]
    returns = [np.zeros(member.states.shape[0]) for member in game.members]
    weights = np.ones(len(game.members))  # gamma_k^n at step n
    while not game.done:  # a loop over time steps
        actions, noises = [], []
        for k, (member, policy, rng) in enumerate(zip(game.members, chosen, rngs)):
            n = member.states.shape[0]
            actions.append(check_actions(policy(game.observation(k)), (n, member.model.action_dim), "policy output"))
            noises.append(member.model.noise(n, rng))
        for k, rewards in enumerate(game.step(actions, noises)):
            returns[k] += weights[k] * rewards
            mean_fields[k].append(game.last_own_mean_fields[k])
            features[k].append(game.members[k].features.copy())
        weights *= gammas
    for k, terminal in enumerate(game.terminal_own_mean_fields):
        mean_fields[k].append(terminal)
    flows = tuple(PopulationFlow(np.stack(f), tuple(m)) for f, m in zip(features, mean_fields))
    return flows, returns


def game_of(env: Any) -> Game:
    """The game behind ``env``: a ``gym.make`` env (wrappers included), any front end, a SB3 vec env, or a core
    (a :class:`Population` is taken as the ``K = 1`` game around it)."""
    if isinstance(env, Game):
        return env
    if isinstance(env, Population):
        return Game.of(env)
    core = getattr(getattr(env, "unwrapped", env), "game", None)
    if not isinstance(core, Game):
        raise ValueError(f"env must be an mfg_envs environment, got {type(env).__name__}")
    return core


def neutral_policies(model: GameModel) -> list[PopulationPolicy]:
    """The neutral policy (normalized action 0) of every population."""
    return [ConstantPolicy(np.zeros(member.action_dim)) for member in model.populations]


def ghost_game(game: Game, population: int, n_particles: int, flows: Sequence[PopulationFlow]) -> Game:
    """``n_particles`` agents of ``population`` (one particle for each other population) against the frozen ``flows``
    of every population: the best-response problem of ``population``."""
    sizes = [n_particles if j == population else 1 for j in range(len(game.members))]
    ghosts = game.clone(sizes)
    ghosts.freeze(flows)
    return ghosts


def frozen_flows_returns(
    game: Game, flows: Sequence[PopulationFlow], population: int, policy: PopulationPolicy, n_agents: int, seed: int
) -> np.ndarray:
    """Returns of ``n_agents`` agents of ``population`` playing ``policy`` against the frozen ``flows``. Seeded as the
    game (:func:`population_rngs`): population ``k``'s initial states and noise depend on ``seed`` only, so policies
    compare with common random numbers."""
    policies = neutral_policies(game.model)
    policies[population] = policy
    return rollout(ghost_game(game, population, n_agents, flows), policies, seed)[1][population]
