"""Resource allocation with congestion and a binding capacity, and its exact equilibrium.

Every agent observes an exogenous demand ``theta`` (a stationary AR(1) process) and its own capacity
``c`` (drawn once per episode), and allocates ``a in [0, c]``. Utility ``theta a - a^2/2`` is reduced by
congestion ``kappa abar a``, where ``abar`` is the population's mean allocation at the same step.
Allocations do not move states, so the game is a sequence of static games: with
``Y = theta - kappa abar`` the reward is ``Y^2/2 - (a - Y)^2/2``, the best response is ``clip(Y, 0, c)``,
and every expectation the solver needs is a closed form in the positive-part moments of a Gaussian
(:func:`positive_part_moments`).
"""

from __future__ import annotations

import math

import numpy as np

from mfg_envs.core import MIN_WIDTH, MeanField, MeanFieldModel, Population, PopulationFlow, check_int, check_real
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import AffinePolicy, BestResponse, Equilibrium, normal_cdf
from mfg_envs.initial_law import gaussian_start
from mfg_envs.rendering import EXACT, PARTICLE_MEAN, HistogramScene, Mark, exact_equilibrium, histogram_scene


def normal_pdf(z: np.ndarray | float) -> np.ndarray:
    """Standard normal density ``phi(z) = exp(-z^2/2) / sqrt(2 pi)`` (elementwise; ``phi(+-inf) = 0``)."""
    return np.exp(-0.5 * np.square(np.asarray(z, dtype=float))) / math.sqrt(2.0 * math.pi)


def standardize(delta: np.ndarray | float, std: np.ndarray | float) -> np.ndarray:
    """``delta / std`` (elementwise); where ``std = 0`` (a point mass) ``+inf`` for ``delta > 0`` and ``-inf`` else.

    With this limit ``Phi(z)`` and ``phi(z)`` give the right point-mass values in the formulas below.
    """
    delta, std = np.asarray(delta, dtype=float), np.asarray(std, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0.0, delta / std, np.where(delta > 0.0, np.inf, -np.inf))


def positive_part_moments(
    mean: np.ndarray | float, std: np.ndarray | float, level: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``g_p(k) = E[(Y - k)_+^p]``, ``p = 1, 2, 3``, for ``Y ~ N(mean, std^2)`` (elementwise in ``mean``, ``std``,
    ``k``).

    With ``a = mean - k`` and ``z = a / std`` (docs/models.md, "MFGResource-v0"):
    ``g1 = a Phi(z) + std phi(z)``, ``g2 = (a^2 + std^2) Phi(z) + a std phi(z)``,
    ``g3 = (a^3 + 3 a std^2) Phi(z) + (a^2 + 2 std^2) std phi(z)``.
    """
    a = np.asarray(mean, dtype=float) - np.asarray(level, dtype=float)
    z = standardize(a, std)
    cdf, density = normal_cdf(z), std * normal_pdf(z)
    return (
        a * cdf + density,
        (a**2 + std**2) * cdf + a * density,
        (a**3 + 3.0 * a * std**2) * cdf + (a**2 + 2.0 * std**2) * density,
    )


class ResourceModel(MeanFieldModel):
    """Agents with demand ``theta`` and capacity ``c`` allocating ``a in [0, c]`` against the mean allocation.

    ``theta_{n+1} = thbar + phi (theta_n - thbar) + s eps_n``; ``c`` fixed per episode;
    ``r_n = theta_n a_n - a_n^2/2 - kappa abar_n a_n``; no terminal reward; ``theta_0 ~ N(M_0, tau^2)`` around
    a demand level ``M_0 ~ N(thbar, init_mean_std^2)`` drawn once per episode. State ``(theta, c, t_n/T)``.
    There is no continuous-time limit: rewards carry no ``dt``, and ``horizon`` is fixed to 1 so that
    ``dt = 1/N`` only defines the time stamp ``t_n/T = n/N``.
    """

    state_dim = 3
    action_dim = 1
    horizon = 1.0

    def __init__(
        self,
        n_steps: int = 20,
        demand_mean: float = 1.0,
        demand_persistence: float = 0.8,
        demand_noise: float = 0.3,
        init_mean_std: float = 0.0,
        capacity_min: float = 0.5,
        capacity_max: float = 1.5,
        congestion: float = 1.0,
        n_bins: int = 30,
    ) -> None:
        self.n_steps = check_int("n_steps", n_steps)
        self.demand_mean = check_real("demand_mean", demand_mean)
        self.demand_persistence = check_real(
            "demand_persistence", demand_persistence, -1.0, 1.0, low_open=True, high_open=True
        )
        self.demand_noise = check_real("demand_noise", demand_noise, 0.0)
        self.init_mean_std = check_real("init_mean_std", init_mean_std, 0.0)
        self.capacity_min = check_real("capacity_min", capacity_min, 0.0)
        self.capacity_max = check_real("capacity_max", capacity_max, max(self.capacity_min, MIN_WIDTH), low_open=True)
        # kappa >= 0 makes the right side of the fixed point decreasing, hence the equilibrium unique.
        self.congestion = check_real("congestion", congestion, 0.0)
        self.n_bins = check_int("n_bins", n_bins)
        self.histogram_bounds = np.array([[0.0, self.capacity_max]])
        self.state_low = np.array([-np.inf, self.capacity_min, 0.0])
        self.state_high = np.array([np.inf, self.capacity_max, 1.0])

    @property
    def demand_std(self) -> float:
        """Stationary standard deviation of the demand, ``tau = s / sqrt(1 - phi^2)``."""
        return self.demand_noise / math.sqrt(1.0 - self.demand_persistence**2)

    def demand_stds(self) -> np.ndarray:
        """``(N,)``: the standard deviation of ``theta_n`` over the particles and the draw of ``M_0``,
        ``sqrt(tau^2 + phi^(2n) init_mean_std^2)`` (``M_0 - thbar`` decays as ``phi^n``; the mean is ``thbar``)."""
        return np.hypot(self.demand_std, self.demand_persistence ** np.arange(self.n_steps) * self.init_mean_std)

    # ------------------------------------------------------------------ simulator
    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``theta_0 ~ N(M_0, tau^2)`` (the stationary spread around the episode's ``M_0``), ``c ~ U[c_lo, c_hi]``,
        ``t_0/T = 0``."""
        states = np.zeros((n, 3))
        states[:, 0] = gaussian_start(n, rng, self.demand_mean, self.init_mean_std, self.demand_std)
        states[:, 1] = rng.uniform(self.capacity_min, self.capacity_max, n)
        return states

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, 1))

    def physical_action(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``a = (action + 1)/2 c``: the normalized box maps onto each agent's own ``[0, c]``."""
        return 0.5 * (action + 1.0) * states[:, 1:2]

    def normalized_action(self, states: np.ndarray, physical: np.ndarray) -> np.ndarray:
        """``2 a / c - 1``; an agent with ``c = 0`` can only allocate 0 and gets ``-1``."""
        capacity = states[:, 1:2]
        ratio = np.divide(
            physical, capacity, out=np.zeros(np.broadcast_shapes(physical.shape, capacity.shape)), where=capacity > 0.0
        )
        return 2.0 * ratio - 1.0

    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        """``mean_allocation`` ``abar_n`` of the allocations made at this step (empty at the terminal step)."""
        return {} if actions is None else {"mean_allocation": float(actions[:, 0].mean())}

    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        nxt = states.copy()
        phi, thbar = self.demand_persistence, self.demand_mean
        nxt[:, 0] = thbar + phi * (states[:, 0] - thbar) + self.demand_noise * noise[:, 0]
        nxt[:, 2] = (n + 1) / self.n_steps
        return nxt

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        a = actions[:, 0]
        return (states[:, 0] - self.congestion * mean_field["mean_allocation"]) * a - 0.5 * a**2

    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray | None:
        """The last allocations; ``None`` before the first step (the core then shows a uniform histogram)."""
        return last_actions

    def render_scene(self, population: Population) -> HistogramScene:
        """Frame: histogram of the last allocations on ``[0, c_hi]`` with the capacity range ``[c_lo, c_hi]``
        shaded green, their exact equilibrium law (black line), their mean ``abar`` (blue) and ``abar*``
        (dashed). Before the first step no allocation exists and the bars are empty."""
        equilibrium, n = exact_equilibrium(self), population.step_index
        marks: tuple[Mark, ...] = (
            () if equilibrium is None else (Mark(equilibrium.mean_fields[0]["mean_allocation"], EXACT, True),)
        )
        if n > 0:
            marks += (Mark(population.last_mean_field["mean_allocation"], PARTICLE_MEAN),)
        return histogram_scene(population, marks, band=(self.capacity_min, self.capacity_max))

    # ------------------------------------------------------------------ exact solver
    def best_response_statistics(
        self, mean_allocation: np.ndarray | float, demand_std: np.ndarray | float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``E[clip(Y, 0, c)]`` and ``E[Y^2/2 - (clip(Y, 0, c) - Y)^2/2]`` for ``Y = theta - kappa abar``.

        ``theta ~ N(thbar, demand_std^2)`` (default ``tau``: the stationary law of every step when the initial
        mean is fixed), so ``Y ~ N(thbar - kappa abar, demand_std^2)`` and, with ``c ~ U[c_lo, c_hi]``,
        ``W = c_hi - c_lo``:
        ``E clip = g1(0) - (g2(c_lo) - g2(c_hi))/(2W)``, ``J_n = g2(0)/2 - (g3(c_lo) - g3(c_hi))/(6W)``
        (integrating ``dg_{p+1}/dk = -(p+1) g_p`` over the uniform capacity). Elementwise in ``abar`` and
        ``demand_std``.
        """
        mu = self.demand_mean - self.congestion * np.asarray(mean_allocation, dtype=float)
        tau = self.demand_std if demand_std is None else demand_std
        width = self.capacity_max - self.capacity_min
        g1_0, g2_0, _ = positive_part_moments(mu, tau, 0.0)
        _, g2_lo, g3_lo = positive_part_moments(mu, tau, self.capacity_min)
        _, g2_hi, g3_hi = positive_part_moments(mu, tau, self.capacity_max)
        return g1_0 - (g2_lo - g2_hi) / (2.0 * width), 0.5 * g2_0 - (g3_lo - g3_hi) / (6.0 * width)

    def equilibrium_mean_allocation(self) -> float:
        """The root of ``abar = E clip(theta - kappa abar, 0, c)`` by bisection on ``[0, c_hi]``.

        The right side is non-increasing in ``abar`` (``kappa >= 0``) and lies in ``[0, c_hi]``, so the root
        is unique and bracketed; bisection runs until the bracket cannot be halved in floating point.
        """
        low, high = 0.0, self.capacity_max
        while True:
            middle = 0.5 * (low + high)
            if middle in (low, high):
                return middle
            if middle > self.best_response_statistics(middle)[0]:
                high = middle
            else:
                low = middle

    def allocation_histogram(self, mean_allocation: float) -> np.ndarray:
        """Exact law of ``a = clip(theta - kappa abar, 0, c)`` on the histogram grid ``[0, c_hi]``.

        For ``x > 0``, ``a >= x`` iff ``Y >= x`` and ``c >= x`` (independent), so
        ``P(a < x) = 1 - P(Y >= x) P(c >= x)``; the atom ``P(Y <= 0)`` at ``a = 0`` falls in the first cell
        and ``a <= c_hi`` always, so the cell masses are the differences of this CDF at the inner edges padded
        with 0 and 1 (cells ``[e_j, e_{j+1})`` as :func:`mfg_envs.core.histogram` counts them).
        """
        mu, tau = self.demand_mean - self.congestion * mean_allocation, self.demand_std
        edges = np.linspace(0.0, self.capacity_max, self.n_bins + 1)[1:-1]
        demand_above = 1.0 - normal_cdf(standardize(edges - mu, tau))
        capacity_above = np.clip((self.capacity_max - edges) / (self.capacity_max - self.capacity_min), 0.0, 1.0)
        cdf = 1.0 - demand_above * capacity_above
        return np.diff(np.concatenate([[0.0], cdf, [1.0]]))

    def _affine_policy(self, mean_allocations: np.ndarray) -> AffinePolicy:
        """``a_n = theta - kappa abar_n`` (gains ``[-1, 0, 0]``, offsets ``kappa abar_n``); the normalized clip
        to ``[-1, 1]`` makes it ``clip(theta - kappa abar_n, 0, c)`` exactly."""
        gains = np.zeros((self.n_steps, 1, 3))
        gains[:, 0, 0] = -1.0
        offsets = self.congestion * np.asarray(mean_allocations, dtype=float).reshape(self.n_steps, 1)
        return AffinePolicy(self, gains, offsets)

    def best_response(self, flow: PopulationFlow) -> BestResponse:
        """Exact best response ``clip(theta - kappa abar_n, 0, c)`` to the frozen ``flow.mean_fields[n]``.

        The policy does not depend on the demand's law. Its expected return is ``sum_n J_n(abar_n)``
        (:meth:`best_response_statistics`) with ``theta_n ~ N(thbar, tau_n^2)``, one agent's demand law averaged
        over the draw of ``M_0`` (:meth:`demand_stds`; ``tau_n = tau``, the stationary law, when ``M_0`` is fixed).
        """
        mean_allocations = np.array([flow.mean_fields[n]["mean_allocation"] for n in range(self.n_steps)])
        _, step_returns = self.best_response_statistics(mean_allocations, self.demand_stds())
        return BestResponse(self._affine_policy(mean_allocations), float(step_returns.sum()))

    def solve_equilibrium(self) -> Equilibrium:
        """The stationary equilibrium ``a* = clip(theta - kappa abar*, 0, c)``, ``abar* = E a*``.

        ``expected_return = N J_n(abar*)``; ``mean_fields[n] = {"mean_allocation": abar*}`` for ``n < N``
        (the terminal entry is empty, as in the simulator); ``histograms[0]`` is uniform (no allocation yet,
        as the env shows) and ``histograms[n >= 1]`` is :meth:`allocation_histogram` of ``abar*``.

        ``NotImplementedError`` with a random demand level (``init_mean_std > 0``, docs/models.md, "Random
        initial demand"): the equilibrium allocations of step 0 move with ``M_0``, but no allocation has been
        made at step 0, so no observation of that step shows ``M_0``.
        """
        if self.init_mean_std > 0.0:
            raise NotImplementedError(
                "MFGResource-v0 with a random initial demand level (init_mean_std > 0) has no equilibrium policy of"
                " the observation: the equilibrium allocation of step 0 depends on the drawn level, and the step-0"
                " population entry (no allocation made yet) does not show it; exact best responses and"
                " exact_nash_gap still apply"
            )
        mean_allocation = self.equilibrium_mean_allocation()
        _, step_return = self.best_response_statistics(mean_allocation)
        uniform = np.full(self.n_bins, 1.0 / self.n_bins)
        allocations = self.allocation_histogram(mean_allocation)
        return Equilibrium(
            policy=self._affine_policy(np.full(self.n_steps, mean_allocation)),
            expected_return=float(self.n_steps * step_return),
            mean_fields=(*({"mean_allocation": mean_allocation} for _ in range(self.n_steps)), {}),
            histograms=np.stack([uniform, *([allocations] * self.n_steps)]),
        )


class ResourceEnv(MeanFieldEnv):
    r"""## Description

    Resource allocation with congestion and a binding capacity. Each agent faces an exogenous demand
    ``theta_n`` and has a capacity ``c`` drawn at reset; it allocates ``a_n in [0, c]``. Utility
    ``theta a - a^2/2`` is reduced by congestion ``kappa abar_n a``, where ``abar_n`` is the mean of the
    allocations all particles make at step ``n`` (simultaneous move). The demand is a stationary AR(1),
    ``theta_{n+1} = thbar + phi (theta_n - thbar) + s eps_n``, ``eps_n ~ N(0, 1)`` per agent; allocations do
    not move states, so the game is a sequence of static games. The exact equilibrium
    (``mfg_envs.solve_equilibrium``) is ``a* = clip(theta - kappa abar*, 0, c)`` with ``abar*`` the root of
    ``abar = E clip(theta - kappa abar, 0, c)``; the box binds (about 15% of agents allocate 0 and 20%
    their full capacity at the defaults), so the interior formula ``thbar / (1 + kappa)`` is not the answer.
    With a random initial demand level (``init_mean_std > 0``) best responses and Nash gaps stay exact, but
    ``solve_equilibrium`` raises ``NotImplementedError``: the equilibrium allocation of step 0 depends on the
    drawn level, which no observation of step 0 shows.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``, mapped affinely onto the agent's own ``[0, c]``:
    ``a = (action + 1)/2 c``.

    | Num | Action                                        | Min | Max |
    |-----|-----------------------------------------------|-----|-----|
    | 0   | allocation, normalized: ``2 a / c - 1``       | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape     | Meaning                                                                  |
    |--------------|-----------|--------------------------------------------------------------------------|
    | `state`      | (3,)      | demand ``theta`` (unbounded), capacity ``c`` in ``[c_lo, c_hi]``, ``t_n/T = n/N`` |
    | `population` | (n_bins,) | histogram of the last allocations on ``[0, capacity_max]`` (sums to 1)   |
    | `time`       | (1,)      | ``t_n / T = n/N``                                                        |

    At step 0 no allocation has been made yet (``histogram_values`` returns ``None``) and the population
    entry is the uniform histogram ``1 / n_bins``.

    ## Rewards

    ``r_n = theta_n a_n - a_n^2/2 - kappa abar_n a_n`` (utility minus cost minus congestion), with no
    ``dt`` factor and no terminal reward. With ``Y = theta - kappa abar`` it equals
    ``Y^2/2 - (a - Y)^2/2``.

    ## Starting State

    ``theta_0 ~ N(M_0, s^2 / (1 - phi^2))`` (the stationary spread) around one demand level
    ``M_0 ~ N(thbar, init_mean_std^2)`` per episode, shared by all particles; ``c ~ U[capacity_min, capacity_max]``,
    independently for every particle; ``t_0 = 0``. The initial law has no mean keyword: ``demand_mean`` is its
    mean, and ``init_mean_std`` shifts the whole population's initial demand at random, after which the shift
    decays as ``phi^n``. At the default ``init_mean_std = 0`` ``M_0 = thbar`` (the stationary law) and nothing is
    drawn for it.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation. The model's ``horizon`` is fixed to 1 (there is no
    ``horizon`` keyword): ``dt = 1/N`` only defines the time stamp.

    ## Arguments

    | keyword | symbol | default |
    |---|---|---|
    | `n_steps` | N >= 1 | 20 |
    | `demand_mean` | thbar | 1.0 |
    | `demand_persistence` | phi, \|phi\| < 1 | 0.8 |
    | `demand_noise` | s >= 0 | 0.3 |
    | `init_mean_std` | std of the initial demand level ``M_0``, >= 0 | 0.0 |
    | `capacity_min`, `capacity_max` | c_lo, c_hi with 0 <= c_lo < c_hi | 0.5, 1.5 |
    | `congestion` | kappa >= 0 | 1.0 |
    | `n_bins` | histogram bins on ``[0, capacity_max]`` | 30 |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    ## Version History

    * v0: Initial version.
    """

    model_class = ResourceModel
    env_id = "MFGResource-v0"
