"""The walled crowd (``MFGCrowd-v0``) and the double-integrator dynamics every crowd model shares.

:class:`CrowdDynamics` is the core of the crowd family: per axis, position ``p`` and velocity ``v`` under an
acceleration ``u``,

``v_{n+1} = v_n + dt u_n + sigma sqrt(dt) xi_n``,  ``p_{n+1} = p_n + dt v_{n+1}``,

then the model's boundary rule. :class:`CrowdModel` is the walled crowd (a square with walls), reward
``-||s - s_goal|| - l1 ||a|| - l2 m(p)`` with ``m`` the population histogram density; it has no closed form: its
best response is numerical (:mod:`mfg_envs.crowd_dp`) and so is its reference equilibrium
(:mod:`mfg_envs.crowd_equilibrium`). The exactly solvable crowd on the unbounded plane is
:mod:`mfg_envs.crowd_lq`; the two-population walled crowd is :mod:`mfg_envs.crowd_multi`.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

from mfg_envs.core import (
    MeanField,
    MeanFieldModel,
    Population,
    cell_index,
    check_int,
    check_interval,
    check_real,
    check_time_grid,
    check_vector,
    histogram_moments,
)
from mfg_envs.env import MeanFieldEnv
from mfg_envs.initial_law import gaussian_start
from mfg_envs.rendering import PlaneScene, exact_equilibrium, numerical_reference_histograms, population_masses


def squared_norms(rows: np.ndarray) -> np.ndarray:
    """``|x_i|^2 = sum_j x_ij^2`` of each row ``x_i`` of a 2-D array: one ``einsum`` pass, several times faster than
    ``(rows**2).sum(axis=1)`` on the few columns of a state or an action (equal up to round-off)."""
    return np.einsum("ij,ij->i", rows, rows)


class CrowdDynamics(MeanFieldModel):
    """State ``(x, y, vx, vy)``, acceleration ``u = action_bound * action``, Gaussian start around a shared initial
    mean ``M_0 ~ N(init_mean, diag(init_mean_std^2))`` (:func:`mfg_envs.initial_law.gaussian_start`), 2-D position
    histogram."""

    state_dim = 4
    action_dim = 2

    def _set_dynamics(
        self,
        horizon: float,
        n_steps: int,
        sigma: float,
        goal: tuple[float, float] | np.ndarray,
        init_mean: tuple[float, float, float, float] | np.ndarray,
        init_var: tuple[float, float, float, float] | np.ndarray,
        init_mean_std: tuple[float, float, float, float] | np.ndarray,
        action_bound: float,
        n_bins: int,
        domain: tuple[float, float],
    ) -> None:
        self.horizon, self.n_steps = check_time_grid(horizon, n_steps)
        self.sigma = check_real("sigma", sigma, 0.0)
        self.goal = check_vector("goal", goal, 2)
        self.init_mean = check_vector("init_mean", init_mean, 4)
        self.init_var = check_vector("init_var", init_var, 4, 0.0)
        self.init_mean_std = check_vector("init_mean_std", init_mean_std, 4, 0.0)
        self.action_bound = check_real("action_bound", action_bound, 0.0, low_open=True)
        self.n_bins = check_int("n_bins", n_bins)
        self.domain = check_interval("domain", domain)
        self.histogram_bounds = np.array([self.domain, self.domain])

    def _confine(self, states: np.ndarray) -> np.ndarray:
        """Apply the domain's boundary rule (none on the unbounded plane)."""
        return states

    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``M_0 + sqrt(init_var) xi_i`` around the episode's shared ``M_0``, then the boundary rule."""
        starts = gaussian_start(n, rng, self.init_mean, self.init_mean_std, np.sqrt(self.init_var))
        # column-major: every per-axis operation below then runs on contiguous columns
        return self._confine(np.asfortranarray(starts))

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, 2))

    @abc.abstractmethod
    def action_reward(self, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        """The action part of the reward at the accelerations ``(ax, ay)`` (broadcast; the reward's other parts do not
        depend on the action): what the dynamic-programming best response (:mod:`mfg_envs.crowd_dp`) maximizes."""

    def physical_action(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.action_bound * action

    def normalized_action(self, states: np.ndarray, physical: np.ndarray) -> np.ndarray:
        return physical / self.action_bound

    @property
    def post_decision_matrix(self) -> np.ndarray:
        """``B`` ``(4, 2)`` with ``w = s + B a`` the post-decision state of the normalized action ``a``: the action
        moves only the velocity, ``w = (p, v + dt a_max a)``, and the next state is ``w`` plus noise (then the wall
        rule), so ``Q(s, a)`` depends on the action through ``w`` and the reward's own action term only (what a
        post-decision critic, ``MeanFieldCritic(post_decision=True)`` in sb3_meanfield, is built on)."""
        return np.vstack([np.zeros((2, 2)), self.dt * self.action_bound * np.eye(2)])

    def transition(
        self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int, noise: np.ndarray
    ) -> np.ndarray:
        """``v' = v + dt u + sigma sqrt(dt) xi``, ``p' = p + dt v'`` per axis, then the boundary rule."""
        dt = self.dt
        nxt = np.empty(states.shape, order="F")
        velocity = nxt[:, 2:]
        np.multiply(noise, self.sigma * math.sqrt(dt), out=velocity)
        velocity += dt * actions
        velocity += states[:, 2:]
        np.multiply(velocity, dt, out=nxt[:, :2])
        nxt[:, :2] += states[:, :2]
        return self._confine(nxt)

    def histogram_values(self, states: np.ndarray, last_actions: np.ndarray | None) -> np.ndarray:
        return states[:, :2]

    def render_scene(self, population: Population) -> PlaneScene:
        """Frame: density heat map of the position histogram, particles as dots, the goal (green cross), the
        walls when positions are bounded, and the reference equilibrium's ``mean +- 2 std`` ellipse when there is
        one (:meth:`reference_ellipse`)."""
        return PlaneScene(
            bounds=self.histogram_bounds,
            density=population_masses(population),
            particles=population.states[:, :2],
            time=population.time,
            goal=self.goal,
            walls=bool(np.isfinite(self.state_low[:2]).all()),
            reference=self.reference_ellipse(population.step_index),
        )

    def reference_ellipse(self, step: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-axis mean and std of the equilibrium positions at ``step``: the exact law (MFGCrowdLQ-v0), or the
        binned moments of the numerical reference flow once ``solve_equilibrium`` has cached it (MFGCrowd-v0,
        :func:`mfg_envs.rendering.numerical_reference_histograms`); ``None`` otherwise, and always with a random
        initial mean (``init_mean_std > 0``: the equilibrium flow then depends on the episode's draw of ``M_0``)."""
        if self.init_mean_std.any():
            return None
        equilibrium = exact_equilibrium(self)
        if equilibrium is not None:
            statistics = equilibrium.mean_fields[step]
            return statistics["mean"], np.sqrt(statistics["var"])
        histograms = numerical_reference_histograms(self)
        if histograms is None:
            return None
        means, variances = histogram_moments(histograms[step : step + 1], self.histogram_bounds, self.n_bins)
        return means[0], np.sqrt(variances[0])


class CrowdModel(CrowdDynamics):
    """The walled crowd on the square ``domain^2``: ``r = -||s - s_goal|| - l1 ||a|| - l2 m(p)``.

    Boundary rule: a particle that would leave is stopped at the wall and its velocity component into
    the wall is set to 0 (also applied to the initial draw), so positions always lie inside the domain.
    """

    def __init__(
        self,
        horizon: float = 4.0,
        n_steps: int = 40,
        sigma: float = 0.3,
        goal: tuple[float, float] | np.ndarray = (1.0, 0.0),
        action_cost: float = 0.1,
        crowd_aversion: float = 0.1,
        init_mean: tuple[float, float, float, float] | np.ndarray = (-1.0, 0.5, 0.0, 0.0),
        init_var: tuple[float, float, float, float] | np.ndarray = (0.02, 0.02, 0.01, 0.01),
        init_mean_std: tuple[float, float, float, float] | np.ndarray = (0.0, 0.0, 0.0, 0.0),
        action_bound: float = 2.0,
        domain: tuple[float, float] = (-2.0, 2.0),
        n_bins: int = 20,
    ) -> None:
        self._set_dynamics(
            horizon, n_steps, sigma, goal, init_mean, init_var, init_mean_std, action_bound, n_bins, domain
        )
        low, high = self.domain
        for i, coordinate in enumerate(self.goal):
            check_real(f"goal[{i}]", coordinate, low, high)
        self.action_cost = check_real("action_cost", action_cost, 0.0)
        self.crowd_aversion = check_real("crowd_aversion", crowd_aversion, 0.0)
        self.state_low = np.array([low, low, -np.inf, -np.inf])
        self.state_high = np.array([high, high, np.inf, np.inf])
        self._cell_area = ((high - low) / self.n_bins) ** 2
        if not self._cell_area > 0.0:
            raise ValueError(f"domain must be wide enough for a positive cell area, got {domain!r}")
        self._goal_state = np.concatenate([self.goal, np.zeros(2)])

    def _confine(self, states: np.ndarray) -> np.ndarray:
        """Stop particles at the wall: clip the position, zero the velocity component pointing into the wall.

        Works in place on ``states`` (always a fresh array here).
        """
        low, high = self.domain
        positions, velocities = states[:, :2], states[:, 2:]
        np.minimum(velocities, 0.0, out=velocities, where=positions > high)
        np.maximum(velocities, 0.0, out=velocities, where=positions < low)
        np.clip(positions, low, high, out=positions)
        return states

    def mean_field(self, states: np.ndarray, actions: np.ndarray | None, hist: np.ndarray) -> MeanField:
        """The population density on the observation's grid, ``m = hist / cell area``."""
        return {"density": hist / self._cell_area}

    def reward(self, states: np.ndarray, actions: np.ndarray, mean_field: MeanField, n: int) -> np.ndarray:
        """``-||s - s_goal|| - l1 ||a|| - l2 m(p)``, ``s_goal = (g_x, g_y, 0, 0)``, ``m(p)`` the density of p's cell."""
        distance = np.sqrt(squared_norms(states - self._goal_state))
        return -distance + self.action_reward(actions[:, 0], actions[:, 1]) - self.crowding(states, mean_field)

    def action_reward(self, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        """``-l1 ||a||`` at the accelerations ``(ax, ay)`` (broadcast)."""
        return -self.action_cost * np.sqrt(ax * ax + ay * ay)

    @property
    def goal_state(self) -> np.ndarray:
        """``s_goal = (g_x, g_y, 0, 0)``: the reward's state part is ``-||s - s_goal||``."""
        return self._goal_state.copy()

    @property
    def effort_rate(self) -> float:
        """``c = l1 a_max``: the reward's effort term ``-l1 ||u||`` is ``-c ||a||`` in the normalized action
        ``a = u / a_max``, the one term of the reward that depends on the action (a critic can take it exactly,
        ``MeanFieldTD3Policy(action_cost=c)`` in sb3_meanfield)."""
        return self.action_cost * self.action_bound

    def crowding(self, states: np.ndarray, mean_field: MeanField) -> np.ndarray:
        """The crowd term ``l2 m(p)`` each state pays: :meth:`crowd_cost` read at the cell holding its position."""
        return self.crowd_cost(mean_field)[cell_index(states[:, :2], self.histogram_bounds, self.n_bins)]

    def crowd_cost(self, mean_field: Any) -> np.ndarray:
        """The crowd term ``l2 m`` per grid cell (``n_bins**2``, C order) that the reward reads at ``p``'s cell."""
        return self.crowd_aversion * mean_field["density"]


class CrowdEnv(MeanFieldEnv):
    r"""## Description

    The walled crowd: double-integrator agents in a walled square walk to a
    goal, paying for distance (position and velocity), for effort and for the local crowd density.
    No closed-form equilibrium: its Nash gap comes from a numerical best response by dynamic programming
    (``nash_gap(..., method="dp")``) and ``mfg_envs.solve_equilibrium`` returns a numerical reference
    equilibrium (computed on demand, cached on disk). Per axis, with
    ``dt = T / N`` and ``xi_n ~ N(0, 1)`` one draw per axis:

    ``v_{n+1} = v_n + dt u_n + sigma sqrt(dt) xi_n``,  ``p_{n+1} = p_n + dt v_{n+1}``,

    then the wall rule on ``domain^2``: a particle that would leave is stopped at the wall and its
    velocity component into the wall is set to 0, so positions always stay inside. The population
    histogram is flattened in C order (``x`` slowest).

    ## Action Space

    ``Box(-1, 1, (2,), float32)``, rescaled to the acceleration ``a = action_bound * action``.

    | Num | Action                | Min | Max |
    |-----|-----------------------|-----|-----|
    | 0   | ``a_x / action_bound`` | -1  | 1   |
    | 1   | ``a_y / action_bound`` | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape        | Meaning                                                           |
    |--------------|--------------|-------------------------------------------------------------------|
    | `state`      | (4,)         | own ``(x, y, vx, vy)``, positions in ``domain``                   |
    | `population` | (n_bins**2,) | histogram of all particles' ``(x, y)`` on ``domain^2`` (sums to 1) |
    | `time`       | (1,)         | ``t_n / T``                                                       |

    ## Rewards

    ``r_n = -||s_n - s_goal|| - l1 ||a_n|| - l2 m_n(p_n)``, ``s_goal = (g_x, g_y, 0, 0)`` (Euclidean norms, the
    first over position and velocity), ``m_n(p)`` = histogram mass of the cell holding ``p`` divided by the
    cell area (the same grid as the observation). No ``dt`` factor and no terminal reward.

    ## Starting State

    One initial mean ``M_0 ~ N(init_mean, diag(init_mean_std^2))`` per episode, shared by all particles
    (``M_0 = init_mean`` at the default ``init_mean_std = 0``, and nothing is drawn for it); then
    ``(x, y, vx, vy) ~ N(M_0, diag(init_var))`` for every particle, then the wall rule.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    | keyword | symbol | default |
    |---|---|---|
    | `horizon` | T > 0 | 4.0 |
    | `n_steps` | N | 40 |
    | `sigma` | sigma >= 0 | 0.3 |
    | `goal` | g, inside ``domain^2`` | (1.0, 0.0) |
    | `action_cost` | l1 >= 0 | 0.1 |
    | `crowd_aversion` | l2 >= 0 | 0.1 |
    | `init_mean` | mean of ``(x, y, vx, vy)`` | (-1.0, 0.5, 0.0, 0.0) |
    | `init_var` | variances, >= 0 | (0.02, 0.02, 0.01, 0.01) |
    | `init_mean_std` | std of ``M_0``, >= 0 (no reference equilibrium unless 0) | (0.0, 0.0, 0.0, 0.0) |
    | `action_bound` | a_max > 0 | 2.0 |
    | `domain` | walls ``(low, high)`` on both axes | (-2.0, 2.0) |
    | `n_bins` | histogram cells per axis | 20 |
    | `n_particles` | population size | 1000 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    ## Version History

    * v0: Initial version.
    """

    model_class = CrowdModel
    env_id = "MFGCrowd-v0"
