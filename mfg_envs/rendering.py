"""Frames of the population for ``render_mode="rgb_array"`` (numpy only, deterministic)."""

from __future__ import annotations

import numpy as np

BACKGROUND = np.array([255, 255, 255], dtype=np.uint8)
MASS = np.array([31, 119, 180], dtype=np.uint8)
MARKER = np.array([214, 39, 40], dtype=np.uint8)


def population_frame(
    hist: np.ndarray, n_dims: int, n_bins: int, marker: np.ndarray | None = None, size: int = 256
) -> np.ndarray:
    """An ``size x size x 3`` uint8 picture of the population histogram.

    1-D: one bar per bin, height proportional to its mass (scaled to the largest bin). 2-D: a heat
    map of the cell masses (row 0 at the top is the largest second coordinate). ``marker`` holds
    fractional grid coordinates in ``[0, 1]^d`` (e.g. the representative agent) drawn in red.
    """
    frame = np.empty((size, size, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    cells = np.minimum((np.arange(size) * n_bins) // size, n_bins - 1)
    peak = hist.max() if hist.max() > 0 else 1.0
    if n_dims == 1:
        heights = np.rint(hist[cells] / peak * (size - 1)).astype(int)
        filled = np.arange(size)[:, None] >= size - heights[None, :]
        frame[filled] = MASS
    else:
        grid = (hist.reshape(n_bins, n_bins) / peak)[np.ix_(cells, cells)]
        shade = (grid.T[::-1, :, None] * (MASS.astype(float) - 255.0) + 255.0).astype(np.uint8)
        frame[:] = shade
    if marker is not None:
        col = int(np.clip(marker[0], 0, 1) * (size - 1))
        row = size - 1 - int(np.clip(marker[1], 0, 1) * (size - 1)) if n_dims == 2 else size // 2
        frame[max(row - 3, 0) : row + 4, max(col - 3, 0) : col + 4] = MARKER
    return frame
