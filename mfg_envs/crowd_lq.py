"""Crowd navigation with an exact equilibrium (``MFGCrowdLQ-v0``): the crowd dynamics of
:class:`mfg_envs.crowd.CrowdDynamics` on the unbounded plane, quadratic goal costs and the Gaussian log-density
aversion ``c_c log rho_n(p)``; exactly solvable by a vector Riccati recursion per axis, also with a random initial mean
position (:meth:`CrowdLQModel.solve_equilibrium`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mfg_envs.core import MeanField, PopulationFlow, check_int, check_real
from mfg_envs.crowd import CrowdDynamics, squared_norms
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import AffinePolicy, BestResponse, Equilibrium, gaussian_histogram

# Axis a of the per-axis state z = (p, v) is (state[a], state[2 + a]); its action is u[a].
_ACTION_ROWS, _STATE_COLUMNS = [0, 0, 1, 1], [0, 2, 1, 3]


class CrowdLQModel(CrowdDynamics):
    """Crowd navigation with quadratic goal costs and Gaussian log-density aversion (exact equilibrium).

    ``cost_n = dt [r/2 |u|^2 + q/2 |p - g|^2 + c_c sum_axes log rho_n(p)]``, terminal
    ``qT/2 |p_N - g|^2 + qv/2 |v_N|^2``; ``rho_n`` per axis is ``N(m_n, s_n)`` with ``m_n``, ``Var(p_n)``
    the population's empirical position mean and variance and ``s_n = Var(p_n) + h^2``. The initial mean
    ``M_0 ~ N(init_mean, diag(init_mean_std^2))`` is drawn once per episode for the whole population.
    """

    def __init__(
        self,
        horizon: float = 4.0,
        n_steps: int = 40,
        sigma: float = 0.3,
        control_cost: float = 1.0,
        goal_cost: float = 0.25,
        terminal_goal_cost: float = 1.0,
        terminal_velocity_cost: float = 1.0,
        crowd_aversion: float = 0.2,
        bandwidth: float = 0.5,
        goal: tuple[float, float] = (1.0, 0.0),
        init_mean: tuple[float, float, float, float] = (-1.0, 0.5, 0.0, 0.0),
        init_var: tuple[float, float, float, float] = (0.02, 0.02, 0.01, 0.01),
        init_mean_std: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
        action_bound: float = 2.0,
        n_bins: int = 20,
        domain: tuple[float, float] = (-2.0, 2.0),
    ) -> None:
        self._set_dynamics(
            horizon, n_steps, sigma, goal, init_mean, init_var, init_mean_std, action_bound, n_bins, domain
        )
        self.control_cost = check_real("control_cost", control_cost, 0.0, low_open=True)
        self.goal_cost = check_real("goal_cost", goal_cost, 0.0)
        self.terminal_goal_cost = check_real("terminal_goal_cost", terminal_goal_cost, 0.0)
        self.terminal_velocity_cost = check_real("terminal_velocity_cost", terminal_velocity_cost, 0.0)
        self.crowd_aversion = check_real("crowd_aversion", crowd_aversion, 0.0)
        self.bandwidth = check_real("bandwidth", bandwidth, 1e-100)  # h^2 must not underflow
        self.state_low, self.state_high = np.full(4, -np.inf), np.full(4, np.inf)
        dt = self.dt
        # Per axis z = (p, v): z' = A z + B u + W xi.
        self._A = np.array([[1.0, dt], [0.0, 1.0]])
        self._B = np.array([dt**2, dt])
        self._W = self.sigma * math.sqrt(dt) * np.array([dt, 1.0])
        # The most concentrated crowd (Var p = 0, s_n = h^2) is the most concave cost: if the best response
        # is well posed there, it is for every flow.
        zeros = np.zeros((self.n_steps, 2))
        self._backward(zeros, zeros)

    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        """Per-axis position mean ``m_n`` and variance ``Var(p_n)`` (ddof 0) of all particles."""
        positions = states[:, :2]
        return {"mean": positions.mean(axis=0), "var": positions.var(axis=0)}

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        """``-dt [r/2 |u|^2 + q/2 |p - g|^2 + c_c sum_axes log rho_n(p)]``."""
        positions = states[:, :2]
        spread = mean_field["var"] + self.bandwidth**2
        log_density = -0.5 * np.log(2.0 * np.pi * spread) - (positions - mean_field["mean"]) ** 2 / (2.0 * spread)
        cost = (
            0.5 * self.control_cost * squared_norms(actions)
            + 0.5 * self.goal_cost * squared_norms(positions - self.goal)
            + self.crowd_aversion * (log_density[:, 0] + log_density[:, 1])
        )
        return -self.dt * cost

    def action_reward(self, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        """``-dt r/2 |u|^2`` at the accelerations ``(ax, ay)`` (broadcast), as :meth:`reward` charges it."""
        return -self.dt * 0.5 * self.control_cost * (ax * ax + ay * ay)

    def terminal_reward(self, states: np.ndarray, mean_field: MeanField) -> np.ndarray:
        """``-(qT/2 |p_N - g|^2 + qv/2 |v_N|^2)``."""
        return -0.5 * (
            self.terminal_goal_cost * squared_norms(states[:, :2] - self.goal)
            + self.terminal_velocity_cost * squared_norms(states[:, 2:])
        )

    # ------------------------------------------------------------------ exact solution
    def _backward(
        self, means: np.ndarray, variances: np.ndarray, policy: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backward Riccati recursion on both axes at once against frozen ``m_n``, ``Var(p_n)`` (``(N, 2)``).

        Stage cost ``dt [r/2 u^2 + z'Q_n z/2 + q_n'z + c_n]`` with ``s_n = Var + h^2``,
        ``Q_n = diag(q - c_c/s_n, 0)``, ``q_n = (-q g + c_c m_n/s_n, 0)``,
        ``c_n = q g^2/2 - c_c m_n^2/(2 s_n) - c_c/2 log(2 pi s_n)``; value ``V_n = z'P_n z/2 + sig_n'z + e_n``,
        ``P_N = diag(qT, qv)``, ``sig_N = (-qT g, 0)``, ``e_N = qT g^2/2``. Best response (``policy`` None):
        ``H = dt r + B'P'B``, ``K_n = B'P'A/H``, ``k_n = B'sig'/H``; with ``policy = (K, k)`` (``(N, 2, 2)``,
        ``(N, 2)``) the same recursion evaluates that policy. Returns ``(K, k, cost per axis)``, the cost
        ``tr(P_0 S_0)/2 + zbar_0'P_0 zbar_0/2 + sig_0'zbar_0 + e_0`` from one agent's initial law averaged over the
        draw of ``M_0`` (:meth:`_initial_law`; exact, since the cost is quadratic in ``z_0``).
        """
        dt, r, A, B, W, goal = self.dt, self.control_cost, self._A, self._B, self._W, self.goal
        q, c_c = self.goal_cost, self.crowd_aversion
        spread = variances + self.bandwidth**2
        quad = q - c_c / spread
        linear = -q * goal + c_c * means / spread
        const = 0.5 * q * goal**2 - 0.5 * c_c * means**2 / spread - 0.5 * c_c * np.log(2.0 * np.pi * spread)
        P = np.zeros((2, 2, 2))
        P[:, 0, 0], P[:, 1, 1] = self.terminal_goal_cost, self.terminal_velocity_cost
        sig = np.zeros((2, 2))
        sig[:, 0] = -self.terminal_goal_cost * goal
        e = 0.5 * self.terminal_goal_cost * goal**2
        K, k = (np.empty((self.n_steps, 2, 2)), np.empty((self.n_steps, 2))) if policy is None else policy
        Q, lin = np.zeros((2, 2, 2)), np.zeros((2, 2))
        for n in reversed(range(self.n_steps)):
            PB = P @ B
            BPB = PB @ B
            if policy is None:
                H = dt * r + BPB
                if (H <= 0.0).any():
                    raise ValueError(
                        "crowd_aversion / bandwidth**2 too large: the best response against the most concentrated"
                        " crowd is ill posed (dt r + B'P'B <= 0); lower crowd_aversion or raise bandwidth"
                    )
                K[n] = PB @ A / H[:, None]
                k[n] = sig @ B / H
            Acl = A - B[:, None] * K[n][:, None, :]
            Q[:, 0, 0], lin[:, 0] = quad[n], linear[n]
            e = (
                dt * (0.5 * r * k[n] ** 2 + const[n])
                + 0.5 * k[n] ** 2 * BPB
                - (sig @ B) * k[n]
                + 0.5 * np.einsum("i,aij,j->a", W, P, W)
                + e
            )
            sig = dt * lin + dt * r * K[n] * k[n][:, None] + np.einsum("aij,ai->aj", Acl, sig - PB * k[n][:, None])
            P = dt * Q + dt * r * K[n][:, :, None] * K[n][:, None, :] + np.einsum("aki,akl,alj->aij", Acl, P, Acl)
        zbar, cov = self._initial_law(over_draws=True)
        cost = 0.5 * np.einsum("aij,aji->a", P, cov) + 0.5 * np.einsum("ai,aij,aj->a", zbar, P, zbar)
        return K, k, cost + (sig * zbar).sum(axis=1) + e

    def _initial_law(self, over_draws: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-axis mean ``zbar_0`` ``(2, 2)`` and diagonal covariance ``S_0`` ``(2, 2, 2)`` of ``z_0 = (p, v)``: the
        population's law given ``M_0 = init_mean`` (``S_0 = diag(init_var)``), or with ``over_draws`` one agent's
        start over the draws of ``M_0`` too (``S_0 = diag(init_var + init_mean_std^2)``)."""
        variances = self.init_var + self.init_mean_std**2 if over_draws else self.init_var
        cov = np.zeros((2, 2, 2))
        cov[:, [0, 1], [0, 1]] = variances.reshape(2, 2).T
        return self.init_mean.reshape(2, 2).T, cov

    def _forward(self, K: np.ndarray, k: np.ndarray, C: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact position means and variances ``(N+1, 2)`` of the draw ``M_0 = init_mean`` under
        ``u = -K_n z - C_n m_n - k_n`` per axis (``C`` ``(N, 2)``, default 0; ``m_n = zbar_n[p]``, the population's
        mean position): ``zbar' = Acl zbar - B (k + C zbar[p])``, ``Sigma' = Acl Sigma Acl' + W W'``."""
        C = np.zeros((self.n_steps, 2)) if C is None else C
        zbar, cov = self._initial_law()
        means, variances = [zbar[:, 0]], [cov[:, 0, 0]]
        noise_cov = np.outer(self._W, self._W)
        for n in range(self.n_steps):
            Acl = self._A - self._B[:, None] * K[n][:, None, :]
            zbar = np.einsum("aij,aj->ai", Acl, zbar) - self._B * (k[n] + C[n] * zbar[:, 0])[:, None]
            cov = np.einsum("aik,akl,ajl->aij", Acl, cov, Acl) + noise_cov
            means.append(zbar[:, 0])
            variances.append(cov[:, 0, 0])
        return np.array(means), np.array(variances)

    def _affine_policy(self, K: np.ndarray, k: np.ndarray, C: np.ndarray | None = None) -> AffinePolicy:
        """``u = -K_n z - k_n`` per axis, plus ``- C_n m_n`` with the axis' population mean position ``m_n`` when
        ``C`` (``(N, 2)``) is given."""
        gains = np.zeros((self.n_steps, 2, 4))
        gains[:, _ACTION_ROWS, _STATE_COLUMNS] = K.reshape(self.n_steps, 4)
        population_gains = None if C is None else C[:, :, None] * np.eye(2)
        return AffinePolicy(self, gains, k.copy(), population_gains)

    def _axis_gains(self, policy: AffinePolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-axis ``(K (N, 2, 2), k (N, 2), C (N, 2))`` of an affine policy that does not couple the axes
        (``C``: the gains on the axis' own population mean position, 0 without population gains)."""
        coupling = policy.gains.copy()
        coupling[:, _ACTION_ROWS, _STATE_COLUMNS] = 0.0
        population_gains = (
            np.zeros((self.n_steps, 2, 2)) if policy.population_gains is None else policy.population_gains
        )
        if (
            policy.gains.shape != (self.n_steps, 2, 4)
            or coupling.any()
            or population_gains.shape != (self.n_steps, 2, 2)
            or population_gains[:, [0, 1], [1, 0]].any()
        ):
            raise ValueError(
                f"policy gains must have shape ({self.n_steps}, 2, 4) with u_x depending on (x, vx) and u_y on"
                f" (y, vy) only, and population gains (if any) shape ({self.n_steps}, 2, 2) with u_x depending on"
                " the mean x and u_y on the mean y only"
            )
        K = policy.gains[:, _ACTION_ROWS, _STATE_COLUMNS].reshape(self.n_steps, 2, 2)
        return K, policy.offsets, population_gains[:, [0, 1], [0, 1]]

    def _frozen_statistics(self, flow: PopulationFlow) -> tuple[np.ndarray, np.ndarray]:
        if len(flow.mean_fields) != self.n_steps + 1:
            raise ValueError(f"flow must hold {self.n_steps + 1} steps, got {len(flow.mean_fields)}")
        steps = flow.mean_fields[:-1]
        return np.array([mf["mean"] for mf in steps]), np.array([mf["var"] for mf in steps])

    def exact_flow(self, policy: AffinePolicy) -> PopulationFlow:
        """Exact law of the population of the draw ``M_0 = init_mean`` when everybody plays ``policy``
        (axis-separable, action clip ignored; population gains read the exact mean position, not a binned one).

        The positions stay Gaussian with independent axes: ``mean_fields[n]`` holds their exact mean
        and variance and ``population[n]`` the product-Gaussian cell probabilities on the histogram grid.
        """
        means, variances = self._forward(*self._axis_gains(policy))
        histograms = np.stack(
            [
                np.outer(
                    *(
                        gaussian_histogram(m, np.sqrt(v), self.histogram_bounds[:1], self.n_bins)
                        for m, v in zip(mean, var)
                    )
                ).ravel()
                for mean, var in zip(means, variances)
            ]
        )
        return PopulationFlow(histograms, tuple({"mean": m, "var": v} for m, v in zip(means, variances)))

    def axis_costs(self, policy: AffinePolicy, flow: PopulationFlow) -> np.ndarray:
        """Exact expected cost ``J(pi; mu)`` per axis (x, y) of one agent playing ``policy`` against the frozen
        ``flow`` from the initial law, averaged over the draw of ``M_0`` (axis-separable policies, population gains
        reading the flow's mean positions ``m_n``, action clip ignored); the return is ``-sum``."""
        means, variances = self._frozen_statistics(flow)
        K, k, C = self._axis_gains(policy)
        return self._backward(means, variances, (K, k + C * means))[2]

    def best_response(self, flow: PopulationFlow) -> BestResponse:
        """Exact best response ``u_n = -K_n z - k_n`` per axis to the frozen ``(m_n, Var p_n)`` of ``flow``.

        The policy does not depend on the initial law: it is the best response to ``flow`` whatever ``M_0`` the
        episode drew. Its ``expected_return`` starts from one agent's initial law averaged over ``M_0``
        (``z_0 ~ N(init_mean, diag(init_var + init_mean_std^2))``) against this one frozen flow.
        """
        K, k, cost = self._backward(*self._frozen_statistics(flow))
        return BestResponse(self._affine_policy(K, k), -float(cost.sum()))

    def solve_equilibrium(self, tolerance: float = 1e-13, max_iterations: int = 10_000) -> Equilibrium:
        """The exact equilibrium (:meth:`_fixed_point`), a feedback of the population mean position when the initial
        mean is random.

        ``init_mean_std = 0``: ``u_n = -K_n z - k_n`` per axis and ``expected_return = -J*``. A random initial
        mean position (docs/models.md, "Random initial mean of the crowd"): the equilibrium of the draw ``M_0``
        moves its mean path along ``eta_n = Acl0_{n-1} ... Acl0_0 (1, 0)`` (``Acl0`` the crowd-blind closed loop),
        so ``u_n = -K_n z - C_n m_n - k_n + C_n m*_n`` with ``C_n = (K0_n - K_n) eta_n / eta_n[p]``, ``m*_n`` the
        equilibrium mean position of ``M_0 = init_mean`` and ``m_n`` read from the observation;
        ``expected_return = -E[J*(M_0)]``, exactly the mean of ``J*`` at ``M_0 = init_mean +- init_mean_std``
        (``J*`` is quadratic in ``M_0``, per axis). ``mean_fields`` and ``histograms`` are the flow of the draw
        ``M_0 = init_mean``. ``NotImplementedError`` for a random initial mean velocity, which no observation shows.
        """
        tolerance = check_real("tolerance", tolerance, 0.0, low_open=True)
        max_iterations = check_int("max_iterations", max_iterations)
        if self.init_mean_std[2:].any():
            raise NotImplementedError(
                "MFGCrowdLQ-v0 with a random initial mean velocity (init_mean_std[2:] > 0) has no equilibrium policy"
                " of the observation: the equilibrium depends on the population's mean velocity, and the population"
                " entry shows positions only; randomize the initial mean position only"
            )
        K, k, cost, blind_gains = self._fixed_point(tolerance, max_iterations)
        flow = self.exact_flow(self._affine_policy(K, k))
        if not self.init_mean_std.any():
            return Equilibrium(self._affine_policy(K, k), -float(cost.sum()), flow.mean_fields, flow.population)
        means = np.array([mf["mean"] for mf in flow.mean_fields[:-1]])
        C = self._population_gains(K, blind_gains)
        draws = (self.given_initial_mean(self.init_mean + sign * self.init_mean_std) for sign in (1.0, -1.0))
        expected_cost = np.mean([draw._fixed_point(tolerance, max_iterations)[2].sum() for draw in draws])
        return Equilibrium(
            self._affine_policy(K, k - C * means, C), -float(expected_cost), flow.mean_fields, flow.population
        )

    def _fixed_point(
        self, tolerance: float, max_iterations: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The equilibrium of the draw ``M_0 = init_mean`` as a fixed point on the variance flow ``Var(p_0..p_{N-1})``
        (damped Picard, factor 0.5): ``(K, k, cost per axis, crowd-blind gains K0)``.

        The gains depend on the flow only through ``s_n``. The crowd term's gradient vanishes at the mean, so
        the equilibrium mean path is the optimal path of the deterministic problem without the crowd
        (``c_c = 0``, gains ``K0``): it is computed once, and the iteration ``Var <- (Var + Var[BR(m*, Var)]) / 2``
        runs until the best response reproduces the variance flow to ``tolerance``. The cost is :meth:`_backward`'s
        (``J*`` when ``init_mean_std = 0``).
        """
        blind = CrowdLQModel(**{**self._keyword_values(), "crowd_aversion": 0.0})
        zeros = np.zeros((self.n_steps, 2))
        blind_gains, blind_offsets, _ = blind._backward(zeros, zeros)
        means, variances = blind._forward(blind_gains, blind_offsets)
        for _ in range(max_iterations):
            K, k, cost = self._backward(means[:-1], variances[:-1])
            response = self._forward(K, k)[1]
            residual = np.abs(response - variances).max()
            if residual < tolerance:
                return K, k, cost, blind_gains
            variances = 0.5 * (variances + response)
        raise RuntimeError(f"equilibrium iteration did not converge (residual {residual:.2e})")

    def _population_gains(self, K: np.ndarray, blind_gains: np.ndarray) -> np.ndarray:
        """``C_n`` ``(N, 2)`` of :meth:`solve_equilibrium`: ``(K0_n - K_n) eta_n / eta_n[p]`` on the axes with a random
        initial mean position, 0 on the others; ``eta_{n+1} = (A - B K0_n) eta_n``, ``eta_0 = (1, 0)``.

        ``NotImplementedError`` where ``eta_n[p] = 0``: the mean position of that step does not show ``M_0``.
        """
        random = self.init_mean_std[:2] > 0.0
        eta = np.tile([1.0, 0.0], (2, 1))
        C = np.zeros((self.n_steps, 2))
        for n in range(self.n_steps):
            if (np.abs(eta[random, 0]) < 1e-9).any():
                raise NotImplementedError(
                    f"MFGCrowdLQ-v0: at step {n} the equilibrium mean position does not depend on the random initial"
                    " mean, so no observation shows it; no equilibrium policy of the observation at these parameters"
                )
            C[n, random] = np.einsum("ai,ai->a", blind_gains[n] - K[n], eta)[random] / eta[random, 0]
            eta = np.einsum("aij,aj->ai", self._A - self._B[:, None] * blind_gains[n][:, None, :], eta)
        return C

    def given_initial_mean(self, initial_mean: np.ndarray) -> CrowdLQModel:
        """This model with the fixed initial law of one draw ``M_0 = initial_mean`` (``init_mean_std = 0``)."""
        return CrowdLQModel(**{**self._keyword_values(), "init_mean": initial_mean, "init_mean_std": np.zeros(4)})

    def _keyword_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.keywords()}


class CrowdLQEnv(MeanFieldEnv):
    r"""## Description

    Crowd navigation with an exact equilibrium (``mfg_envs.solve_equilibrium``). Each agent is a
    double integrator in the plane that accelerates toward a goal ``g`` and pays for standing where
    the crowd is dense, measured by a Gaussian fit ``rho_n`` of all particles' positions. Per axis
    (``x`` and ``y`` independently), with ``dt = T / N`` and ``xi_n ~ N(0, 1)`` one draw per axis:

    ``v_{n+1} = v_n + dt u_n + sigma sqrt(dt) xi_n``,  ``p_{n+1} = p_n + dt v_{n+1}``.

    ``rho_n`` is, per axis, ``N(m_n, s_n)`` with ``m_n`` the particles' mean position and
    ``s_n = Var(p_n) + h^2`` (empirical variance, ddof 0, plus the bandwidth), so
    ``c_c log rho_n(p) = -c_c/2 log(2 pi s_n) - c_c (p - m_n)^2 / (2 s_n)``: being far from the
    crowd's centre pays, and agents spread. The plane is unbounded.

    With a random initial mean position (``init_mean_std``) the equilibrium is a feedback of the own state and
    of the population's mean position ``m_n``, read from the observation's population entry (its binned mean):
    ``u_n = -K_n z - C_n m_n - k_n`` per axis, and ``expected_return`` averages ``-J*`` over the draw.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``, rescaled to the acceleration ``u = action_bound * action``.

    | Num | Action                | Min | Max |
    |-----|-----------------------|-----|-----|
    | 0   | ``u_x / action_bound`` | -1  | 1   |
    | 1   | ``u_y / action_bound`` | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape        | Meaning                                                           |
    |--------------|--------------|-------------------------------------------------------------------|
    | `state`      | (4,)         | own ``(x, y, vx, vy)`` (unbounded)                                |
    | `population` | (n_bins**2,) | histogram of all particles' ``(x, y)`` on ``domain^2`` (sums to 1) |
    | `time`       | (1,)         | ``t_n / T``                                                       |

    The histogram is flattened in C order (``x`` slowest); particles outside ``domain^2`` count in the
    edge cells.

    ## Rewards

    ``r_n = -dt [r/2 |u_n|^2 + q/2 |p_n - g|^2 + c_c sum_axes log rho_n(p_n)]`` and, at the last
    step, additionally ``-(qT/2 |p_N - g|^2 + qv/2 |v_N|^2)``.

    ## Starting State

    One initial mean ``M_0 ~ N(init_mean, diag(init_mean_std^2))`` per episode, shared by all particles
    (``M_0 = init_mean`` at the default ``init_mean_std = 0``, and nothing is drawn for it); then
    ``(x, y, vx, vy) ~ N(M_0, diag(init_var))`` for every particle.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    | keyword | symbol | default |
    |---|---|---|
    | `horizon` | T > 0 | 4.0 |
    | `n_steps` | N | 40 |
    | `sigma` | sigma >= 0 | 0.3 |
    | `control_cost` | r > 0 | 1.0 |
    | `goal_cost` | q >= 0 | 0.25 |
    | `terminal_goal_cost` | qT >= 0 | 1.0 |
    | `terminal_velocity_cost` | qv >= 0 | 1.0 |
    | `crowd_aversion` | c_c >= 0 | 0.2 |
    | `bandwidth` | h > 0 (the best response must be well posed at ``s_n = h^2``) | 0.5 |
    | `goal` | g | (1.0, 0.0) |
    | `init_mean` | mean of ``(x, y, vx, vy)`` | (-1.0, 0.5, 0.0, 0.0) |
    | `init_var` | variances, >= 0 | (0.02, 0.02, 0.01, 0.01) |
    | `init_mean_std` | std of ``M_0``, >= 0 (the exact equilibrium needs 0 on ``vx, vy``) | (0.0, 0.0, 0.0, 0.0) |
    | `action_bound` | u_max > 0 | 2.0 |
    | `n_bins`, `domain` | histogram cells per axis, square ``domain^2`` | 20, (-2.0, 2.0) |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    At the defaults ``J* = 0.7266301773`` (equilibrium return ``-J*``).

    ## Version History

    * v0: Initial version.
    """

    model_class = CrowdLQModel
    env_id = "MFGCrowdLQ-v0"
