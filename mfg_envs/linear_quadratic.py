"""Linear-quadratic mean field game: the tracking model and the Carmona-Fouque-Sun systemic-risk model."""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from mfg_envs.core import (
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    check_int,
    check_interval,
    check_real,
    check_time_grid,
)
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import (
    AffinePolicy,
    BestResponse,
    Equilibrium,
    ScalarLQSolution,
    gaussian_histogram,
    scalar_lq_best_response,
)
from mfg_envs.rendering import EXACT, PARTICLE_MEAN, HistogramScene, Mark, exact_equilibrium, histogram_scene


class _ScalarLQTerminal(TypedDict, total=False):
    qT: float
    cT: float


class ScalarLQProblem(_ScalarLQTerminal):
    """The coefficients :func:`mfg_envs.equilibrium.scalar_lq_best_response` takes by keyword."""

    A: float | np.ndarray
    B: float | np.ndarray
    drift: float | np.ndarray
    R: float | np.ndarray
    Qx: float | np.ndarray
    Sx: float | np.ndarray
    qx: float | np.ndarray
    ra: float | np.ndarray
    c: float | np.ndarray
    QT: float


class LinearQuadraticModel(MeanFieldModel):
    """Scalar LQ dynamics and costs coupled through the population mean ``m_n = E[x_n]``.

    ``x_{n+1} = x_n + dt [beta (m_n - x_n) + a_n] + sigma sqrt(dt) xi_n``;
    ``r_n = -dt [a^2/2 + q a (x - kappa m) + eps/2 (x - kappa m)^2]``;
    ``g = -c/2 (x_N - kappa_T m_N)^2``.
    """

    state_dim = 1
    action_dim = 1

    def __init__(
        self,
        horizon: float = 1.0,
        n_steps: int = 50,
        sigma: float = 1.0,
        mean_reversion: float = 0.0,
        cross_cost: float = 0.0,
        running_cost: float = 2.0,
        kappa: float = 0.5,
        terminal_cost: float = 1.0,
        kappa_terminal: float = 0.5,
        init_mean: float = 2.0,
        init_var: float = 0.25,
        action_bound: float = 5.0,
        n_bins: int = 40,
        histogram_range: tuple[float, float] = (-3.0, 5.0),
    ) -> None:
        self.horizon, self.n_steps = check_time_grid(horizon, n_steps)
        self.sigma = check_real("sigma", sigma, 0.0)
        self.mean_reversion = check_real("mean_reversion", mean_reversion, 0.0)
        self.cross_cost = check_real("cross_cost", cross_cost)
        self.running_cost = check_real("running_cost", running_cost, self.cross_cost**2)
        self.kappa = check_real("kappa", kappa)
        self.terminal_cost = check_real("terminal_cost", terminal_cost, 0.0)
        self.kappa_terminal = check_real("kappa_terminal", kappa_terminal)
        self.init_mean = check_real("init_mean", init_mean)
        self.init_var = check_real("init_var", init_var, 0.0)
        self.action_bound = check_real("action_bound", action_bound, 0.0, low_open=True)
        self.n_bins = check_int("n_bins", n_bins)
        self.histogram_bounds = np.array([check_interval("histogram_range", histogram_range)])
        self.state_low, self.state_high = np.full(1, -np.inf), np.full(1, np.inf)

    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.init_mean + np.sqrt(self.init_var) * rng.standard_normal((n, 1))

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, 1))

    def physical_action(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.action_bound * action

    def normalized_action(self, states: np.ndarray, physical: np.ndarray) -> np.ndarray:
        return physical / self.action_bound

    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        return {"mean": float(states[:, 0].mean())}

    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        dt = self.dt
        drift = self.mean_reversion * (mean_field["mean"] - states) + actions
        return states + dt * drift + self.sigma * np.sqrt(dt) * noise

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        a, gap = actions[:, 0], states[:, 0] - self.kappa * mean_field["mean"]
        return -self.dt * (0.5 * a**2 + self.cross_cost * a * gap + 0.5 * self.running_cost * gap**2)

    def terminal_reward(self, states: np.ndarray, mean_field: MeanField) -> np.ndarray:
        return -0.5 * self.terminal_cost * (states[:, 0] - self.kappa_terminal * mean_field["mean"]) ** 2

    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray:
        return states

    def render_scene(self, population: Population) -> HistogramScene:
        """Frame: histogram of ``x``, the exact equilibrium law of step ``n`` (black line), its mean ``m*_n``
        (dashed) and the particles' mean ``m_n`` (blue)."""
        equilibrium, n = exact_equilibrium(self), population.step_index
        marks: tuple[Mark, ...] = (Mark(float(population.states[:, 0].mean()), PARTICLE_MEAN),)
        if equilibrium is not None:
            marks += (Mark(equilibrium.mean_fields[n]["mean"], EXACT, dashed=True),)
        return histogram_scene(population, marks)

    # ------------------------------------------------------------------ exact solution
    def frozen_flow_problem(self, means: np.ndarray) -> ScalarLQProblem:
        """Coefficients of the representative agent's scalar LQ problem against a frozen mean flow ``m_0..m_N``.

        ``x' = (1 - beta dt) x + dt a + beta dt m_n + noise``; cost ``dt [a^2/2 + q a x - q kappa m a
        + eps/2 x^2 - eps kappa m x + eps kappa^2 m^2 / 2]``, terminal ``c/2 (x - kappa_T m_N)^2``.
        """
        dt, beta, q, eps, kappa = self.dt, self.mean_reversion, self.cross_cost, self.running_cost, self.kappa
        m, m_terminal = np.asarray(means[:-1], dtype=float), float(means[-1])
        c, kappa_t = self.terminal_cost, self.kappa_terminal
        return {
            "A": 1.0 - beta * dt,
            "B": dt,
            "drift": beta * dt * m,
            "R": 1.0,
            "Qx": eps,
            "Sx": q,
            "qx": -eps * kappa * m,
            "ra": -q * kappa * m,
            "c": 0.5 * eps * kappa**2 * m**2,
            "QT": c,
            "qT": -c * kappa_t * m_terminal,
            "cT": 0.5 * c * kappa_t**2 * m_terminal**2,
        }

    def solve_frozen_flow(
        self, means: np.ndarray, gains: np.ndarray | None = None, offsets: np.ndarray | None = None
    ) -> ScalarLQSolution:
        """Best response to (or, with ``gains``/``offsets``, the exact cost of an affine policy against) ``means``."""
        problem = self.frozen_flow_problem(means)
        return scalar_lq_best_response(self.n_steps, self.dt, self.sigma, **problem, gains=gains, offsets=offsets)

    def _affine_policy(self, gains: np.ndarray, offsets: np.ndarray) -> AffinePolicy:
        return AffinePolicy(self, gains.reshape(-1, 1, 1), offsets.reshape(-1, 1))

    def best_response(self, flow: PopulationFlow) -> BestResponse:
        """Exact best response ``a_n = -K_n x - k_n`` to the frozen mean flow of ``flow``."""
        solution = self.solve_frozen_flow(np.array([mf["mean"] for mf in flow.mean_fields]))
        cost = solution.expected_cost(self.init_mean, self.init_var)
        return BestResponse(self._affine_policy(solution.gains, solution.offsets), -cost)

    def solve_equilibrium(self) -> Equilibrium:
        """Discrete-time equilibrium ``a*_n(x, m) = -K_n x - C_n m`` (backward Riccati, forward flow).

        With ``al = 1 - beta dt``, ``P_N = c``, ``Pi_N = -c kappa_T``:
        ``K_n = (q + P' al)/(1 + P' dt)``, ``P_n = dt (K^2 - 2 q K + eps) + P' (al - dt K)^2``,
        ``C_n = (-q kappa + P' beta dt + Pi' (1 - dt K)) / (1 + (P' + Pi') dt)``,
        ``Pi_n = dt (K C + q K kappa - q C - eps kappa) + (al - dt K)(P' dt (beta - C) + Pi' (1 - dt (K + C)))``;
        ``m_{n+1} = (1 - dt (K_n + C_n)) m_n``, ``v_{n+1} = (al - dt K_n)^2 v_n + sigma^2 dt``.
        """
        dt, n_steps = self.dt, self.n_steps
        beta, q, eps, kappa = self.mean_reversion, self.cross_cost, self.running_cost, self.kappa
        al = 1.0 - beta * dt
        K, C = np.empty(n_steps), np.empty(n_steps)
        P, Pi = self.terminal_cost, -self.terminal_cost * self.kappa_terminal
        for n in reversed(range(n_steps)):
            K[n] = (q + P * al) / (1.0 + P * dt)
            denominator = 1.0 + (P + Pi) * dt
            if abs(denominator) < 1e-12:
                raise ValueError("these parameters have no regular equilibrium: 1 + (P + Pi) dt = 0")
            C[n] = (-q * kappa + P * beta * dt + Pi * (1.0 - dt * K[n])) / denominator
            Pi = dt * (K[n] * C[n] + q * K[n] * kappa - q * C[n] - eps * kappa) + (al - dt * K[n]) * (
                P * dt * (beta - C[n]) + Pi * (1.0 - dt * (K[n] + C[n]))
            )
            P = dt * (K[n] ** 2 - 2 * q * K[n] + eps) + P * (al - dt * K[n]) ** 2
        means, variances = np.empty(n_steps + 1), np.empty(n_steps + 1)
        means[0], variances[0] = self.init_mean, self.init_var
        for n in range(n_steps):
            means[n + 1] = (1.0 - dt * (K[n] + C[n])) * means[n]
            variances[n + 1] = (al - dt * K[n]) ** 2 * variances[n] + self.sigma**2 * dt
        offsets = C * means[:-1]
        cost = self.solve_frozen_flow(means, K, offsets).expected_cost(self.init_mean, self.init_var)
        return Equilibrium(
            policy=self._affine_policy(K, offsets),
            expected_return=-cost,
            mean_fields=tuple({"mean": float(m)} for m in means),
            histograms=np.stack(
                [
                    gaussian_histogram(m, np.sqrt(v), self.histogram_bounds, self.n_bins)
                    for m, v in zip(means, variances)
                ]
            ),
        )


class LinearQuadraticEnv(MeanFieldEnv):
    r"""## Description

    The linear-quadratic mean field game, the standard benchmark with an exact equilibrium
    (``mfg_envs.solve_equilibrium``). Each agent steers a scalar state ``x`` and pays for its
    control and for its distance to a fraction ``kappa`` of the population mean ``m_n``. With
    ``mean_reversion = cross_cost = 0`` it is the tracking model; with
    ``kappa = kappa_terminal = 1`` it is the Carmona-Fouque-Sun systemic-risk model.

    ``x_{n+1} = x_n + dt [beta (m_n - x_n) + a_n] + sigma sqrt(dt) xi_n``, ``xi_n ~ N(0, 1)``,
    ``dt = T / N``, ``m_n`` the empirical mean of all particles at step ``n``.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``, rescaled to ``a = action_bound * action``.

    | Num | Action                 | Min | Max |
    |-----|------------------------|-----|-----|
    | 0   | control ``a / a_max``  | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape      | Meaning                                                   |
    |--------------|------------|-----------------------------------------------------------|
    | `state`      | (1,)       | own state ``x`` (unbounded)                               |
    | `population` | (n_bins,)  | histogram of all particles' ``x`` on ``histogram_range`` (sums to 1) |
    | `time`       | (1,)       | ``t_n / T``                                               |

    Particles outside ``histogram_range`` count in the edge bins.

    ## Rewards

    ``r_n = -dt [a_n^2/2 + q a_n (x_n - kappa m_n) + eps/2 (x_n - kappa m_n)^2]`` and, at the
    last step, additionally ``-c/2 (x_N - kappa_T m_N)^2``.

    ## Starting State

    ``x_0 ~ N(init_mean, init_var)`` for every particle.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    | keyword | symbol | default |
    |---|---|---|
    | `horizon` | T | 1.0 |
    | `n_steps` | N | 50 |
    | `sigma` | sigma >= 0 | 1.0 |
    | `mean_reversion` | beta >= 0 | 0.0 |
    | `cross_cost` | q | 0.0 |
    | `running_cost` | eps >= q^2 | 2.0 |
    | `kappa` | kappa | 0.5 |
    | `terminal_cost` | c >= 0 | 1.0 |
    | `kappa_terminal` | kappa_T | 0.5 |
    | `init_mean`, `init_var` | m_0, v_0 | 2.0, 0.25 |
    | `action_bound` | a_max > 0 | 5.0 |
    | `n_bins`, `histogram_range` | histogram grid | 40, (-3, 5) |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    The systemic-risk preset: ``gym.make("MFGLinearQuadratic-v0", mean_reversion=1, cross_cost=0.8,
    kappa=1, kappa_terminal=1, init_mean=1, init_var=0.5)``.

    ## Version History

    * v0: Initial version.
    """

    model_class = LinearQuadraticModel
    env_id = "MFGLinearQuadratic-v0"
