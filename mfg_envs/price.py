"""Price formation with posted prices and inventory, and its exact equilibrium.

Every firm posts a price, sells ``q = d - beta a + gamma pbar`` (its own price lowers its sales,
the population's mean price ``pbar`` raises them), restocks at a fixed rate and pays for holding
inventory and for pricing away from the market. With the population flow frozen, the firm's problem
is linear-quadratic in its inventory, so best responses come from one scalar Riccati recursion
(:func:`mfg_envs.equilibrium.scalar_lq_best_response`) and the equilibrium from a discrete Pontryagin recursion.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np

from mfg_envs.core import (
    MIN_WIDTH,
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    check_int,
    check_real,
    check_time_grid,
)
from mfg_envs.env import MeanFieldEnv
from mfg_envs.equilibrium import (
    AffinePolicy,
    BestResponse,
    Equilibrium,
    gaussian_histogram,
    scalar_lq_best_response,
)
from mfg_envs.initial_law import gaussian_start
from mfg_envs.linear_quadratic import ScalarLQProblem
from mfg_envs.rendering import PARTICLE_MEAN, SIGNAL, HistogramScene, Mark, histogram_scene


# --------------------------------------------------------------------------- the model
class PriceModel(MeanFieldModel):
    """Firms with inventory ``x``, cash ``w`` and market signal ``d`` posting prices ``a``.

    ``q_n = d_n - beta a_n + gamma pbar_n``; ``x_{n+1} = x_n + dt (rho - q_n) + sigma sqrt(dt) eps_n``;
    ``w_{n+1} = w_n + dt (a_n q_n - kappa rho)``; ``d_n = d0 + A sin(2 pi t_n / T)``;
    ``r_n = dt [a_n q_n - kappa rho - h/2 x_n^2 - lam/2 (a_n - pbar_n)^2]``; ``g = -hT/2 x_N^2``;
    ``x_0 ~ N(M_0, v_0)`` around an initial mean ``M_0 ~ N(init_mean, init_mean_std^2)`` drawn once per episode.
    """

    state_dim = 3
    action_dim = 1

    def __init__(
        self,
        horizon: float = 1.0,
        n_steps: int = 50,
        demand_slope: float = 1.0,
        cross_slope: float = 0.5,
        spread_penalty: float = 0.5,
        unit_cost: float = 0.5,
        restock_rate: float = 1.2,
        holding_cost: float = 1.0,
        terminal_holding_cost: float = 1.0,
        sigma: float = 0.3,
        signal_mean: float = 2.0,
        signal_amplitude: float = 0.5,
        init_mean: float = 0.5,
        init_var: float = 0.04,
        init_mean_std: float = 0.0,
        price_min: float = 0.0,
        price_max: float = 3.0,
        n_bins: int = 30,
    ) -> None:
        self.horizon, self.n_steps = check_time_grid(horizon, n_steps)
        self.demand_slope = check_real("demand_slope", demand_slope, 0.0, low_open=True)
        # 2 beta > gamma: the game is strictly monotone (a firm's own price weighs more than the market's).
        self.cross_slope = check_real("cross_slope", cross_slope, high=2.0 * self.demand_slope, high_open=True)
        self.spread_penalty = check_real("spread_penalty", spread_penalty, 0.0)
        self.unit_cost = check_real("unit_cost", unit_cost)
        self.restock_rate = check_real("restock_rate", restock_rate)
        self.holding_cost = check_real("holding_cost", holding_cost, 0.0)
        self.terminal_holding_cost = check_real("terminal_holding_cost", terminal_holding_cost, 0.0)
        self.sigma = check_real("sigma", sigma, 0.0)
        self.signal_mean = check_real("signal_mean", signal_mean)
        self.signal_amplitude = check_real("signal_amplitude", signal_amplitude, 0.0)
        self.init_mean = check_real("init_mean", init_mean)
        self.init_var = check_real("init_var", init_var, 0.0)
        self.init_mean_std = check_real("init_mean_std", init_mean_std, 0.0)
        self.price_min = check_real("price_min", price_min)
        self.price_max = check_real("price_max", price_max)
        if not self.price_max - self.price_min >= MIN_WIDTH:
            raise ValueError(
                f"price_max must exceed price_min by at least {MIN_WIDTH:g}, got price_min={price_min!r}, "
                f"price_max={price_max!r}"
            )
        self.n_bins = check_int("n_bins", n_bins)
        self.histogram_bounds = np.array([[self.price_min, self.price_max]])
        low_signal, high_signal = self.signal_mean - self.signal_amplitude, self.signal_mean + self.signal_amplitude
        self.state_low = np.array([-np.inf, -np.inf, low_signal])
        self.state_high = np.array([np.inf, np.inf, high_signal])

    @overload
    def signal(self, n: int) -> float: ...
    @overload
    def signal(self, n: np.ndarray) -> np.ndarray: ...
    def signal(self, n: int | np.ndarray) -> float | np.ndarray:
        """``d_n = d0 + A sin(2 pi t_n / T)`` (``t_n / T = n / N``)."""
        return self.signal_mean + self.signal_amplitude * np.sin(2.0 * np.pi * np.asarray(n) / self.n_steps)

    # ------------------------------------------------------------------ simulator
    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        states = np.zeros((n, 3), order="F")  # column-major: the per-column updates run on contiguous memory
        states[:, 0] = gaussian_start(n, rng, self.init_mean, self.init_mean_std, math.sqrt(self.init_var))
        states[:, 2] = self.signal(0)
        return states

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, 1))

    def physical_action(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        price = self.price_min + 0.5 * (action + 1.0) * (self.price_max - self.price_min)
        return np.clip(price, self.price_min, self.price_max, out=price)  # rounding must not leave the interval

    def normalized_action(self, states: np.ndarray, physical: np.ndarray) -> np.ndarray:
        return 2.0 * (physical - self.price_min) / (self.price_max - self.price_min) - 1.0

    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        """``mean_price`` ``pbar_n`` (the prices posted this step; absent at the terminal step) and ``mean_inventory``.

        Only ``mean_price`` enters rewards and dynamics; ``mean_inventory`` is recorded for diagnostics.
        """
        mean_inventory = {"mean_inventory": float(states[:, 0].mean())}
        return mean_inventory if actions is None else {"mean_price": float(actions[:, 0].mean()), **mean_inventory}

    def sales(self, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        """``q_n = d_n - beta a_n + gamma pbar_n`` of every firm (``d_n`` is common to all firms)."""
        return (self.signal(n) + self.cross_slope * mean_field["mean_price"]) - self.demand_slope * actions[:, 0]

    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        dt, q = self.dt, self.sales(actions, mean_field, n)
        nxt = np.empty_like(states)
        nxt[:, 0] = states[:, 0] + dt * (self.restock_rate - q) + self.sigma * math.sqrt(dt) * noise[:, 0]
        nxt[:, 1] = states[:, 1] + dt * (actions[:, 0] * q - self.unit_cost * self.restock_rate)
        nxt[:, 2] = self.signal(n + 1)
        return nxt

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        a, x, q = actions[:, 0], states[:, 0], self.sales(actions, mean_field, n)
        spread = a - mean_field["mean_price"]
        profit = a * q - self.unit_cost * self.restock_rate
        return self.dt * (profit - 0.5 * self.holding_cost * x**2 - 0.5 * self.spread_penalty * spread**2)

    def terminal_reward(self, states: np.ndarray, mean_field: MeanField) -> np.ndarray:
        return -0.5 * self.terminal_holding_cost * states[:, 0] ** 2

    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray | None:
        """The last posted prices; ``None`` before the first step (the core then shows a uniform histogram)."""
        return last_actions

    def render_scene(self, population: Population) -> HistogramScene:
        """Frame: histogram of the prices posted at the last step ``n - 1``, their exact equilibrium law (black
        line), their mean ``pbar`` (blue) and the static price ``d_{n-1} / (2 beta - gamma)`` of the market
        signal (orange, dashed). Before the first step only the signal's price ``d_0 / (2 beta - gamma)`` shows."""
        n = population.step_index
        static_price = float(self.signal(max(n - 1, 0))) / (2.0 * self.demand_slope - self.cross_slope)
        marks: tuple[Mark, ...] = (Mark(static_price, SIGNAL, dashed=True),)
        if n > 0:
            marks += (Mark(population.last_mean_field["mean_price"], PARTICLE_MEAN),)
        return histogram_scene(population, marks)

    # ------------------------------------------------------------------ exact solver
    def _frozen_flow_problem(self, mean_prices: np.ndarray) -> ScalarLQProblem:
        """Coefficients of the scalar LQ problem in ``x`` against frozen mean prices ``pbar_n``.

        Cost = -reward = ``dt [(2 beta + lam)/2 a^2 - (d_n + (gamma + lam) pbar_n) a + h/2 x^2
        + kappa rho + lam/2 pbar_n^2]``; ``x' = x + dt beta a + dt (rho - d_n - gamma pbar_n) + noise``.
        Cash and signal do not enter the cost, so the problem lives in ``x`` alone.
        """
        beta, gamma, lam, dt = self.demand_slope, self.cross_slope, self.spread_penalty, self.dt
        signal = self.signal(np.arange(self.n_steps))
        return {
            "A": 1.0,
            "B": dt * beta,
            "drift": dt * (self.restock_rate - signal - gamma * mean_prices),
            "R": 2.0 * beta + lam,
            "Qx": self.holding_cost,
            "Sx": 0.0,
            "qx": 0.0,
            "ra": -(signal + (gamma + lam) * mean_prices),
            "c": self.unit_cost * self.restock_rate + 0.5 * lam * mean_prices**2,
            "QT": self.terminal_holding_cost,
        }

    def _affine_policy(self, gains: np.ndarray, offsets: np.ndarray) -> AffinePolicy:
        """``a_n = -K_n x - k_n`` as an :class:`AffinePolicy` on the full state (zero gain on cash and signal)."""
        full_gains = np.zeros((self.n_steps, 1, 3))
        full_gains[:, 0, 0] = gains
        return AffinePolicy(self, full_gains, np.asarray(offsets, dtype=float)[:, None])

    def best_response(self, flow: PopulationFlow) -> BestResponse:
        """Exact best response to the frozen mean prices ``flow.mean_fields[n]["mean_price"]``, ``n < N``.

        Prices are not clipped to ``[price_min, price_max]`` in the solution (the interval is wide enough
        that they leave it with negligible probability at reasonable flows). The policy does not depend on the
        initial law; its ``expected_return`` starts from one firm's inventory law averaged over the draw of
        ``M_0``, ``x_0 ~ N(init_mean, init_var + init_mean_std^2)``, against this one frozen flow (exact: the
        cost is quadratic in ``x_0``).
        """
        mean_prices = np.array([flow.mean_fields[n]["mean_price"] for n in range(self.n_steps)])
        solution = scalar_lq_best_response(self.n_steps, self.dt, self.sigma, **self._frozen_flow_problem(mean_prices))
        return BestResponse(
            policy=self._affine_policy(solution.gains, solution.offsets),
            expected_return=-solution.expected_cost(self.init_mean, self.init_var + self.init_mean_std**2),
        )

    def solve_equilibrium(self) -> Equilibrium:
        """Discrete Pontryagin recursion (docs/models.md, "MFGPrice-v0"), then the equilibrium policy's exact flow.

        Backward: ``Pi_N = hT``, ``xi_N = 0``, ``D_n = 1 + dt beta (beta - gamma) Pi_{n+1}/(2 beta - gamma)``,
        ``Pi_n = dt h + Pi_{n+1}/D_n``, ``xi_n = (dt e_n Pi_{n+1} + xi_{n+1})/D_n`` with
        ``e_n = rho - beta d_n/(2 beta - gamma)``. Forward: ``xbar_{n+1} = (xbar_n + dt e_n
        - dt beta (beta - gamma) xi_{n+1}/(2 beta - gamma))/D_n`` and
        ``pbar_n = (d_n - beta (Pi_{n+1} xbar_{n+1} + xi_{n+1}))/(2 beta - gamma)``.
        Policy ``a*_n(x) = pbar_n - K_n (x - xbar_n)`` with the individual Riccati gain ``K_n``; the inventory
        variance follows ``v_{n+1} = (1 - dt beta K_n)^2 v_n + sigma^2 dt`` and the posted price at step ``n``
        is ``N(pbar_n, K_n^2 v_n)``.

        ``NotImplementedError`` with a random initial mean (``init_mean_std > 0``, docs/models.md, "Random initial
        inventory"): the equilibrium's first price moves with ``M_0``, but no price has been posted at step 0, so
        no observation of that step shows ``M_0``.
        """
        if self.init_mean_std > 0.0:
            raise NotImplementedError(
                "MFGPrice-v0 with a random initial mean (init_mean_std > 0) has no equilibrium policy of the"
                " observation: the equilibrium price of step 0 depends on the drawn initial mean, and the step-0"
                " population entry (no price posted yet) does not show it; exact best responses and"
                " exact_nash_gap still apply"
            )
        beta, gamma, dt, n_steps = self.demand_slope, self.cross_slope, self.dt, self.n_steps
        net_slope = 2.0 * beta - gamma
        signal = self.signal(np.arange(n_steps))
        # e_n: restocking in excess of the sales at the static price d_n / (2 beta - gamma).
        excess_restock = self.restock_rate - beta * signal / net_slope
        Pi, xi, D = np.zeros(n_steps + 1), np.zeros(n_steps + 1), np.zeros(n_steps)
        Pi[-1] = self.terminal_holding_cost
        for n in range(n_steps - 1, -1, -1):
            D[n] = 1.0 + dt * beta * (beta - gamma) * Pi[n + 1] / net_slope
            if D[n] <= 0.0:
                raise ValueError(
                    f"cross_slope = {gamma:g} makes the equilibrium recursion singular (D_{n} <= 0); "
                    f"cross_slope <= demand_slope keeps it regular"
                )
            Pi[n] = dt * self.holding_cost + Pi[n + 1] / D[n]
            xi[n] = (dt * excess_restock[n] * Pi[n + 1] + xi[n + 1]) / D[n]
        mean_inventory, mean_price = np.zeros(n_steps + 1), np.zeros(n_steps)
        mean_inventory[0] = self.init_mean
        for n in range(n_steps):
            mean_inventory[n + 1] = (
                mean_inventory[n] + dt * excess_restock[n] - dt * beta * (beta - gamma) * xi[n + 1] / net_slope
            ) / D[n]
            mean_price[n] = (signal[n] - beta * (Pi[n + 1] * mean_inventory[n + 1] + xi[n + 1])) / net_slope

        # The individual gain does not depend on the flow: the best response to any flow has it.
        gains = scalar_lq_best_response(n_steps, dt, self.sigma, **self._frozen_flow_problem(mean_price)).gains
        offsets = -(mean_price + gains * mean_inventory[:-1])
        value = scalar_lq_best_response(
            n_steps, dt, self.sigma, **self._frozen_flow_problem(mean_price), gains=gains, offsets=offsets
        )
        variance = np.zeros(n_steps + 1)
        variance[0] = self.init_var
        for n in range(n_steps):
            variance[n + 1] = (1.0 - dt * beta * gains[n]) ** 2 * variance[n] + self.sigma**2 * dt
        price_std = np.abs(gains) * np.sqrt(variance[:-1])
        histograms = [np.full(self.n_bins, 1.0 / self.n_bins)] + [
            gaussian_histogram(mean_price[n], price_std[n], self.histogram_bounds, self.n_bins) for n in range(n_steps)
        ]
        mean_fields = (
            *({"mean_price": float(mean_price[n]), "mean_inventory": float(mean_inventory[n])} for n in range(n_steps)),
            {"mean_inventory": float(mean_inventory[-1])},
        )
        return Equilibrium(
            policy=self._affine_policy(gains, offsets),
            expected_return=-value.expected_cost(self.init_mean, self.init_var),
            mean_fields=mean_fields,
            histograms=np.stack(histograms),
        )


class PriceEnv(MeanFieldEnv):
    r"""## Description

    Price formation with posted prices and inventory (a mean field game of Bertrand competition).
    Each firm posts a price ``a_n``; its sales ``q_n = d_n - beta a_n + gamma pbar_n`` fall with its own
    price and rise with the population's mean posted price ``pbar_n`` (simultaneous move: ``pbar_n`` is
    the mean of the prices all particles post at step ``n``). The firm restocks at the fixed rate ``rho``,
    so its inventory is ``x_{n+1} = x_n + dt (rho - q_n) + sigma sqrt(dt) eps_n`` (negative: backlog),
    its cash ``w_{n+1} = w_n + dt (a_n q_n - kappa rho)``, and the market signal
    ``d_n = d0 + A sin(2 pi t_n / T)`` is deterministic. The exact equilibrium
    (``mfg_envs.solve_equilibrium``) comes from a discrete Pontryagin recursion; exact best responses
    from a scalar Riccati recursion in ``x``. With a random initial mean inventory (``init_mean_std > 0``)
    best responses and Nash gaps stay exact, but ``solve_equilibrium`` raises ``NotImplementedError``: the
    equilibrium's first price depends on the drawn mean, which no observation of step 0 shows.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``, mapped affinely onto the posted price
    ``a = price_min + (action + 1)/2 (price_max - price_min)``.

    | Num | Action                                   | Min | Max |
    |-----|------------------------------------------|-----|-----|
    | 0   | posted price, normalized to ``[-1, 1]``  | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape     | Meaning                                                           |
    |--------------|-----------|-------------------------------------------------------------------|
    | `state`      | (3,)      | inventory ``x``, cash ``w`` (both unbounded), signal ``d_n``      |
    | `population` | (n_bins,) | histogram of the last posted prices on ``[price_min, price_max]`` |
    | `time`       | (1,)      | ``t_n / T``                                                       |

    The signal lies in ``[d0 - A, d0 + A]``. The price histogram sums to 1 (prices are clipped to the
    range, so none fall outside). At step 0 no price has been posted yet (``histogram_values`` returns
    ``None``) and the population entry is the uniform histogram ``1 / n_bins``.

    ## Rewards

    ``r_n = dt [a_n q_n - kappa rho - h/2 x_n^2 - lam/2 (a_n - pbar_n)^2]`` (profit minus holding cost
    minus the spread penalty against the market price) and, at the last step, additionally
    ``-hT/2 x_N^2``. Cash is bookkeeping: the rewards already pay the profit.

    ## Starting State

    One initial mean ``M_0 ~ N(init_mean, init_mean_std^2)`` per episode, shared by all firms (``M_0 = init_mean``
    at the default ``init_mean_std = 0``, and nothing is drawn for it); then ``x_0 ~ N(M_0, init_var)``,
    ``w_0 = 0``, ``d_0 = d0`` for every particle.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    | keyword | symbol | default |
    |---|---|---|
    | `horizon` | T > 0 | 1.0 |
    | `n_steps` | N >= 1 | 50 |
    | `demand_slope` | beta > 0 | 1.0 |
    | `cross_slope` | gamma < 2 beta (gamma <= beta keeps the exact solver regular) | 0.5 |
    | `spread_penalty` | lam >= 0 | 0.5 |
    | `unit_cost` | kappa | 0.5 |
    | `restock_rate` | rho | 1.2 |
    | `holding_cost` | h >= 0 | 1.0 |
    | `terminal_holding_cost` | hT >= 0 | 1.0 |
    | `sigma` | sigma >= 0 | 0.3 |
    | `signal_mean`, `signal_amplitude` | d0, A >= 0 | 2.0, 0.5 |
    | `init_mean`, `init_var`, `init_mean_std` | m_0, v_0 >= 0, std of ``M_0`` >= 0 | 0.5, 0.04, 0.0 |
    | `price_min`, `price_max` | price range, min < max | 0.0, 3.0 |
    | `n_bins` | histogram bins | 30 |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    ## Version History

    * v0: Initial version.
    """

    model_class = PriceModel
    env_id = "MFGPrice-v0"
