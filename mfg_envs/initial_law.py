"""Random initial laws: one initial mean ``M_0`` per episode, shared by the whole population.

A model with the keyword ``init_mean_std`` draws, at each reset, ``M_0 ~ N(init_mean, diag(init_mean_std^2))``
once for all particles, then starts every particle at ``M_0 + sqrt(init_var) * xi_i`` with its own
``xi_i ~ N(0, I)``. Given ``M_0`` the population is a fixed-initial-law population, so its flow is deterministic
(the game has no common noise after step 0); over episodes the flow is random.

``M_0`` is drawn before the particles, so a seed gives the same ``M_0`` whatever the number of particles (the
Nash gap's ghost cohorts rely on it: common random numbers). With ``init_mean_std = 0`` (every model's default)
no ``M_0`` is drawn at all, and the initial states are bit-identical to those of the fixed law.
"""

from __future__ import annotations

import numpy as np


def gaussian_start(
    n: int,
    rng: np.random.Generator,
    mean: float | np.ndarray,
    mean_std: float | np.ndarray,
    std: float | np.ndarray,
) -> np.ndarray:
    """``n`` initial values ``M_0 + std * xi_i``, shape ``(n, *shape(mean))``, around one shared ``M_0``.

    ``M_0 = mean + mean_std * xi_0`` (one draw of ``shape(mean)`` standard normals, before the particles' draw);
    ``M_0 = mean`` without any draw when every ``mean_std`` is 0. ``mean``, ``mean_std`` and ``std`` are
    elementwise (scalars or vectors of one shape).
    """
    shape = np.shape(mean)
    shared = mean + mean_std * rng.standard_normal(shape) if np.any(mean_std) else mean
    return shared + std * rng.standard_normal((n, *shape))
