"""Two-population linear-quadratic mean field game: each population tracks a mix of both populations' means."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mfg_envs.core import PopulationFlow, check_int, check_interval, check_real, check_time_grid
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import (
    AffinePolicy,
    BestResponse,
    GameEquilibrium,
    ScalarLQSolution,
    gaussian_histogram,
    scalar_lq_best_response,
)
from mfg_envs.game import GameModel, JointMeanField, check_matrix, per_population_reals
from mfg_envs.linear_quadratic import LinearQuadraticModel


class TrackingPopulation(LinearQuadraticModel):
    """Population ``k`` of the game: ``x' = x + dt a + sigma_k sqrt(dt) xi``, tracking ``y^k_n = sum_j W_kj m^j_n``.

    ``r = -dt [a^2/2 + eps_k/2 (x - y^k_n)^2]``, terminal ``-c_k/2 (x_N - sum_j WT_kj m^j_N)^2``. The tracking
    model of :class:`LinearQuadraticModel` (no mean reversion, no cross cost: same spaces, initial law, noise,
    action scaling, histogram and own mean field ``m^k_n``) whose targets mix every population's mean, read from
    the joint mean field.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        horizon: float,
        n_steps: int,
        sigma: float,
        running_cost: float,
        terminal_cost: float,
        coupling: np.ndarray,
        terminal_coupling: np.ndarray,
        init_mean: float,
        init_var: float,
        action_bound: float,
        n_bins: int,
        histogram_range: tuple[float, float],
    ) -> None:
        super().__init__(
            horizon=horizon,
            n_steps=n_steps,
            sigma=sigma,
            running_cost=running_cost,
            terminal_cost=terminal_cost,
            init_mean=init_mean,
            init_var=init_var,
            action_bound=action_bound,
            n_bins=n_bins,
            histogram_range=histogram_range,
        )
        self.names, self.coupling, self.terminal_coupling = names, coupling, terminal_coupling

    def means(self, joint: JointMeanField) -> np.ndarray:
        """Every population's mean ``(m^1, ..., m^K)`` from the joint mean field."""
        return np.array([joint[name]["mean"] for name in self.names])

    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: JointMeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        return states + self.dt * actions + self.sigma * np.sqrt(self.dt) * noise

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: JointMeanField, n: int) -> np.ndarray:
        target = self.coupling @ self.means(mean_field)
        return -self.dt * (0.5 * actions[:, 0] ** 2 + 0.5 * self.running_cost * (states[:, 0] - target) ** 2)

    def terminal_reward(self, states: np.ndarray, mean_field: JointMeanField) -> np.ndarray:
        target = self.terminal_coupling @ self.means(mean_field)
        return -0.5 * self.terminal_cost * (states[:, 0] - target) ** 2

    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray:
        return states

    def solve_frozen_targets(
        self, targets: np.ndarray, gains: np.ndarray | None = None, offsets: np.ndarray | None = None
    ) -> ScalarLQSolution:
        """Best response to (or, with ``gains``/``offsets``, the exact cost of an affine policy against) the
        frozen targets ``y_0..y_N`` (``y_N``: the terminal target): a scalar LQ problem with ``A = 1``,
        ``B = dt``, stage cost ``dt [a^2/2 + eps/2 x^2 - eps y x + eps y^2/2]``, terminal ``c/2 (x - y_N)^2``."""
        eps, c, y, y_terminal = self.running_cost, self.terminal_cost, targets[:-1], targets[-1]
        return scalar_lq_best_response(
            self.n_steps,
            self.dt,
            self.sigma,
            A=1.0,
            B=self.dt,
            drift=0.0,
            R=1.0,
            Qx=eps,
            Sx=0.0,
            qx=-eps * y,
            ra=0.0,
            c=0.5 * eps * y**2,
            QT=c,
            qT=-c * y_terminal,
            cT=0.5 * c * y_terminal**2,
            gains=gains,
            offsets=offsets,
        )

    def targets(self, means: np.ndarray) -> np.ndarray:
        """``y_n = W_k . m_n`` (``n < N``) and ``y_N = WT_k . m_N`` from every population's means ``(N+1, K)``."""
        return np.append(means[:-1] @ self.coupling, means[-1] @ self.terminal_coupling)

    def affine_policy(self, gains: np.ndarray, offsets: np.ndarray) -> AffinePolicy:
        return AffinePolicy(self, gains.reshape(-1, 1, 1), offsets.reshape(-1, 1))


class LinearQuadraticMultiModel(GameModel):
    """Two populations, ``red`` and ``blue``, each tracking a weighted mix of both populations' means.

    Population ``k``: ``x' = x + dt a + sigma_k sqrt(dt) xi``, cost ``sum_n dt [a^2/2 + eps_k/2 (x - y^k_n)^2]
    + c_k/2 (x_N - yT^k)^2`` with ``y^k_n = sum_j W_kj m^j_n`` and ``yT^k = sum_j WT_kj m^j_N``.
    """

    names = ("red", "blue")
    populations: tuple[TrackingPopulation, ...]

    def __init__(
        self,
        horizon: float = 1.0,
        n_steps: int = 50,
        sigma: Sequence[float] = (1.0, 0.5),
        running_cost: Sequence[float] = (2.0, 1.0),
        terminal_cost: Sequence[float] = (1.0, 2.0),
        coupling: Sequence[Sequence[float]] = ((0.5, 0.3), (0.4, 0.2)),
        terminal_coupling: Sequence[Sequence[float]] = ((0.5, 0.3), (0.4, 0.2)),
        init_mean: Sequence[float] = (2.0, -1.0),
        init_var: Sequence[float] = (0.25, 0.5),
        action_bound: float = 5.0,
        n_bins: int = 40,
        histogram_range: tuple[float, float] = (-3.0, 5.0),
    ) -> None:
        k = len(self.names)
        horizon, n_steps = check_time_grid(horizon, n_steps)
        sigma = per_population_reals("sigma", sigma, k, 0.0)
        eps = per_population_reals("running_cost", running_cost, k, 0.0)
        c = per_population_reals("terminal_cost", terminal_cost, k, 0.0)
        means = per_population_reals("init_mean", init_mean, k)
        variances = per_population_reals("init_var", init_var, k, 0.0)
        weights = check_matrix("coupling", coupling, k)
        terminal_weights = check_matrix("terminal_coupling", terminal_coupling, k)
        action_bound = check_real("action_bound", action_bound, 0.0, low_open=True)
        n_bins, histogram_range = check_int("n_bins", n_bins), check_interval("histogram_range", histogram_range)
        self.populations = tuple(
            TrackingPopulation(
                self.names, horizon, n_steps, sigma[i], eps[i], c[i], weights[i], terminal_weights[i],
                means[i], variances[i], action_bound, n_bins, histogram_range,
            )
            for i in range(k)
        )  # fmt: skip
        self.coupling, self.terminal_coupling = weights, terminal_weights

    def best_response(self, population: int, flows: Sequence[PopulationFlow]) -> BestResponse:
        """Exact best response ``a_n = -K_n x - k_n`` of ``population`` to the frozen mean flows of all populations."""
        member = self.populations[population]
        means = np.array([[mf["mean"] for mf in flow.mean_fields] for flow in flows]).T
        solution = member.solve_frozen_targets(member.targets(means))
        cost = solution.expected_cost(member.init_mean, member.init_var)
        return BestResponse(member.affine_policy(solution.gains, solution.offsets), -cost)

    def solve_equilibrium(self) -> GameEquilibrium:
        """Coupled discrete Riccati recursions; the equilibrium is ``a^k_n = -K^k_n x - C^k_n . m_n``.

        Per population ``K^k_n = P^k'/(1 + P^k' dt)``, ``P^k_n = dt (K^2 + eps_k) + P^k' (1 - dt K)^2``,
        ``P^k_N = c_k``. The offsets are linear in the vector of means, ``k^k_n = C^k_n . m_n``, and the linear
        value coefficient is ``s^k_n = Pi^k_n . m_n``, ``Pi^k_N = -c_k WT_k``. With ``Lam = diag(1/(1 + P' dt))``,
        ``D = diag(K_n)`` and the matrix ``Pi'`` of rows ``Pi^k_{n+1}``:
        ``C_n = (I + dt Lam Pi')^{-1} Lam Pi' (I - dt D)`` (rows ``C^k_n``), ``G_n = I - dt (D + C_n)``,
        ``Pi^k_n = dt K^k C^k - dt eps_k W_k + (1 - dt K^k)(Pi^k' G_n - P^k' dt C^k)``, and the means move as
        ``m_{n+1} = G_n m_n``; variances ``v^k_{n+1} = (1 - dt K^k_n)^2 v^k_n + sigma_k^2 dt``.
        """
        dt, n_steps, members = self.dt, self.n_steps, self.populations
        k_pop, identity = len(members), np.eye(len(members))
        eps = np.array([member.running_cost for member in members])
        P = np.array([member.terminal_cost for member in members])
        Pi = -P[:, None] * self.terminal_coupling
        gains, cross = np.empty((n_steps, k_pop)), np.empty((n_steps, k_pop, k_pop))
        for n in reversed(range(n_steps)):
            K = P / (1.0 + P * dt)
            scaled = Pi / (1.0 + P * dt)[:, None]
            system = identity + dt * scaled
            if abs(np.linalg.det(system)) < 1e-12:
                raise ValueError(
                    f"these parameters have no regular equilibrium: I + dt Lam Pi' is singular at step {n}"
                )
            C = np.linalg.solve(system, scaled @ (identity - dt * np.diag(K)))
            G = identity - dt * (np.diag(K) + C)
            Pi = (
                dt * K[:, None] * C
                - dt * eps[:, None] * self.coupling
                + (1.0 - dt * K)[:, None] * (Pi @ G - dt * P[:, None] * C)
            )
            P = dt * (K**2 + eps) + P * (1.0 - dt * K) ** 2
            gains[n], cross[n] = K, C
        means, variances = np.empty((n_steps + 1, k_pop)), np.empty((n_steps + 1, k_pop))
        means[0] = [member.init_mean for member in members]
        variances[0] = [member.init_var for member in members]
        sigma2 = np.array([member.sigma**2 for member in members])
        for n in range(n_steps):
            means[n + 1] = (identity - dt * (np.diag(gains[n]) + cross[n])) @ means[n]
            variances[n + 1] = (1.0 - dt * gains[n]) ** 2 * variances[n] + sigma2 * dt
        offsets = np.einsum("nkj,nj->nk", cross, means[:-1])
        policies, returns, flows = [], [], []
        for i, member in enumerate(members):
            solution = member.solve_frozen_targets(member.targets(means), gains[:, i], offsets[:, i])
            policies.append(member.affine_policy(gains[:, i], offsets[:, i]))
            returns.append(-solution.expected_cost(member.init_mean, member.init_var))
            histograms = np.stack(
                [
                    gaussian_histogram(m, np.sqrt(v), member.histogram_bounds, member.n_bins)
                    for m, v in zip(means[:, i], variances[:, i])
                ]
            )
            flows.append(PopulationFlow(histograms.astype(np.float32), tuple({"mean": float(m)} for m in means[:, i])))
        return GameEquilibrium(self.names, tuple(policies), tuple(returns), tuple(flows))


class LinearQuadraticMultiEnv(MeanFieldEnv):
    r"""## Description

    Two interacting linear-quadratic populations, ``red`` and ``blue``, with an exact equilibrium
    (``model.solve_equilibrium()``, coupled discrete Riccati recursions). Each agent steers a scalar state and
    tracks a weighted mix of both populations' means; the learner is particle 0 of ``learner_population``.
    For population ``k`` with ``dt = T / N``, ``xi_n ~ N(0, 1)`` and ``m^j_n`` the empirical mean of
    population ``j``:

    ``x_{n+1} = x_n + dt a_n + sigma_k sqrt(dt) xi_n``,  ``y^k_n = sum_j W_kj m^j_n``.

    With ``coupling = diag(kappa_red, kappa_blue)`` (no cross weights) the populations decouple into two
    copies of ``MFGLinearQuadratic-v0``'s tracking model.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``, rescaled to ``a = action_bound * action``.

    | Num | Action                | Min | Max |
    |-----|-----------------------|-----|-----|
    | 0   | control ``a / a_max`` | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape         | Meaning                                                                 |
    |--------------|---------------|-------------------------------------------------------------------------|
    | `state`      | (1,)          | own state ``x`` (unbounded)                                             |
    | `population` | (2 * n_bins,) | ``red``'s then ``blue``'s histogram of ``x`` on ``histogram_range``     |
    | `time`       | (1,)          | ``t_n / T``                                                             |

    Each histogram sums to 1; particles outside ``histogram_range`` count in the edge bins.

    ## Rewards

    ``r^k_n = -dt [a_n^2/2 + eps_k/2 (x_n - y^k_n)^2]`` and, at the last step, additionally
    ``-c_k/2 (x_N - sum_j WT_kj m^j_N)^2``.

    ## Starting State

    ``x_0 ~ N(init_mean[k], init_var[k])`` for every particle of population ``k``.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    Per-population values are pairs ``(red, blue)``; matrices have one row per population.

    | keyword | symbol | default |
    |---|---|---|
    | `horizon`, `n_steps` | T, N | 1.0, 50 |
    | `sigma` | sigma_k >= 0 | (1.0, 0.5) |
    | `running_cost` | eps_k >= 0 | (2.0, 1.0) |
    | `terminal_cost` | c_k >= 0 | (1.0, 2.0) |
    | `coupling` | W (row k: weights of the means in y^k) | ((0.5, 0.3), (0.4, 0.2)) |
    | `terminal_coupling` | WT | ((0.5, 0.3), (0.4, 0.2)) |
    | `init_mean`, `init_var` | m^k_0, v^k_0 | (2.0, -1.0), (0.25, 0.5) |
    | `action_bound` | a_max > 0 | 5.0 |
    | `n_bins`, `histogram_range` | histogram grid (both populations) | 40, (-3, 5) |
    | `n_particles` | particles per population (int or pair) | 1000 |
    | `learner_population` | ``red`` or 0, ``blue`` or 1 | 0 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    ## Version History

    * v0: Initial version.
    """

    model_class = LinearQuadraticMultiModel
    env_id = "MFGLinearQuadraticMulti-v0"
    # Not a ClassVar: the base class declares ``metadata`` as an (overridable) instance attribute.
    metadata: dict[str, Any] = {"render_modes": [], "render_fps": 10}  # noqa: RUF012
