"""The population core shared by every model and every front end.

A mean field game here is a finite population of ``N`` particles, each moving under its own
action. One step of the core does, for all particles at once (numpy, no loop over agents):

1. map the normalized actions in ``[-1, 1]^d`` to physical actions (:meth:`MeanFieldModel.physical_action`);
2. compute the mean field of step ``n`` from all particles: the statistics the reward and the
   dynamics use (:meth:`MeanFieldModel.mean_field`), or read them from a frozen
   :class:`PopulationFlow`;
3. pay every particle its reward ``r(s_n^i, a_n^i, mu_n)``;
4. advance every particle, ``s_{n+1}^i = F(s_n^i, a_n^i, mu_n, xi_n^i)``, with its own noise ``xi``;
5. recompute the population histogram from all particles in ``O(N)`` (:func:`histogram`).

Model modules only supply dynamics, reward, spaces and histogram ranges; this module owns the
particles, the clock, the histogram and the population representation shown to agents.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MeanField = dict[str, Any]
"""Statistics of the population at one step that enter rewards and dynamics (model specific)."""

PopulationPolicy = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Maps a batched observation dict (``state``, ``population``, ``time``) to normalized actions."""

POPULATION_REPRESENTATIONS = ("histogram", "moments", "kde")


# --------------------------------------------------------------------------- validation
def check_int(name: str, value: Any, low: int = 1) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name`` and the range ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    low: float = -np.inf,
    high: float = np.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the stated interval, else raise ``ValueError``."""
    lo_bracket, hi_bracket = "(" if low_open else "[", ")" if high_open else "]"
    accepted = f"a finite real in {lo_bracket}{low:g}, {high:g}{hi_bracket}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {accepted}, got {value!r}") from None
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if not np.isfinite(x) or too_low or too_high:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return x


def check_time_grid(horizon: Any, n_steps: Any) -> tuple[float, int]:
    """``(T, N)`` with ``T > 0``, ``N >= 1`` and a representable step ``dt = T / N > 0``."""
    horizon, n_steps = check_real("horizon", horizon, 0.0, low_open=True), check_int("n_steps", n_steps)
    if not horizon / n_steps > 0.0:
        raise ValueError(f"horizon / n_steps must be a representable positive time step, got {horizon!r} / {n_steps}")
    return horizon, n_steps


def check_vector(name: str, value: Any, size: int, low: float = -np.inf, *, low_open: bool = False) -> np.ndarray:
    """Return ``value`` as a float vector of length ``size`` with finite entries above ``low``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (size,):
        raise ValueError(f"{name} must be a sequence of {size} finite reals, got {value!r}")
    for i, x in enumerate(arr):
        check_real(f"{name}[{i}]", x, low, low_open=low_open)
    return arr


#: Smallest accepted width of an interval a histogram covers (narrower ones overflow ``n_bins / width``).
MIN_WIDTH = 1e-100


def check_interval(name: str, value: Any) -> tuple[float, float]:
    """Return ``(low, high)`` with finite ``low < high`` (``high - low >= MIN_WIDTH``), else raise ``ValueError``."""
    if np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high) of finite reals with low < high, got {value!r}")
    low, high = check_real(f"{name}[0]", value[0]), check_real(f"{name}[1]", value[1])
    if not high - low >= MIN_WIDTH:
        raise ValueError(f"{name} must satisfy low < high with high - low >= {MIN_WIDTH:g}, got {value!r}")
    return low, high


def check_actions(actions: Any, shape: tuple[int, ...], name: str = "action") -> np.ndarray:
    """Validate normalized actions and clip them to ``[-1, 1]`` (Gymnasium's convention for Box actions).

    Wrong shapes and non-finite entries raise ``ValueError``; finite values outside the box are clipped.
    """
    arr = np.asarray(actions, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.size == 0:
        return arr
    low, high = arr.min(), arr.max()  # two reductions instead of an isfinite mask; NaN propagates
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return np.clip(arr, -1.0, 1.0) if low < -1.0 or high > 1.0 else arr


# --------------------------------------------------------------------------- histograms
def cell_index(values: np.ndarray, bounds: np.ndarray, n_bins: int) -> np.ndarray:
    """Flat index (C order, last axis fastest) of the grid cell holding each row of ``values`` (N, d).

    ``k = floor((x - lo) n_bins / (hi - lo))`` per axis, clipped to the edge cells, so values outside
    ``bounds`` count in the edge cells.
    """
    lo, hi = bounds[:, 0], bounds[:, 1]
    scaled = (values - lo) * (n_bins / (hi - lo))
    np.clip(scaled, 0, n_bins - 1, out=scaled)  # in floating point, so far-out values cannot overflow the cast
    cells = scaled.astype(np.intp)
    flat = cells[:, 0]
    for axis in range(1, values.shape[1]):
        flat = flat * n_bins + cells[:, axis]
    return flat


def histogram(values: np.ndarray, bounds: np.ndarray, n_bins: int) -> np.ndarray:
    """Normalized histogram of ``values`` (N, d) on a regular grid with ``n_bins`` bins per axis.

    ``m_k = #{i : s^i in cell k} / N`` (cells from :func:`cell_index`); the mass is always exactly 1.
    ``O(N)``: one ``bincount``.
    """
    counts = np.bincount(cell_index(values, bounds, n_bins), minlength=n_bins ** values.shape[1])
    return counts / values.shape[0]


def gaussian_smoothing(hist: np.ndarray, n_dims: int, n_bins: int, bandwidth: float) -> np.ndarray:
    """Binned Gaussian kernel density estimate: the histogram convolved with ``K_h`` along every axis.

    ``m_h(c) = sum_k m_k K_h(c - c_k)`` with ``h = bandwidth`` bins, renormalized to mass 1 on the grid.
    """
    offsets = np.arange(n_bins)
    kernel = np.exp(-0.5 * ((offsets[:, None] - offsets[None, :]) / bandwidth) ** 2)
    grid = hist.reshape((n_bins,) * n_dims)
    for axis in range(n_dims):
        grid = np.moveaxis(np.tensordot(kernel, grid, axes=([1], [axis])), 0, axis)
    return (grid / grid.sum()).ravel()


def histogram_moments(histograms: np.ndarray, bounds: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis mean and variance ``(T, d)`` of histograms ``(T, n_bins**d)`` on the grid ``bounds`` (``(d, 2)``).

    ``mean = sum_k m_k c_k``, ``var = sum_k m_k (c_k - mean)^2`` with ``c_k`` the cell centres: the same
    functional for particles and for an exact law, so the binning (edge cells hold the tails) cancels.
    """
    n_dims = bounds.shape[0]
    grids = np.reshape(histograms, (len(histograms), *(n_bins,) * n_dims))
    means, variances = [], []
    for axis, (low, high) in enumerate(bounds):
        centres = low + (np.arange(n_bins) + 0.5) * (high - low) / n_bins
        marginal = grids.sum(axis=tuple(a + 1 for a in range(n_dims) if a != axis))
        mass = marginal.sum(axis=1)
        mean = marginal @ centres / mass
        means.append(mean)
        variances.append((marginal * (centres[None, :] - mean[:, None]) ** 2).sum(axis=1) / mass)
    return np.stack(means, axis=1), np.stack(variances, axis=1)


# --------------------------------------------------------------------------- models
class MeanFieldModel(abc.ABC):
    """One model family: its parameters, dynamics, reward, spaces and histogram range.

    Subclasses take every model parameter as a keyword with a default, validate it in ``__init__``
    and set the class attributes below. A model with a closed form also defines ``solve_equilibrium()``
    and ``best_response(flow)`` (:func:`mfg_envs.game.exactly_solvable` reads that). All methods act
    on whole populations: ``states`` is
    ``(N, state_dim)``, ``actions`` ``(N, action_dim)`` in physical units.
    """

    state_dim: int
    action_dim: int
    #: Observation bounds of the ``state`` entry (may be infinite).
    state_low: np.ndarray
    state_high: np.ndarray
    #: Number of decision steps ``N``; the episode terminates after the last one.
    n_steps: int
    #: Horizon ``T`` (so ``dt = T / N``).
    horizon: float
    #: Bins per axis of the population histogram, and the ``(d_h, 2)`` range it covers.
    n_bins: int
    histogram_bounds: np.ndarray
    #: Whether the flow stays random after the initial draw (common noise): a best response then answers the
    #: population's policy, not one recorded flow, and only a method that knows it applies (the exact one).
    flow_is_random: bool = False

    @property
    def dt(self) -> float:
        return self.horizon / self.n_steps

    @property
    def random_population(self) -> bool:
        """Whether the population is random over episodes: a random initial mean (``init_mean_std``, where the
        model has it) or common noise. An exact flow then describes one nominal draw only."""
        return bool(np.any(getattr(self, "init_mean_std", 0.0))) or bool(getattr(self, "common_noise", 0.0))

    @abc.abstractmethod
    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` i.i.d. initial states from ``m_0``."""

    @abc.abstractmethod
    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw the idiosyncratic noise ``xi_n^i`` of one step for ``n`` particles."""

    @abc.abstractmethod
    def physical_action(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Map normalized actions in ``[-1, 1]`` to physical actions."""

    @abc.abstractmethod
    def normalized_action(self, states: np.ndarray, physical: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`physical_action` (not clipped)."""

    @abc.abstractmethod
    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        """Statistics of the population that enter reward and dynamics at this step.

        ``actions`` is ``None`` at the terminal step; ``hist`` is the current population histogram.
        """

    @abc.abstractmethod
    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        """``s_{n+1}`` for every particle."""

    @abc.abstractmethod
    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        """Running reward ``r(s_n, a_n, mu_n)`` of every particle."""

    def terminal_reward(self, states: np.ndarray, mean_field: MeanField) -> np.ndarray:
        """Terminal reward ``g(s_N, mu_N)``, added to the last step's reward (default 0)."""
        return np.zeros(states.shape[0])

    @abc.abstractmethod
    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray | None:
        """The per-particle quantity the population histogram counts, ``(N, d_h)``.

        ``None`` when it is not defined yet (an action histogram before the first action): the
        histogram is then uniform.
        """

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """Names of the model's constructor keywords."""
        return tuple(inspect.signature(cls.__init__).parameters)[1:]


# --------------------------------------------------------------------------- the population
@dataclass(frozen=True)
class ConstantPolicy:
    """Every agent plays the same normalized ``action`` (``0``: the neutral policy of the Nash-gap scale)."""

    action: np.ndarray

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self.action, (obs["state"].shape[0], self.action.size))


@dataclass(frozen=True)
class PopulationFlow:
    """A recorded (or exact) population flow ``mu_0, ..., mu_N``.

    ``population[n]`` is the population entry of the observation at step ``n`` and
    ``mean_fields[n]`` the statistics the reward of step ``n`` uses (``n = N``: terminal).
    Freezing an env to a flow makes the representative agent play against it exactly.
    """

    population: np.ndarray
    mean_fields: tuple[MeanField, ...]

    def __post_init__(self) -> None:
        if len(self.population) != len(self.mean_fields):
            raise ValueError("flow: population and mean_fields must have one entry per step 0..N")


class Population:
    """``N`` particles of one model, their clock and their histogram.

    With ``flow`` set, the particles (then typically a single representative agent or a cohort
    of ghost agents) play against that frozen flow instead of their own empirical measure.
    """

    def __init__(
        self,
        model: MeanFieldModel,
        n_particles: int,
        representation: str = "histogram",
        kde_bandwidth: float = 1.0,
    ) -> None:
        if representation not in POPULATION_REPRESENTATIONS:
            raise ValueError(
                f"population_representation must be one of {POPULATION_REPRESENTATIONS}, got {representation!r}"
            )
        self.model = model
        self.n_particles = check_int("n_particles", n_particles)
        self.representation = representation
        self.kde_bandwidth = check_real("kde_bandwidth", kde_bandwidth, 0.0, low_open=True)
        self.flow: PopulationFlow | None = None
        self.set_policy(None)
        self.step_index = 0
        self.states = np.zeros((0, model.state_dim))
        self.last_actions: np.ndarray | None = None
        self.last_mean_field: MeanField = {}
        self.terminal_mean_field: MeanField = {}
        self._actions = np.zeros((0, model.action_dim))
        self.hist = np.zeros(0)
        self.features = np.zeros(self.n_features, dtype=np.float32)

    def clone(self, n_particles: int | None = None) -> Population:
        """A fresh population of the same model and representation (``n_particles``: default the same)."""
        return Population(self.model, n_particles or self.n_particles, self.representation, self.kde_bandwidth)

    def set_policy(self, policy: PopulationPolicy | None) -> None:
        """The population policy of the particles no front end drives (``None``: neutral, normalized action 0)."""
        if policy is not None and not callable(policy):
            raise ValueError(f"policy must be a callable obs -> actions or None, got {type(policy).__name__}")
        self.policy = policy or ConstantPolicy(np.zeros(self.model.action_dim))

    def policy_actions(self, indices: slice, features: np.ndarray | None = None) -> np.ndarray:
        """The population policy's normalized actions for the selected particles, in one batched call
        (``features``: as for :meth:`observation`)."""
        obs = self.observation(indices, features)
        shape = (obs["state"].shape[0], self.model.action_dim)
        return check_actions(self.policy(obs), shape, "population policy output")

    def freeze(self, flow: PopulationFlow | None) -> None:
        """Play against ``flow`` instead of the particles' own measure from the next reset (``None``: unfreeze)."""
        expected = (self.model.n_steps + 1, self.n_features)
        if flow is not None and (flow.population.shape != expected or len(flow.mean_fields) != expected[0]):
            raise ValueError(f"flow must hold {expected[0]} steps of {expected[1]} population features")
        self.flow = flow

    @property
    def n_features(self) -> int:
        n_dims = self.model.histogram_bounds.shape[0]
        return 2 * n_dims if self.representation == "moments" else self.model.n_bins**n_dims

    @property
    def time(self) -> float:
        """``t_n / T``."""
        return self.step_index / self.model.n_steps

    @property
    def done(self) -> bool:
        return self.step_index >= self.model.n_steps

    def reset(self, rng: np.random.Generator, n_particles: int | None = None) -> None:
        self.states = self.model.initial_states(n_particles or self.n_particles, rng)
        self.step_index = 0
        self.last_actions = None
        self._observe_population()

    def own_mean_field(self, normalized_actions: np.ndarray) -> MeanField:
        """First half of a step: the physical actions of step ``n`` and this population's mean field ``mu_n``.

        ``mu_n`` is measured on the particles, or read from the frozen flow.
        """
        self._actions = self.model.physical_action(self.states, normalized_actions)
        if self.flow:
            return self.flow.mean_fields[self.step_index]
        return self.model.mean_field(self.states, self._actions, self.hist)

    def advance(self, mean_field: MeanField, noise: np.ndarray) -> np.ndarray:
        """Second half: pay every particle ``r(s_n, a_n, mean_field)``, move it, and recompute the histogram.

        Returns the running rewards (the terminal reward is :meth:`terminal_rewards`).
        """
        model, n, actions = self.model, self.step_index, self._actions
        rewards = model.reward(self.states, actions, mean_field, n)
        self.states = model.transition(self.states, actions, mean_field, n, noise)
        self.last_actions = actions
        self.last_mean_field = mean_field
        self.step_index += 1
        self._observe_population()
        return rewards

    def own_terminal_mean_field(self) -> MeanField:
        """``mu_N``: measured on the particles after the last step, or read from the frozen flow."""
        return self.flow.mean_fields[-1] if self.flow else self.model.mean_field(self.states, None, self.hist)

    def terminal_rewards(self, mean_field: MeanField) -> np.ndarray:
        """Every particle's terminal reward ``g(s_N, mean_field)``."""
        self.terminal_mean_field = mean_field
        return self.model.terminal_reward(self.states, mean_field)

    def _observe_population(self) -> None:
        model = self.model
        if self.flow is not None:
            self.features = self.flow.population[self.step_index].astype(np.float32)
            return
        values = model.histogram_values(self.states, self.last_actions)
        n_dims = model.histogram_bounds.shape[0]
        if values is None:
            self.hist = np.full(model.n_bins**n_dims, model.n_bins ** -float(n_dims))
        else:
            self.hist = histogram(values, model.histogram_bounds, model.n_bins)
        if self.representation == "histogram":
            features = self.hist
        elif self.representation == "kde":
            features = gaussian_smoothing(self.hist, n_dims, model.n_bins, self.kde_bandwidth)
        elif values is None:  # moments of the uniform histogram
            width = model.histogram_bounds[:, 1] - model.histogram_bounds[:, 0]
            features = np.concatenate([model.histogram_bounds.mean(axis=1), width / np.sqrt(12.0)])
        else:
            features = np.concatenate([values.mean(axis=0), values.std(axis=0)])
        self.features = features.astype(np.float32)

    def observation(
        self, indices: slice | np.ndarray = slice(None), features: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Batched observations of the selected particles (``features``: the population entry, default this
        population's own; a multi-population game passes all populations' features).

        ``population`` and ``time`` are read-only broadcast views of one shared array: ``N``
        copies of the histogram are never materialized.
        """
        states = self.states[indices].astype(np.float32)
        n = states.shape[0]
        features = self.features if features is None else features
        return {
            "state": states,
            "population": np.broadcast_to(features, (n, features.size)),
            "time": np.broadcast_to(np.float32(self.time), (n, 1)),
        }


def core_of(env: Any, attribute: str, core_class: type, kind: str) -> Any:
    """The core (``core_class``) behind ``env``: the core itself, or ``env.unwrapped.<attribute>`` of a
    ``gym.make`` env (wrappers included) or a front end; else ``ValueError`` naming the expected ``kind``."""
    if isinstance(env, core_class):
        return env
    core = getattr(getattr(env, "unwrapped", env), attribute, None)
    if not isinstance(core, core_class):
        raise ValueError(f"env must be {kind}, got {type(env).__name__}")
    return core


def population_of(env: Any) -> Population:
    """The population core behind ``env``: a ``gym.make`` env (wrappers included), any front end, or a core."""
    return core_of(env, "population", Population, "an mfg_envs environment")


def split_keywords(model_class: type[MeanFieldModel], kwargs: Mapping[str, Any], env_id: str) -> dict[str, Any]:
    """Reject unknown keywords with a ``ValueError`` that lists the accepted ones."""
    accepted = model_class.keywords()
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown keyword(s) {unknown} for {env_id}; accepted model keywords: {', '.join(accepted)}"
            " (plus n_particles, population_representation, kde_bandwidth, render_mode)"
        )
    return dict(kwargs)
