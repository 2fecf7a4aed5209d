"""Frames of the population for ``render_mode="rgb_array"`` and ``"human"`` (numpy only, deterministic).

A model says what to draw at the current step by returning a scene from its ``render_scene(population)``
method: a :class:`HistogramScene` (a 1-D population quantity: state, posted price, allocation) or a
:class:`PlaneScene` (positions in the plane). :func:`draw_scene` rasterizes a scene into an
``H x W x 3`` uint8 image with a handful of vectorized numpy primitives (no loop over particles, no
text, no randomness), so a frame depends only on the population's state and costs well under a
millisecond per thousand particles. A thin bar along the top edge shows the elapsed time ``t_n / T``.

``"human"`` mode shows the same frames in a matplotlib window. Without a display (no ``DISPLAY`` or
``WAYLAND_DISPLAY`` on Linux, or a non-interactive matplotlib backend) the env warns once at
construction and ``render()`` draws nothing and returns ``None``, so scripts written for a window
still run on a headless machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mfg_envs.core import MeanFieldModel, Population, histogram
from mfg_envs.game import exactly_solvable

if TYPE_CHECKING:
    from mfg_envs.equilibrium import Equilibrium

Color = tuple[int, int, int]
BAR: Color = (158, 202, 225)
PARTICLE_MEAN: Color = (31, 119, 180)
EXACT: Color = (20, 20, 20)
SIGNAL: Color = (255, 127, 14)
BAND: Color = (222, 240, 222)
LEARNER: Color = (214, 39, 40)
PARTICLE: Color = (35, 35, 35)
GOAL: Color = (44, 160, 44)
WALL: Color = (90, 90, 90)
CLOCK: Color = (150, 150, 150)
#: White to dark blue: the density heat map (cell mass over the largest cell mass).
HEAT_ANCHORS = np.array([(255, 255, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)], float)
HEAT_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(HEAT_ANCHORS)), HEAT_ANCHORS[:, c]) for c in range(3)],
    axis=1,
).astype(np.uint8)

HISTOGRAM_SHAPE = (300, 400)
PLANE_SHAPE = (400, 400)
MARGIN, CLOCK_HEIGHT = 12, 4
#: Particles drawn as dots in a plane frame: the first ones (i.i.d. particles, so a fair sample).
MAX_DOTS = 5000
NON_INTERACTIVE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


# --------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class Mark:
    """A vertical line at ``position`` (data units) across a histogram frame."""

    position: float
    color: Color
    dashed: bool = False


@dataclass(frozen=True)
class HistogramScene:
    """A 1-D population histogram: bars of ``masses`` (``(n_bins,)``, sum 1) on ``bounds``.

    ``reference``: masses of an exact law on the same grid, drawn as a black step line; ``marks``:
    vertical lines; ``band``: an interval shaded green (e.g. the capacity range).
    """

    bounds: tuple[float, float]
    masses: np.ndarray
    time: float
    reference: np.ndarray | None = None
    marks: tuple[Mark, ...] = ()
    band: tuple[float, float] | None = None


@dataclass(frozen=True)
class PlaneScene:
    """Positions in the square ``bounds`` (``(2, 2)``): ``density`` cell masses (``(n_bins**2,)``, C order,
    ``x`` slowest) as a heat map, ``particles`` ``(M, 2)`` as dots, the ``goal`` as a green cross, walls
    as a thick border. ``reference = (mean, std)`` per axis draws the ellipse ``mean +- 2 std`` of the reference
    equilibrium's positions in orange (an exact Gaussian law, or the numerical reference's binned moments)."""

    bounds: np.ndarray
    density: np.ndarray
    particles: np.ndarray
    time: float
    goal: np.ndarray | None = None
    walls: bool = False
    reference: tuple[np.ndarray, np.ndarray] | None = None


Scene = HistogramScene | PlaneScene

_EQUILIBRIA: weakref.WeakKeyDictionary[MeanFieldModel, Equilibrium | None] = weakref.WeakKeyDictionary()


def exact_equilibrium(model: MeanFieldModel) -> Equilibrium | None:
    """``model.solve_equilibrium()``, computed once per model; ``None`` when the model has no exact solution, or when
    its population is random (``random_population``: the exact flow is that of one nominal draw, not the episode's).

    Models are immutable after construction, so the cache (weakly keyed by the model) never goes stale.
    """
    if model not in _EQUILIBRIA:
        _EQUILIBRIA[model] = None
        if exactly_solvable(model) and not model.random_population:
            with contextlib.suppress(ValueError, RuntimeError):  # no equilibrium at these parameters
                _EQUILIBRIA[model] = model.solve_equilibrium()  # type: ignore[attr-defined]
    return _EQUILIBRIA[model]


_REFERENCE_HISTOGRAMS: weakref.WeakKeyDictionary[MeanFieldModel, np.ndarray] = weakref.WeakKeyDictionary()


def numerical_reference_histograms(model: MeanFieldModel) -> np.ndarray | None:
    """The cell masses per step ``(N+1, n_bins**d)`` of the numerical reference flow of a model that has one (the
    walled crowd, :mod:`mfg_envs.crowd_equilibrium`) when the disk cache holds it, else ``None``.

    Never computed here (that takes minutes): ``mfg_envs.solve_equilibrium(env)`` computes and caches it, and every
    frame drawn after that finds it. A found flow is kept per model (weakly keyed, as :func:`exact_equilibrium`).
    """
    if model not in _REFERENCE_HISTOGRAMS:
        # crowd_equilibrium imports the models, which import this module: imported here, where it is used
        from mfg_envs.crowd_equilibrium import cached_reference_flows, has_reference

        flows = cached_reference_flows(model) if has_reference(model) else None
        if flows is None:
            return None
        _REFERENCE_HISTOGRAMS[model] = flows[0].population.astype(float)
    return _REFERENCE_HISTOGRAMS[model]


def population_masses(population: Population) -> np.ndarray:
    """The histogram ``m_n`` a frame shows: the particles' own histogram, or the frozen flow's entry.

    Frozen to a flow (a best-response env), the population is the flow, not the lone learner; a flow in the
    ``moments`` representation has no histogram, so the learner's particles are counted instead.
    """
    if population.flow is None:
        return population.hist
    if population.representation != "moments":
        return population.features.astype(float)
    model = population.model
    values = model.histogram_values(population.states, population.last_actions)
    if values is None:
        return np.zeros(model.n_bins ** model.histogram_bounds.shape[0])
    return histogram(values, model.histogram_bounds, model.n_bins)


def histogram_scene(
    population: Population, marks: tuple[Mark, ...] = (), band: tuple[float, float] | None = None
) -> HistogramScene:
    """Bars of a 1-D population histogram with the exact equilibrium law of this step as reference.

    A model that histograms actions has no histogram before the first action: the bars are then empty.
    """
    model, n = population.model, population.step_index
    bounds = tuple(model.histogram_bounds[0])
    if model.histogram_values(population.states[:1], population.last_actions) is None:
        return HistogramScene(bounds, np.zeros(model.n_bins), population.time, None, marks, band)
    equilibrium = exact_equilibrium(model)
    reference = None if equilibrium is None else equilibrium.histograms[n]
    return HistogramScene(bounds, population_masses(population), population.time, reference, marks, band)


def generic_scene(population: Population) -> Scene:
    """The scene of a model without a ``render_scene`` method: its population histogram, bars or heat map."""
    model = population.model
    masses = population_masses(population)
    if model.histogram_bounds.shape[0] == 1:
        return HistogramScene(tuple(model.histogram_bounds[0]), masses, population.time)
    return PlaneScene(model.histogram_bounds, masses, np.zeros((0, 2)), population.time)


def scene_of(population: Population) -> Scene:
    """``population.model.render_scene(population)``, or :func:`generic_scene` for models without one."""
    render_scene = getattr(population.model, "render_scene", None)
    return render_scene(population) if render_scene is not None else generic_scene(population)


# --------------------------------------------------------------------------- rasterizing
#: Pixel coordinates are clipped to ``[-1, OFF_CANVAS]`` before the cast: every frame is smaller.
OFF_CANVAS = 1e6


def pixel_indices(coordinates: np.ndarray) -> np.ndarray:
    """``floor(coordinates)`` as integers; a point far off the canvas or not finite (a particle of a diverging
    configuration) maps just outside it (NaN to -1), where nothing is drawn, instead of an undefined integer cast."""
    return np.floor(np.nan_to_num(np.clip(coordinates, -1.0, OFF_CANVAS), nan=-1.0)).astype(int)


class _Canvas:
    """An image with a plot area below the time bar and a linear map from data units to pixels."""

    def __init__(self, shape: tuple[int, int], x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.pixels = np.full((*shape, 3), 255, dtype=np.uint8)
        self.top, self.bottom = MARGIN + CLOCK_HEIGHT, shape[0] - MARGIN
        self.left, self.right = MARGIN, shape[1] - MARGIN
        self.x_range, self.y_range = x_range, y_range

    def columns(self, x: np.ndarray | float) -> np.ndarray:
        (x0, x1), width = self.x_range, self.right - self.left
        return pixel_indices(self.left + (np.asarray(x, dtype=float) - x0) / (x1 - x0) * width)

    def rows(self, y: np.ndarray | float) -> np.ndarray:
        (y0, y1), height = self.y_range, self.bottom - self.top
        return pixel_indices(self.bottom - (np.asarray(y, dtype=float) - y0) / (y1 - y0) * height)

    def dots(self, rows: np.ndarray, cols: np.ndarray, color: Color, size: int) -> None:
        """Squares of ``size x size`` pixels at each point inside the plot area (one assignment per offset)."""
        inside = (rows >= self.top) & (rows < self.bottom) & (cols >= self.left) & (cols < self.right)
        rows, cols = rows[inside], cols[inside]
        offsets = range(-(size // 2), size - size // 2)
        for dr in offsets:
            for dc in offsets:
                r = np.clip(rows + dr, self.top, self.bottom - 1)
                c = np.clip(cols + dc, self.left, self.right - 1)
                self.pixels[r, c] = color

    def vertical_line(self, x: float, color: Color, dashed: bool = False, width: int = 2) -> None:
        col = int(self.columns(x))
        if not self.left <= col < self.right:
            return
        rows = np.arange(self.top, self.bottom)
        if dashed:
            rows = rows[(rows // 6) % 2 == 0]
        self.pixels[rows[:, None], np.arange(col, min(col + width, self.right))[None, :]] = color

    def step_line(self, heights: np.ndarray, color: Color) -> None:
        """The curve ``y = heights[column]`` (one value per plot column), joined by vertical runs, 2 px thick."""
        rows = np.clip(self.rows(heights), self.top, self.bottom - 1)
        low = np.minimum(rows, np.append(rows[1:], rows[-1]))
        high = np.maximum(rows, np.append(rows[1:], rows[-1]))
        grid = np.arange(self.top, self.bottom)[:, None]
        mask = (grid >= low[None, :] - 1) & (grid <= high[None, :])
        self.pixels[self.top : self.bottom, self.left : self.right][mask] = color

    def clock(self, time: float) -> None:
        filled = self.left + round(float(np.clip(time, 0.0, 1.0)) * (self.right - self.left))
        self.pixels[MARGIN // 2 : MARGIN // 2 + CLOCK_HEIGHT, self.left : filled] = CLOCK

    def border(self, color: Color, width: int) -> None:
        t, b, lft, rgt = self.top, self.bottom, self.left, self.right
        self.pixels[t - width : t, lft - width : rgt + width] = color
        self.pixels[b : b + width, lft - width : rgt + width] = color
        self.pixels[t:b, lft - width : lft] = color
        self.pixels[t:b, rgt : rgt + width] = color


def _draw_histogram(scene: HistogramScene, learner: np.ndarray | None) -> np.ndarray:
    masses = np.asarray(scene.masses, dtype=float)
    peak = max(masses.max(initial=0.0), 0.0 if scene.reference is None else float(np.max(scene.reference)))
    canvas = _Canvas(HISTOGRAM_SHAPE, scene.bounds, (0.0, 1.1 * peak if peak > 0 else 1.0))
    n_bins, width = masses.size, canvas.right - canvas.left
    bins = np.minimum(np.arange(width) * n_bins // width, n_bins - 1)
    area = canvas.pixels[canvas.top : canvas.bottom, canvas.left : canvas.right]
    if scene.band is not None:
        low, high = np.clip(canvas.columns(np.array(scene.band)) - canvas.left, 0, width)
        area[:, low:high] = BAND
    bar_tops = canvas.rows(masses[bins]) - canvas.top
    area[np.arange(area.shape[0])[:, None] >= bar_tops[None, :]] = BAR
    if scene.reference is not None:
        canvas.step_line(np.asarray(scene.reference, dtype=float)[bins], EXACT)
    for mark in scene.marks:
        canvas.vertical_line(mark.position, mark.color, mark.dashed)
    canvas.pixels[canvas.bottom : canvas.bottom + 2, canvas.left : canvas.right] = EXACT  # baseline
    if learner is not None:  # a red triangle under the baseline, pointing at the learner's value
        col = int(np.clip(canvas.columns(learner[0]), canvas.left, canvas.right - 1))
        for depth in range(MARGIN - 3):
            canvas.pixels[canvas.bottom + 2 + depth, max(col - depth, 0) : col + depth + 1] = LEARNER
    canvas.clock(scene.time)
    return canvas.pixels


def _draw_plane(scene: PlaneScene, learner: np.ndarray | None) -> np.ndarray:
    bounds = np.asarray(scene.bounds, dtype=float)
    canvas = _Canvas(PLANE_SHAPE, tuple(bounds[0]), tuple(bounds[1]))
    n_bins = math.isqrt(scene.density.size)
    grid = np.asarray(scene.density, dtype=float).reshape(n_bins, n_bins)  # [x cell, y cell]
    peak = grid.max() if grid.max() > 0 else 1.0
    height, width = canvas.bottom - canvas.top, canvas.right - canvas.left
    x_cells = np.minimum(np.arange(width) * n_bins // width, n_bins - 1)
    y_cells = np.minimum(np.arange(height)[::-1] * n_bins // height, n_bins - 1)  # row 0 is the top (largest y)
    shade = np.rint(grid[np.ix_(x_cells, y_cells)].T / peak * 255).astype(int)
    canvas.pixels[canvas.top : canvas.bottom, canvas.left : canvas.right] = HEAT_LUT[shade]
    if scene.reference is not None:
        mean, std = scene.reference
        angle = np.linspace(0.0, 2.0 * np.pi, 720)
        ellipse = mean[:, None] + 2.0 * std[:, None] * np.stack([np.cos(angle), np.sin(angle)])
        canvas.dots(canvas.rows(ellipse[1]), canvas.columns(ellipse[0]), SIGNAL, 3)
    particles = np.asarray(scene.particles[:MAX_DOTS], dtype=float)
    canvas.dots(canvas.rows(particles[:, 1]), canvas.columns(particles[:, 0]), PARTICLE, 2)
    if scene.goal is not None:
        row, col = int(canvas.rows(scene.goal[1])), int(canvas.columns(scene.goal[0]))
        arm = np.arange(-9, 10)
        cross_rows = np.concatenate([row + arm, np.full(arm.size, row)])
        canvas.dots(cross_rows, np.concatenate([np.full(arm.size, col), col + arm]), GOAL, 3)
    if learner is not None:
        canvas.dots(canvas.rows(learner[1:2]), canvas.columns(learner[0:1]), LEARNER, 7)
    if scene.walls:
        canvas.border(WALL, 4)
    else:
        canvas.border(CLOCK, 1)
    canvas.clock(scene.time)
    return canvas.pixels


def draw_scene(scene: Scene, learner: np.ndarray | None = None) -> np.ndarray:
    """The ``H x W x 3`` uint8 frame of ``scene``; ``learner`` (the representative agent's histogrammed
    value, data units) is drawn in red: a triangle under a histogram, a square in the plane."""
    if isinstance(scene, HistogramScene):
        return _draw_histogram(scene, learner)
    return _draw_plane(scene, learner)


# --------------------------------------------------------------------------- front-end support
def display_available() -> bool:
    """Whether a window can open: a display server (Linux) and an interactive matplotlib backend."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import matplotlib

    return matplotlib.get_backend().lower() not in NON_INTERACTIVE_BACKENDS


class Renderer:
    """What every front end shares: ``render_mode`` validation, frames, and the window of ``"human"`` mode.

    ``"human"`` without a display warns once here and then renders nothing (see the module docstring).
    """

    def __init__(self, render_mode: str | None, modes: list[str], fps: int) -> None:
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be one of {[*modes, None]}, got {render_mode!r}")
        self.render_mode, self.fps = render_mode, fps
        self.window_enabled = render_mode == "human" and display_available()
        if render_mode == "human" and not self.window_enabled:
            warnings.warn(
                "render_mode='human' needs a display and an interactive matplotlib backend; none found, so frames"
                " will not be shown (use render_mode='rgb_array' to get them as arrays)",
                UserWarning,
                stacklevel=3,
            )
        self._figure: Any = None
        self._image: Any = None

    def render(self, population: Population, learner_index: int | None = None) -> np.ndarray | None:
        """The frame (``rgb_array``), or ``None`` after showing it in the window (``human``)."""
        if self.render_mode is None or (self.render_mode == "human" and not self.window_enabled):
            return None
        if population.states.shape[0] == 0:
            raise RuntimeError("call reset() before render(): there is no population yet")
        learner = None
        if learner_index is not None:
            index = slice(learner_index, learner_index + 1)
            actions = None if population.last_actions is None else population.last_actions[index]
            values = population.model.histogram_values(population.states[index], actions)
            learner = None if values is None else values[0]
        frame = draw_scene(scene_of(population), learner)
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        if self._figure is None or not plt.fignum_exists(self._figure.number):
            self._figure = plt.figure("mfg_envs", figsize=(frame.shape[1] / 100, frame.shape[0] / 100))
            axes = self._figure.add_axes((0, 0, 1, 1))
            axes.set_axis_off()
            self._image = axes.imshow(frame)
        else:
            self._image.set_data(frame)
        plt.pause(1.0 / self.fps)

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = None
