"""A numerical best response for the crowd models: backward dynamic programming on a grid over ``(x, vx, y, vy)``.

The walled crowd (``MFGCrowd-v0``, each population of ``MFGCrowdMulti-v0``) has no closed form; this module
computes the best response to a frozen flow to within a stated grid error (docs/models.md, section
"MFGCrowd-v0"). The crowd-LQ model (``MFGCrowdLQ-v0``), whose exact best response is known, validates it.

Per axis, with ``w = v + dt u`` and ``eps = sigma sqrt(dt) xi``: ``v' = w + eps`` and ``p' = p + dt v'`` (then the
wall rule), so the action moves only the velocity, and with the reward split as
``r_n(s, u) = c_n(s) + g(u) - D_n(cell(p))`` (state part, action part, crowd part per histogram cell):

``V_n(s) = -D_n(cell(p)) + W_n(s)``,  ``W_n(s) = c_n(s) + max_u [g(u) + U_{n+1}(p, v + dt u)]``,
``U_{n+1}(p, w) = E W_{n+1}(wall(p + dt (w + eps)), w + eps) - E D_{n+1}(cell(p + dt (w + eps)))``,

``W_N`` the terminal reward. The axes are independent given ``(p, w)``, so each expectation is two per-axis
operators. For ``E W``: ``W`` is interpolated cubically (Catmull-Rom) in velocity, and its expectation over the
Gaussian ``v'`` is a banded matrix from the velocity nodes to the shifted velocities ``w`` (each node's weight the
Gaussian expectation of its basis function); at each velocity node ``v_k``, ``W`` is interpolated cubically in
position at ``p + dt v_k``, the same fraction of a node for every ``p`` (four shifted slices); a particle that
crosses a wall stops there with velocity 0. ``E D`` is exact: ``p'`` is Gaussian per axis, so each histogram cell's
probability is a difference of normal CDFs (the edge cells take the tails, as the histogram does). The maximum
runs over ``actions_per_axis**2`` accelerations whose velocity shifts ``dt u`` fall on a velocity grid refined by
an integer factor, so no shift is rounded.

The best response is greedy at each particle's state, with the same expectation interpolated there
(:class:`DPPolicy`); its ``value_estimate`` is the solver's own value of the initial law.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfg_envs.core import MeanField, PopulationFlow, PopulationPolicy, check_int, check_real
from mfg_envs.crowd import CrowdDynamics, CrowdModel
from mfg_envs.crowd_lq import CrowdLQModel
from mfg_envs.game import Game, population_rngs


@dataclass(frozen=True)
class DPResolution:
    """The grid of the dynamic program.

    :param nodes_per_cell: position nodes per histogram cell and axis (the walls are nodes).
    :param velocity_step: spacing of the velocity nodes.
    :param velocity_range: velocities lie in ``[-velocity_range, velocity_range]`` (a multiple of the step).
    :param actions_per_axis: accelerations per axis, evenly spaced on ``[-action_bound, action_bound]`` (odd:
        0 is one of them); ``velocity_step / (dt * their spacing)`` must be a whole number.
    """

    nodes_per_cell: int = 4
    velocity_step: float = 0.2
    velocity_range: float = 1.8
    actions_per_axis: int = 7

    def __post_init__(self) -> None:
        check_int("nodes_per_cell", self.nodes_per_cell)
        check_real("velocity_step", self.velocity_step, 0.0, low_open=True)
        check_real("velocity_range", self.velocity_range, self.velocity_step)
        if check_int("actions_per_axis", self.actions_per_axis, 3) % 2 == 0:
            raise ValueError(f"actions_per_axis must be an odd integer >= 3, got {self.actions_per_axis}")


#: The fast default and the reference setting (docs/models.md, "MFGCrowd-v0", gives the refinement study).
DEFAULT_RESOLUTION = DPResolution()
REFERENCE_RESOLUTION = DPResolution(nodes_per_cell=5, velocity_step=0.2, velocity_range=2.0, actions_per_axis=13)


#: Quadrature points of the Gaussian expectation over the velocity noise (:meth:`AxisGrid._velocity_mass`).
QUADRATURE_POINTS = 2001

#: Accelerations per axis of the greedy policy's final search, within one spacing of the grid's best (odd: the
#: grid's best is one of them).
REFINED_ACTIONS = 5

#: x positions per block of the maximum over accelerations (a block of the node array stays in cache).
MAXIMUM_ROWS = 4

#: The grid's values and operators: single precision halves the memory traffic of the maximum over actions
#: (the values are of order 10-100 and the tolerance 1e-2, far above float32's rounding).
GRID_DTYPE = np.float32


def _whole(value: float, name: str) -> int:
    rounded = round(value)
    if rounded < 1 or abs(value - rounded) > 1e-9 * max(1.0, value):
        raise ValueError(f"{name} must be a whole number >= 1, got {value:g}")
    return int(rounded)


class AxisGrid:
    """The nodes of one axis and its expectation operators (identical for both axes)."""

    def __init__(self, model: CrowdDynamics, resolution: DPResolution, walls: bool) -> None:
        dt, (low, high), nodes = model.dt, model.domain, model.n_bins * resolution.nodes_per_cell
        self.dt, self.low, self.high, self.walls = dt, low, high, walls
        # Without walls the plane is unbounded: the grid extends half the domain past each side, so that its
        # edges (read flat beyond) stay far from where the particles go.
        margin = 0 if walls else nodes // 2
        spacing = (high - low) / nodes
        self.positions = low + spacing * np.arange(-margin, nodes + margin + 1)
        dv = resolution.velocity_step
        half = _whole(resolution.velocity_range / dv, "velocity_range / velocity_step")
        self.velocities = dv * np.arange(-half, half + 1)
        self.accelerations = np.linspace(-model.action_bound, model.action_bound, resolution.actions_per_axis)
        shift = dt * (self.accelerations[1] - self.accelerations[0])
        self.refinement = _whole(dv / shift, "velocity_step / (dt * acceleration spacing)")
        reach = resolution.actions_per_axis // 2
        # w = v_j + dt u_a lies at fine index j * refinement + a
        self.shifts = (
            -self.velocities[-1]
            - reach * shift
            + shift * np.arange(self.refinement * (len(self.velocities) - 1) + resolution.actions_per_axis)
        )
        self.noise_std = model.sigma * math.sqrt(dt)
        self.velocity_mass = self._velocity_mass().astype(GRID_DTYPE)
        self.zero_velocity = half
        self.position_shifts = self._position_shifts()

    def _velocity_mass(self) -> np.ndarray:
        """``(M, K)``: the weight of velocity node ``k`` in ``E f(w + eps)`` when ``f`` is interpolated cubically
        between the velocity nodes (read flat beyond them): the Gaussian expectation of each node's Catmull-Rom
        basis function, by quadrature on ``QUADRATURE_POINTS`` points over ``+-8`` standard deviations."""
        if self.noise_std == 0.0:
            points, probabilities = self.shifts[:, None], np.ones((1,))
        else:
            z = np.linspace(-8.0, 8.0, QUADRATURE_POINTS)
            density = np.exp(-0.5 * z * z)
            points, probabilities = self.shifts[:, None] + self.noise_std * z, density / density.sum()
        nodes, weights = _cubic_stencil(points.ravel(), self.velocities)
        mass = np.zeros((len(self.shifts), len(self.velocities)))
        rows = np.repeat(np.arange(len(self.shifts)), points.shape[1])
        for s in range(4):  # the four nodes of the cubic stencil
            np.add.at(mass, (rows, nodes[:, s]), weights[:, s] * np.tile(probabilities, len(self.shifts)))
        return mass

    def _position_shifts(self) -> list[tuple[int, np.ndarray, int, int]]:
        """Per velocity node ``k``, the cubic stencil of ``p_i + dt v_k``, the same for every node ``i`` on a
        uniform grid: its first node's offset from ``i``, its four weights, and how many nodes at the low and at
        the high end have the point past a wall (they read the wall node with velocity 0; without walls a point
        past the grid reads its edge node)."""
        spacing, n_positions = self.positions[1] - self.positions[0], len(self.positions)
        shifts = []
        for velocity in self.velocities:
            offset = self.dt * velocity / spacing
            left = math.floor(offset + 1e-9)  # a whole number of nodes computed as 3.9999999 is 4
            weights = catmull_rom(np.array([offset - left]))[0].astype(GRID_DTYPE)
            target = self.positions + self.dt * velocity
            low = int(np.sum(target < self.positions[0])) if self.walls else 0
            high = int(np.sum(target > self.positions[-1])) if self.walls else 0
            shifts.append((left - 1, weights, low, min(high, n_positions - low)))
        return shifts

    def expect(self, values: np.ndarray) -> np.ndarray:
        """``E f(wall(p + dt (w + eps)), w + eps)`` on ``(p_i, w_m, ...)`` for ``f`` on ``(p_j, v_k, ...)`` (this
        axis' positions and velocities first; the shifted velocities take the velocities' place): per velocity
        node, the cubic interpolation in position is four shifted slices of the edge-padded values; the velocity
        masses are one matrix product per position."""
        n_positions = len(self.positions)
        pad = max(abs(first) + 4 for first, _, _, _ in self.position_shifts)
        padded = np.pad(values, [(pad, pad)] + [(0, 0)] * (values.ndim - 1), mode="edge")
        inside = np.empty_like(values)
        term = np.empty_like(values[:, 0])
        for k, (first, weights, low, high) in enumerate(self.position_shifts):  # a loop over velocity nodes
            along = inside[:, k]
            for s in range(4):  # the four nodes of the cubic stencil
                start = pad + first + s
                np.multiply(padded[start : start + n_positions, k], weights[s], out=term if s else along)
                if s:
                    along += term
            along[:low] = values[0, self.zero_velocity]
            along[n_positions - high :] = values[-1, self.zero_velocity]
        inside = inside.reshape(n_positions, len(self.velocities), -1)
        return np.matmul(self.velocity_mass, inside).reshape(n_positions, len(self.shifts), *values.shape[2:])

    def cell_probabilities(self, mean: np.ndarray, n_bins: int) -> np.ndarray:
        """``(*mean.shape, n_bins)``: probability that ``mean + dt eps`` lies in each histogram cell (``mean`` the
        position ``p + dt w``; edge cells take the tails, as the histogram does).

        The CDF is evaluated only at the cell edges within ``8`` standard deviations of the mean (beyond, it is 0
        or 1 to double precision): the crowd part needs millions of these per step."""
        edges = np.linspace(self.low, self.high, n_bins + 1)[1:-1]
        std = self.dt * self.noise_std
        cdf = (edges <= mean[..., None]).astype(float)
        if std > 0.0:
            width = (self.high - self.low) / n_bins
            reach = min(n_bins - 1, math.ceil(8.0 * std / width) + 1)
            first = np.clip(
                np.floor((mean - self.low) / width).astype(int) - reach, 0, n_bins - 1 - min(2 * reach, n_bins - 1)
            )
            near = first[..., None] + np.arange(min(2 * reach, n_bins - 1))
            np.put_along_axis(cdf, near, fast_normal_cdf((mean[..., None] - edges[near]) / std), axis=-1)
        ones = np.ones((*mean.shape, 1))
        return -np.diff(np.concatenate([ones, cdf, 0.0 * ones], axis=-1), axis=-1)

    def node_cell_probabilities(self, n_bins: int) -> np.ndarray:
        """``(P, M, n_bins)``: :meth:`cell_probabilities` of every position node and shifted velocity."""
        mean = self.positions[:, None] + self.dt * self.shifts[None, :]
        return self.cell_probabilities(mean, n_bins).astype(GRID_DTYPE)


def fast_normal_cdf(z: np.ndarray) -> np.ndarray:
    """``Phi(z)`` in numpy ufuncs, through ``erf`` by Abramowitz and Stegun's 7.1.26 (absolute error below
    1.5e-7): the cell probabilities of the crowd part are millions of evaluations per step."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


@dataclass(frozen=True)
class StageRewards:
    """The reward of one step split for the dynamic program: ``r_n(s, u) = state(s) + action(u) - cells[cell(p)]``.

    ``state`` is on the nodes ``(P, K, P, K)`` (axes ``x, vx, y, vy``), ``action`` on the acceleration pairs
    ``(A, A)``, ``cells`` the crowd cost per histogram cell ``(n_bins, n_bins)`` (``None``: no crowd part).
    """

    state: np.ndarray
    action: np.ndarray
    cells: np.ndarray | None


def node_shape(grid: AxisGrid) -> tuple[int, int, int, int]:
    """``(P, K, P, K)``: the node array's shape."""
    return (len(grid.positions), len(grid.velocities), len(grid.positions), len(grid.velocities))


def node_states(grid: AxisGrid) -> tuple[np.ndarray, ...]:
    """``x, vx, y, vy`` broadcastable on the node array ``(P, K, P, K)``."""
    p, v = grid.positions, grid.velocities
    return p[:, None, None, None], v[None, :, None, None], p[None, None, :, None], v[None, None, None, :]


def stage_rewards(model: CrowdDynamics, grid: AxisGrid, mean_field: Any) -> StageRewards:
    """The split reward of a step of ``model`` against ``mean_field`` (its own, or the joint one of several
    populations): the walled crowd's ``-||s - s_goal|| - l1 |u| - crowd_cost(m)[cell]``, or the crowd-LQ model's
    ``-dt [r/2 |u|^2 + q/2 |p - g|^2 + c_c sum_axes log rho_n(p)]`` (no cell part)."""
    x, vx, y, vy = node_states(grid)
    ux, uy = grid.accelerations[:, None], grid.accelerations[None, :]
    gx, gy = model.goal
    if isinstance(model, CrowdModel):
        state = -np.sqrt((x - gx) ** 2 + (y - gy) ** 2 + vx**2 + vy**2)
        cells = model.crowd_cost(mean_field).reshape(model.n_bins, model.n_bins)
        return StageRewards(state.astype(GRID_DTYPE), model.action_reward(ux, uy), cells)
    if isinstance(model, CrowdLQModel):
        spread = mean_field["var"] + model.bandwidth**2
        log_density = sum(
            -0.5 * np.log(2.0 * np.pi * spread[a]) - (p - mean_field["mean"][a]) ** 2 / (2.0 * spread[a])
            for a, p in enumerate((x, y))
        )
        state = -model.dt * (
            0.5 * model.goal_cost * ((x - gx) ** 2 + (y - gy) ** 2) + model.crowd_aversion * log_density
        )
        state = np.broadcast_to(state.astype(GRID_DTYPE), (len(grid.positions), len(grid.velocities)) * 2)
        return StageRewards(state, model.action_reward(ux, uy), None)
    raise ValueError(f"the dynamic-programming best response covers the crowd models, not {type(model).__name__}")


def terminal_reward(model: CrowdDynamics, grid: AxisGrid) -> np.ndarray:
    """``W_N`` on the nodes: the model's terminal reward (0 for the walled crowd)."""
    x, vx, y, vy = node_states(grid)
    shape = node_shape(grid)
    if isinstance(model, CrowdLQModel):
        gx, gy = model.goal
        goal = model.terminal_goal_cost * ((x - gx) ** 2 + (y - gy) ** 2)
        terminal = -0.5 * (goal + model.terminal_velocity_cost * (vx**2 + vy**2))
        return np.broadcast_to(terminal, shape).astype(GRID_DTYPE)
    return np.zeros(shape, dtype=GRID_DTYPE)


class DPPolicy:
    """The dynamic program's greedy best response as a population policy.

    At step ``n`` (read from the observation's time) it plays at each particle's state the acceleration that
    maximizes ``g(u) + U_{n+1}(p, v + dt u)``, first over the solver's accelerations, then over ``REFINED_ACTIONS``
    per axis within one of their spacings of the best (half a spacing apart), refined by a parabola where that is
    better: the smooth part ``E W_{n+1}`` (recomputed from the stored ``W_{n+1}``, once per step) interpolated at
    the particle, cubically in position and in the shifted velocity, and the crowd part computed exactly at the
    particle. ``value_estimate``: the solver's own expected return from the initial law (its grid value, averaged
    over the initial states).
    """

    def __init__(self, model: CrowdDynamics, grid: AxisGrid, stages: list[Stage], value_estimate: float) -> None:
        self.model, self.grid, self.stages, self.value_estimate = model, grid, stages, value_estimate
        self._cached: tuple[int, np.ndarray] | None = None

    def expected(self, n: int) -> np.ndarray:
        """The smooth part ``E W_{n+1}`` of ``U_{n+1}`` on ``(P, M, P, M)`` (the last step's is kept)."""
        if self._cached is None or self._cached[0] != n:
            self._cached = (n, self.stages[n].expected(self.grid, crowd=False))
        return self._cached[1]

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs["state"], dtype=np.float64)
        n_steps = self.model.n_steps
        steps = np.minimum(np.rint(np.asarray(obs["time"])[:, 0] * n_steps).astype(int), n_steps - 1)
        physical = np.zeros((len(states), 2))
        for n in np.unique(steps):  # one step for a whole population; a loop over the steps present otherwise
            rows = steps == n
            physical[rows] = self.greedy(n, states[rows])
        return np.clip(physical / self.model.action_bound, -1.0, 1.0)

    def greedy(self, n: int, states: np.ndarray) -> np.ndarray:
        """The greedy accelerations ``(len(states), 2)`` at step ``n``: the best of the solver's accelerations, then
        the best of ``REFINED_ACTIONS**2`` accelerations within one spacing of it per axis (a finer search than the
        grid's, cheap at the particles), refined per axis by :func:`parabola` (exact for a quadratic ``Q``) where
        that point is better."""
        grid, n_actions = self.grid, len(self.grid.accelerations)
        table = self.smooth_table(n, states)
        coarse = np.broadcast_to(np.arange(n_actions, dtype=float), (len(states), n_actions))
        q = self.q_values(n, states, table, coarse, coarse)
        best = np.divmod(q.reshape(len(states), -1).argmax(axis=1), n_actions)
        offsets = np.linspace(-1.0, 1.0, REFINED_ACTIONS)
        fine = [np.clip(index[:, None] + offsets, 0, n_actions - 1) for index in best]
        q = self.q_values(n, states, table, *fine)
        rows, columns = np.divmod(q.reshape(len(states), -1).argmax(axis=1), REFINED_ACTIONS)
        particles, last = np.arange(len(states)), REFINED_ACTIONS - 1
        searched = np.stack([fine[0][particles, rows], fine[1][particles, columns]], axis=1)
        refined = searched.copy()
        for axis, (index, best_row, other, along) in enumerate(
            ((fine[0], rows, columns, q), (fine[1], columns, rows, q.transpose(0, 2, 1)))
        ):
            inner = np.clip(best_row, 1, last - 1)
            below, above = along[particles, inner - 1, other], along[particles, inner + 1, other]
            offset, _ = parabola(below, q[particles, rows, columns], above, best_row == inner)
            refined[:, axis] += offset * (index[particles, inner + 1] - index[particles, inner])
        # the parabola's point only where it is really better (it overshoots at kinks of Q)
        gain = self.q_values(n, states, table, refined[:, :1], refined[:, 1:])[:, 0, 0] - q[particles, rows, columns]
        chosen = np.where((gain > 0.0)[:, None], refined, searched)
        spacing = grid.accelerations[1] - grid.accelerations[0]
        return grid.accelerations[0] + spacing * chosen

    def smooth_table(self, n: int, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``E W_{n+1}`` at each particle's position (cubic stencils) on the ``(A + 3)^2`` shifted velocities from
        the second below ``v + dt u_0`` on, and the fractions ``(t_x, t_y)`` of a shift step by which ``v + dt u_0``
        lies above the first below it: one flat gather ``(N, 4, A + 3, 4, A + 3)`` contracted by batched
        products."""
        grid, n_actions = self.grid, len(self.grid.accelerations)
        width = n_actions + 3
        block = []
        for position, velocity in ((states[:, 0], states[:, 2]), (states[:, 1], states[:, 3])):
            nodes, weights = _cubic_stencil(position, grid.positions)
            step = grid.shifts[1] - grid.shifts[0]
            scaled = np.clip((velocity - grid.velocities[0]) / step, 0, len(grid.shifts) - n_actions - 1)
            first = scaled.astype(int)
            window = np.clip(first[:, None] - 1 + np.arange(width), 0, len(grid.shifts) - 1)
            block.append((nodes, weights, window, scaled - first))
        (ix, cx, wx, tx), (iy, cy, wy, ty) = block
        expected = self.expected(n)
        _, n_shifts, n_positions, _ = expected.shape
        along_x = ((ix[:, :, None] * n_shifts + wx[:, None, :]) * (n_positions * n_shifts)).astype(np.intp)
        along_y = (iy[:, :, None] * n_shifts + wy[:, None, :]).astype(np.intp)
        flat = along_x[:, :, :, None, None] + along_y[:, None, None, :, :]
        values = expected.ravel().take(flat).reshape(len(states), 4, -1)
        values = np.matmul(cx[:, None, :], values).reshape(len(states), width, 4, width)
        return np.matmul(cy[:, None, None, :], values).reshape(len(states), width, width), tx, ty

    def q_values(
        self,
        n: int,
        states: np.ndarray,
        table: tuple[np.ndarray, np.ndarray, np.ndarray],
        along_x: np.ndarray,
        along_y: np.ndarray,
    ) -> np.ndarray:
        """``g(u) + U_{n+1}(p, v + dt u)`` ``(N, C_x, C_y)`` at the accelerations ``u_0 + spacing * index`` of the
        fractional indices ``along_x (N, C_x)``, ``along_y (N, C_y)``: ``E W`` cubic (Catmull-Rom) in the shifted
        velocity between the table's nodes (:meth:`smooth_table`: smooth, so that the parabola of :meth:`greedy`
        reads a smooth function), the crowd part exactly at the particle (not interpolated across cells)."""
        grid, stage = self.grid, self.stages[n]
        values, tx, ty = table
        for axis, (index, fraction) in enumerate(((along_x, tx), (along_y, ty))):
            values = _cubic_along(values, axis + 1, index + fraction[:, None])
        spacing = grid.accelerations[1] - grid.accelerations[0]
        ux, uy = (grid.accelerations[0] + spacing * index for index in (along_x, along_y))
        q = values + self.model.action_reward(ux[:, :, None], uy[:, None, :])
        if stage.next_cells is not None:
            cells = [
                grid.cell_probabilities(states[:, axis, None] + grid.dt * (states[:, 2 + axis, None] + grid.dt * u),
                                        self.model.n_bins)
                for axis, u in ((0, ux), (1, uy))
            ]  # fmt: skip
            q -= np.matmul(np.matmul(cells[0], stage.next_cells), cells[1].transpose(0, 2, 1))
        return q


def _cubic_along(values: np.ndarray, axis: int, at: np.ndarray) -> np.ndarray:
    """``values (N, ., .)`` interpolated cubically (Catmull-Rom) along ``axis`` (1 or 2) at the fractional node
    positions ``at (N, C)``, counted from the second node: ``(N, C, .)`` or ``(N, ., C)``."""
    below = np.minimum(at.astype(int), values.shape[axis] - 4)
    weights = catmull_rom((at - below).ravel()).reshape(*at.shape, 4)
    terms = [  # the four nodes of the cubic stencil, the first at the node `below`
        np.expand_dims(weights[..., s], 3 - axis)
        * np.take_along_axis(values, np.expand_dims(below + s, 3 - axis), axis)
        for s in range(4)
    ]
    return sum(terms[1:], terms[0])


def catmull_rom(t: np.ndarray) -> np.ndarray:
    """``(len(t), 4)``: the Catmull-Rom weights of nodes ``-1, 0, 1, 2`` at fractions ``t`` in ``[0, 1]``."""
    t = t[:, None]
    return np.concatenate(
        [
            (-(t**3) + 2 * t**2 - t) / 2,
            (3 * t**3 - 5 * t**2 + 2) / 2,
            (-3 * t**3 + 4 * t**2 + t) / 2,
            (t**3 - t**2) / 2,
        ],
        axis=1,
    )


def _cubic_stencil(points: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4 node indices ``(len(points), 4)`` and their Catmull-Rom weights at each point (clamped at the ends)."""
    h, last = nodes[1] - nodes[0], len(nodes) - 1
    scaled = np.clip((points - nodes[0]) / h, 0, last)
    left = np.minimum(scaled.astype(int), last - 1)
    return np.clip(left[:, None] + np.arange(-1, 3), 0, last), catmull_rom(scaled - left)


def parabola(
    below: np.ndarray, center: np.ndarray, above: np.ndarray, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The maximum of the parabola through ``(-1, below), (0, center), (1, above)``: its offset in ``[-1/2, 1/2]``
    and the value it adds, where ``usable`` and concave (else 0, 0)."""
    curvature = below - 2.0 * center + above
    ok = usable & (curvature < 0.0)
    offset = np.clip(np.where(ok, 0.5 * (below - above) / np.where(ok, curvature, -1.0), 0.0), -0.5, 0.5)
    return offset, np.where(ok, 0.5 * (above - below) * offset + 0.5 * curvature * offset**2, 0.0)


def expected_cells(probabilities: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """``E cells[cell(p'_x), cell(p'_y)]`` on ``(P, M, P, M)`` from the per-axis cell probabilities ``(P, M, B)``."""
    along_x = np.tensordot(probabilities, cells.astype(probabilities.dtype), axes=([2], [0]))  # (P, M, B_y)
    return np.tensordot(along_x, probabilities, axes=([2], [2]))


@dataclass
class Stage:
    """Step ``n`` of the dynamic program: its split reward and what ``U_{n+1}`` is made of (``W_{n+1}`` and the
    crowd part of step ``n + 1``)."""

    rewards: StageRewards
    next_value: np.ndarray
    next_cells: np.ndarray | None
    probabilities: np.ndarray | None

    def expected(self, grid: AxisGrid, crowd: bool = True) -> np.ndarray:
        """``U_{n+1}(p, w) = E W_{n+1}(p', v') - E D_{n+1}(cell(p'))`` on ``(P, M, P, M)`` (``crowd=False``: its
        smooth first term alone)."""
        # each axis' expectation runs on its leading axes: y first on the transposed values, then x
        along_y = grid.expect(np.ascontiguousarray(self.next_value.transpose(2, 3, 0, 1)))  # (P_y, M_y, P_x, K_x)
        expected = grid.expect(np.ascontiguousarray(along_y.transpose(2, 3, 0, 1)))  # (P_x, M_x, P_y, M_y)
        if crowd and self.next_cells is not None and self.probabilities is not None:
            expected -= expected_cells(self.probabilities, self.next_cells)
        return expected


def best_over_actions(grid: AxisGrid, expected: np.ndarray, action_reward: np.ndarray) -> np.ndarray:
    """``max_u [g(u) + U(p, v + dt u)]`` on the nodes, refined between the accelerations per axis by
    :func:`parabola` (the other axis held)."""
    r, n_v, n_actions = grid.refinement, len(grid.velocities), action_reward.shape[0]
    action_reward = action_reward.astype(expected.dtype)
    best = np.full(node_shape(grid), -np.inf, dtype=expected.dtype)
    chosen = np.zeros(best.shape, dtype=np.int16)
    span = r * (n_v - 1) + 1
    # a few x positions at a time, so that the loops over the accelerations run in cache; the maximum first,
    # then the first acceleration that attains it (cheaper than tracking it)
    for block_rows in np.array_split(np.arange(best.shape[0]), max(1, best.shape[0] // MAXIMUM_ROWS)):
        first, last = block_rows[0], block_rows[-1] + 1
        block, best_rows, chosen_rows = expected[first:last], best[first:last], chosen[first:last]
        candidate, attained = np.empty_like(best_rows), np.empty(best_rows.shape, dtype=bool)
        for (a, b), reward in np.ndenumerate(action_reward):  # a loop over the accelerations
            np.add(block[:, a : a + span : r, :, b : b + span : r], reward, out=candidate)
            np.maximum(candidate, best_rows, out=best_rows)
        for a, b in reversed(list(np.ndindex(action_reward.shape))):
            np.add(block[:, a : a + span : r, :, b : b + span : r], action_reward[a, b], out=candidate)
            np.equal(candidate, best_rows, out=attained)
            np.copyto(chosen_rows, a * n_actions + b, where=attained)
    rows, columns = np.divmod(chosen.astype(np.intp), n_actions)
    n_positions, n_shifts = expected.shape[:2]
    px, vx, py, vy = (
        np.arange(size).reshape([-1 if d == axis else 1 for d in range(4)]) for axis, size in enumerate(best.shape)
    )
    origin = ((px * n_shifts + vx * r) * n_positions + py) * n_shifts + vy * r  # flat index of (a, b) = (0, 0)
    flat_expected, flat_reward = expected.ravel(), action_reward.ravel()

    def q_value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return flat_expected.take(origin + a * (n_positions * n_shifts) + b) + flat_reward.take(a * n_actions + b)

    gain = np.zeros_like(best)
    for chosen_axis, other, axis in ((rows, columns, 0), (columns, rows, 1)):
        inner = np.clip(chosen_axis, 1, n_actions - 2)
        below = q_value(inner - 1, other) if axis == 0 else q_value(other, inner - 1)
        above = q_value(inner + 1, other) if axis == 0 else q_value(other, inner + 1)
        gain += parabola(below, best, above, chosen_axis == inner)[1]
    return best + gain


def dp_best_response(
    model: CrowdDynamics,
    mean_fields: Sequence[MeanField],
    initial_states: np.ndarray,
    resolution: DPResolution = DEFAULT_RESOLUTION,
) -> DPPolicy:
    """The greedy policy of the dynamic program against the frozen ``mean_fields`` ``mu_0..mu_N`` (what the model's
    reward receives at each step) and its value estimate over ``initial_states`` (see the module docstring)."""
    walls = isinstance(model, CrowdModel)
    grid = AxisGrid(model, resolution, walls)
    if len(mean_fields) != model.n_steps + 1:
        raise ValueError(
            f"mean_fields must hold the n_steps + 1 = {model.n_steps + 1} mean fields mu_0..mu_N, "
            f"got {len(mean_fields)}"
        )
    probabilities = grid.node_cell_probabilities(model.n_bins) if walls else None
    value, cells = terminal_reward(model, grid), None
    stages: list[Stage] = []
    for n in reversed(range(model.n_steps)):  # a loop over time steps
        stage = Stage(stage_rewards(model, grid, mean_fields[n]), value, cells, probabilities)
        value = stage.rewards.state + best_over_actions(grid, stage.expected(grid), stage.rewards.action)
        cells = stage.rewards.cells
        stages.append(stage)
    estimate = initial_value(model, grid, value, cells, initial_states)
    return DPPolicy(model, grid, stages[::-1], estimate)


def initial_value(
    model: CrowdDynamics, grid: AxisGrid, value: np.ndarray, cells: np.ndarray | None, states: np.ndarray
) -> float:
    """``mean_i V_0(s_i)``: ``W_0`` interpolated (cubic in positions, linear in velocities) at the initial states,
    minus the crowd part of step 0 at their cells."""
    ix, cx = _cubic_stencil(states[:, 0], grid.positions)
    iy, cy = _cubic_stencil(states[:, 1], grid.positions)
    (jx, jy), (tx, ty) = zip(*(_linear_stencil(states[:, c], grid.velocities) for c in (2, 3)))
    gathered = value[
        ix[:, :, None, None, None], jx[:, None, :, None, None], iy[:, None, None, :, None], jy[:, None, None, None, :]
    ]
    vx_weights, vy_weights = np.stack([1 - tx, tx], axis=1), np.stack([1 - ty, ty], axis=1)
    estimate = np.einsum("ni,nj,nk,nl,nijkl->n", cx, vx_weights, cy, vy_weights, gathered)
    if cells is not None:
        low, high = model.domain
        scaled = np.clip(((states[:, :2] - low) * (model.n_bins / (high - low))).astype(int), 0, model.n_bins - 1)
        estimate = estimate - cells[scaled[:, 0], scaled[:, 1]]
    return float(np.mean(estimate))


def _linear_stencil(points: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2 node indices ``(len(points), 2)`` around each point and its fraction between them (clamped)."""
    h, last = nodes[1] - nodes[0], len(nodes) - 1
    scaled = np.clip((points - nodes[0]) / h, 0, last)
    left = np.minimum(scaled.astype(int), last - 1)
    return left[:, None] + np.arange(2), scaled - left


#: Initial states drawn for a best response's value estimate.
VALUE_SAMPLE = 10_000


def dp_solvable(model: Any) -> bool:
    """Whether every population of ``model`` (a model or a game model) is a crowd model the dynamic program covers."""
    members = getattr(model, "populations", (model,))
    return all(isinstance(member, (CrowdModel, CrowdLQModel)) for member in members)


class DPBestResponse:
    """The ``"dp"`` best-response method of :func:`mfg_envs.nash_gap.crn_nash_gap`: population ``k``'s best response
    to the frozen flows by :func:`dp_best_response`, valued over ``VALUE_SAMPLE`` initial states drawn as population
    ``k``'s particles of the replicate (same generator)."""

    fresh_noise = False

    def __init__(self, resolution: DPResolution = DEFAULT_RESOLUTION) -> None:
        self.resolution = resolution

    def __call__(
        self,
        game: Game,
        population: int,
        flows: Sequence[PopulationFlow],
        seed: int,
        policies: Sequence[PopulationPolicy] | None = None,
    ) -> DPPolicy:
        """The dp best response to ``flows`` (it answers the flows: ``policies`` is not needed)."""
        model = game.model.populations[population]
        if not isinstance(model, (CrowdModel, CrowdLQModel)):
            raise NotImplementedError(
                f"{type(model).__name__} has no dynamic-programming best response (the crowd models have one)"
            )
        n_steps = model.n_steps
        if len(flows) != len(game.names) or any(len(flow.mean_fields) != n_steps + 1 for flow in flows):
            raise ValueError(f"flows must hold one flow of {n_steps + 1} steps per population {game.names}")
        joint = [game.model.joint_mean_field([flow.mean_fields[n] for flow in flows]) for n in range(n_steps + 1)]
        initial = model.initial_states(VALUE_SAMPLE, population_rngs(seed, len(game.names))[population])
        return dp_best_response(model, joint, initial, self.resolution)
