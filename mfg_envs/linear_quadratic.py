"""Linear-quadratic mean field game: the tracking model and the Carmona-Fouque-Sun systemic-risk model."""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from mfg_envs.core import (
    ConstantPolicy,
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    PopulationPolicy,
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
from mfg_envs.initial_law import gaussian_start
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
    """Scalar LQ dynamics and costs coupled through the population mean ``m_n = E[x_n]`` (given the common noise).

    ``x_{n+1} = x_n + dt [beta (m_n - x_n) + a_n] + sigma sqrt(dt) xi_n + sigma0 sqrt(dt) xi0_n``, ``xi0_n`` shared;
    ``x_0 = M0 + sqrt(v_0) xi``, ``M0 ~ N(m_0, s_0^2)`` shared;
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
        init_mean_std: float = 0.0,
        common_noise: float = 0.0,
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
        self.init_mean_std = check_real("init_mean_std", init_mean_std, 0.0)
        self.common_noise = check_real("common_noise", common_noise, 0.0)
        # common noise keeps the flow random after the initial draw: a best response answers the population's policy
        self.flow_is_random = self.common_noise > 0.0
        self.action_bound = check_real("action_bound", action_bound, 0.0, low_open=True)
        self.n_bins = check_int("n_bins", n_bins)
        self.histogram_bounds = np.array([check_interval("histogram_range", histogram_range)])
        self.state_low, self.state_high = np.full(1, -np.inf), np.full(1, np.inf)

    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``M0 ~ N(m_0, s_0^2)`` drawn first, once for the population (so the same seed gives the same ``M0`` for any
        ``n``), then ``x_0 = M0 + sqrt(v_0) xi``; with ``s_0 = 0`` nothing is drawn for ``M0``."""
        return gaussian_start(n, rng, np.array([self.init_mean]), self.init_mean_std, np.sqrt(self.init_var))

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 1)`` idiosyncratic ``xi``; with common noise ``(n, 2)``, the shared ``xi0`` (drawn first, once) in
        column 1."""
        if self.common_noise == 0.0:
            return rng.standard_normal((n, 1))
        common = rng.standard_normal()
        return np.column_stack([rng.standard_normal(n), np.full(n, common)])

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
        moved = states + dt * drift + self.sigma * np.sqrt(dt) * noise[:, :1]
        if self.common_noise > 0.0:
            moved += self.common_noise * np.sqrt(dt) * noise[:, 1:]
        return moved

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

    def _affine_policy(
        self, gains: np.ndarray, offsets: np.ndarray, population_gains: np.ndarray | None = None
    ) -> AffinePolicy:
        """``a_n = -K_n x - k_n`` (``population_gains``: ``- C_n m_n`` too, ``m_n`` read from the observation)."""
        population = None if population_gains is None else population_gains.reshape(-1, 1, 1)
        return AffinePolicy(self, gains.reshape(-1, 1, 1), offsets.reshape(-1, 1), population)

    def best_response(self, flow: PopulationFlow) -> BestResponse:
        """Exact best response ``a_n = -K_n x - k_n`` to the frozen mean flow of ``flow``.

        ``expected_return`` is that of the nominal initial law ``N(m_0, v_0)``: with a random initial mean the flow
        belongs to one draw of ``M0`` (the Nash gap simulates the best response on that draw). With common noise a
        flow is one path of a random flow, and a best response answers the population's policy instead
        (:meth:`feedback_best_response`): ``ValueError``."""
        if self.flow_is_random:
            raise ValueError(
                "with common_noise > 0 the flow is random: the best response answers the population's policy"
                " (feedback_best_response(policy), or nash_gap(policy, env, method='exact'))"
            )
        solution = self.solve_frozen_flow(np.array([mf["mean"] for mf in flow.mean_fields]))
        cost = solution.expected_cost(self.init_mean, self.init_var)
        return BestResponse(self._affine_policy(solution.gains, solution.offsets), -cost)

    # ------------------------------------------------------------------ the augmented state z = (x, m, 1)
    def population_feedback(self, policy: PopulationPolicy) -> np.ndarray:
        """``(N, 3)`` rows ``(K_n, C_n, k_n)`` of a policy ``a_n = -K_n x - C_n m_n - k_n`` (physical units, an
        :class:`AffinePolicy`, with or without population gains, or a :class:`ConstantPolicy`: ``K = C = 0``,
        ``k = -a``); ``NotImplementedError`` for any other policy."""
        shape = (self.n_steps, 1, 1)
        if isinstance(policy, ConstantPolicy) and policy.action.size == 1:
            constant = -self.action_bound * float(np.clip(policy.action, -1.0, 1.0)[0])
            return np.column_stack([np.zeros(self.n_steps), np.zeros(self.n_steps), np.full(self.n_steps, constant)])
        own = getattr(policy, "model", None)
        if not (isinstance(policy, AffinePolicy) and policy.gains.shape == shape and isinstance(own, type(self))):
            raise NotImplementedError(
                "the exact best response under common noise needs a population policy affine in (x, m) of an LQ model"
                f" (an AffinePolicy with gains of shape {shape}), got {type(policy).__name__}"
            )
        population = np.zeros(self.n_steps) if policy.population_gains is None else policy.population_gains[:, 0, 0]
        # the policy normalizes by its own model's bound, this env rescales by its own
        scale = self.action_bound / own.action_bound
        return scale * np.column_stack([policy.gains[:, 0, 0], population, policy.offsets[:, 0]])

    def augmented_values(
        self, population: np.ndarray | None = None, agent: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Backward recursion on ``z = (x, m, 1)``: ``V_n(z) = z^T S_n z / 2`` (``S``: ``(N+1, 3, 3)``) of an agent
        playing ``a = -G_n z``, ``G_n = (K_n, C_n, k_n)``, while the population plays ``population`` (rows of
        :meth:`population_feedback`). ``agent`` fixes ``G`` (the cost of that policy); ``None`` gives the best
        response ``G_n = (h + S'_{0,:} A_n) / (1 + dt S'_00)``; ``population=None`` the equilibrium, where ``G_n``
        answers itself: ``K = (q + S'_00 al) / (1 + dt S'_00)``,
        ``C = (-q kappa + beta dt S'_00 + S'_01 (1 - dt K)) / (1 + dt (S'_00 + S'_01))``,
        ``k = S'_02 / (1 + dt (S'_00 + S'_01))``. With ``A_n`` the step ``x' = al x + beta dt m + dt a``,
        ``m' = (1 - dt (K^pi + C^pi)) m - dt k^pi``, the noise covariance ``W = dt [[s^2 + s0^2, s0^2], [s0^2, s0^2]]``
        and ``S_N = c g_T g_T^T``: ``S_n = dt (G^T G - G^T h - h^T G + eps g g^T) + A_cl^T S' A_cl``, then
        ``S_n[2, 2] += tr(S' W)``, where ``g = (1, -kappa, 0)``, ``g_T = (1, -kappa_T, 0)``, ``h = q g``.
        Returns ``(S, G)``."""
        dt, beta, q = self.dt, self.mean_reversion, self.cross_cost
        al, n_steps = 1.0 - beta * dt, self.n_steps
        g, g_terminal = np.array([1.0, -self.kappa, 0.0]), np.array([1.0, -self.kappa_terminal, 0.0])
        h, B = q * g, np.array([dt, 0.0, 0.0])
        noise = dt * np.array([[self.sigma**2, 0.0], [0.0, 0.0]]) + dt * self.common_noise**2 * np.ones((2, 2))
        S, G = np.empty((n_steps + 1, 3, 3)), np.empty((n_steps, 3))
        S[-1] = self.terminal_cost * np.outer(g_terminal, g_terminal)
        for n in reversed(range(n_steps)):  # a loop over time steps
            S1 = S[n + 1]
            if population is None:
                K = (q + S1[0, 0] * al) / (1.0 + dt * S1[0, 0])
                denominator = 1.0 + dt * (S1[0, 0] + S1[0, 1])
                if abs(denominator) < 1e-12:
                    raise ValueError("these parameters have no regular equilibrium: 1 + dt (S00 + S01) = 0")
                C = (-q * self.kappa + beta * dt * S1[0, 0] + S1[0, 1] * (1.0 - dt * K)) / denominator
                G[n] = K, C, S1[0, 2] / denominator
            K_pop, C_pop, k_pop = G[n] if population is None else population[n]
            A = np.array([[al, beta * dt, 0.0], [0.0, 1.0 - dt * (K_pop + C_pop), -dt * k_pop], [0.0, 0.0, 1.0]])
            if population is not None:
                G[n] = agent[n] if agent is not None else (h + S1[0] @ A) / (1.0 + dt * S1[0, 0])
            closed_loop = A - np.outer(B, G[n])
            S[n] = dt * (
                np.outer(G[n], G[n]) - np.outer(G[n], h) - np.outer(h, G[n]) + self.running_cost * np.outer(g, g)
            )
            S[n] += closed_loop.T @ S1 @ closed_loop
            S[n, 2, 2] += np.sum(S1[:2, :2] * noise)
        return S, G

    def augmented_cost(self, values: np.ndarray) -> float:
        """``E[V_0(z_0)] = (mu^T S_0 mu + tr(S_0 Sigma)) / 2`` with ``z_0 = (x_0, M0, 1)``: ``mu = (m_0, m_0, 1)``,
        ``Sigma = [[v_0 + s_0^2, s_0^2], [s_0^2, s_0^2]]`` (``s_0`` = ``init_mean_std``)."""
        mean = np.array([self.init_mean, self.init_mean, 1.0])
        covariance = np.zeros((3, 3))
        covariance[:2, :2] = self.init_mean_std**2
        covariance[0, 0] += self.init_var
        return float(0.5 * (mean @ values[0] @ mean + np.sum(values[0] * covariance)))

    def feedback_best_response(self, policy: PopulationPolicy) -> BestResponse:
        """Exact best response ``a = -K_n x - C_n m_n - k_n`` to the population playing the affine ``policy``
        (:meth:`population_feedback`), the population mean ``m_n`` read from the observation; its expected return
        averages over the initial mean and the common noise."""
        values, G = self.augmented_values(self.population_feedback(policy))
        return BestResponse(self._affine_policy(G[:, 0], G[:, 2], G[:, 1]), -self.augmented_cost(values))

    def policy_cost(self, policy: PopulationPolicy) -> float:
        """Exact expected cost ``J(pi; pi)`` of the affine ``policy`` played by everyone (initial mean and common noise
        averaged; action bounds not applied)."""
        rows = self.population_feedback(policy)
        return self.augmented_cost(self.augmented_values(rows, rows)[0])

    def exact_gap(self, policy: PopulationPolicy) -> float:
        """``J(pi; pi) - J(BR; pi)`` of the affine ``policy`` (:meth:`population_feedback`) played by everyone: its
        exact Nash gap in the limit of many particles, averaged over the initial mean and the common noise."""
        return self.policy_cost(policy) + self.feedback_best_response(policy).expected_return

    def solve_equilibrium(self) -> Equilibrium:
        """Discrete-time equilibrium ``a*_n(x, m) = -K_n x - C_n m_n - k_n`` (:meth:`augmented_values` with
        ``population=None``; ``k_n = 0`` as no cost is linear in ``x``). Certainty equivalence: the gains do not
        depend on ``init_mean_std`` or ``common_noise``; ``J*`` does (it averages over both).

        With a deterministic population the policy is written as a function of time, ``k_n + C_n m*_n`` as its
        offsets; with a random one it reads ``m_n`` from the observation (``population_gains``). The flow
        (``mean_fields``, ``histograms``) is the nominal one, ``M0 = m_0`` and no common noise:
        ``m_{n+1} = (1 - dt (K_n + C_n)) m_n - dt k_n``, ``v_{n+1} = (al - dt K_n)^2 v_n + sigma^2 dt``.
        """
        dt, n_steps = self.dt, self.n_steps
        values, G = self.augmented_values()
        K, C, k = G.T
        al = 1.0 - self.mean_reversion * dt
        means, variances = np.empty(n_steps + 1), np.empty(n_steps + 1)
        means[0], variances[0] = self.init_mean, self.init_var
        for n in range(n_steps):
            means[n + 1] = (1.0 - dt * (K[n] + C[n])) * means[n] - dt * k[n]
            variances[n + 1] = (al - dt * K[n]) ** 2 * variances[n] + self.sigma**2 * dt
        # a deterministic population: the mean is a function of time, and the policy is written as one
        time_only = not self.random_population
        policy = self._affine_policy(K, k + C * means[:-1]) if time_only else self._affine_policy(K, k, C)
        return Equilibrium(
            policy=policy,
            expected_return=-self.augmented_cost(values),
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

    ``x_{n+1} = x_n + dt [beta (m_n - x_n) + a_n] + sigma sqrt(dt) xi_n + sigma0 sqrt(dt) xi0_n``,
    ``xi_n ~ N(0, 1)`` per particle, ``xi0_n ~ N(0, 1)`` one common shock per step shared by every
    particle (``common_noise = sigma0``, default 0), ``dt = T / N``, ``m_n`` the empirical mean of all
    particles at step ``n``. With common noise or a random initial mean (``init_mean_std > 0``) the
    population is random, and the equilibrium reads it: ``a*_n = -K_n x - C_n m_n`` with ``m_n`` taken from
    the observation (docs: "Population-aware equilibria").

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

    At each reset a mean ``M0 ~ N(init_mean, init_mean_std^2)`` is drawn once for the whole population,
    then ``x_0 ~ N(M0, init_var)`` for every particle (``init_mean_std = 0``: ``M0 = init_mean``, and
    nothing extra is drawn, so the default is the fixed law).

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
    | `init_mean_std` | s_0 >= 0, std of the shared initial mean | 0.0 |
    | `common_noise` | sigma0 >= 0 | 0.0 |
    | `action_bound` | a_max > 0 | 5.0 |
    | `n_bins`, `histogram_range` | histogram grid | 40, (-3, 5) |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    The systemic-risk preset: ``gym.make("MFGLinearQuadratic-v0", mean_reversion=1, cross_cost=0.8,
    kappa=1, kappa_terminal=1, init_mean=1, init_var=0.5)``.

    ## Version History

    * v0: Initial version; ``init_mean_std`` and ``common_noise`` added (default 0: unchanged dynamics).
    """

    model_class = LinearQuadraticModel
    env_id = "MFGLinearQuadratic-v0"
