"""Two crowds crossing in a walled square: ``red`` and ``blue`` walk to different goals, each averse to both densities.

Each population is :class:`mfg_envs.crowd.CrowdModel` (double-integrator dynamics, wall rule, own goal, own initial
law); only the crowd term changes: population ``k`` pays ``sum_j A_kj m^j(p)``, the aversion-weighted densities of
both populations at its cell on the shared grid. No closed form: Nash gaps come from RL best responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mfg_envs.core import check_interval, check_real, check_time_grid, check_vector
from mfg_envs.crowd import CrowdModel
from mfg_envs.env import MeanFieldEnv
from mfg_envs.game import GameModel, JointMeanField, check_matrix


class CrowdGroup(CrowdModel):
    """Population ``k`` of the two-crowd game: :class:`CrowdModel` with the crowd term read from the joint mean field.

    Its own mean field is its density ``m^k = hist^k / cell area`` (inherited); its reward is
    ``-||s - s_goal^k|| - l1 ||a|| - sum_j A_kj m^j(p)`` with ``aversion = (A_k1, ..., A_kK)`` (row ``k`` of ``A``).
    The inherited reward weighs one density by ``crowd_aversion``; here that density is already the
    aversion-weighted sum, so ``crowd_aversion`` is 1.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        aversion: np.ndarray,
        horizon: float,
        n_steps: int,
        sigma: float,
        goal: np.ndarray,
        action_cost: float,
        init_mean: np.ndarray,
        init_var: np.ndarray,
        action_bound: float,
        domain: tuple[float, float],
        n_bins: int,
    ) -> None:
        super().__init__(
            horizon=horizon,
            n_steps=n_steps,
            sigma=sigma,
            goal=goal,
            action_cost=action_cost,
            crowd_aversion=1.0,
            init_mean=init_mean,
            init_var=init_var,
            action_bound=action_bound,
            domain=domain,
            n_bins=n_bins,
        )
        self.names, self.aversion = names, aversion

    def crowd_cost(self, mean_field: JointMeanField) -> np.ndarray:
        """``sum_j A_kj m^j`` per cell: the weighted densities summed on the grid (one ``n_bins**2`` array), read at
        every particle's cell by :meth:`CrowdModel.reward`."""
        return sum(weight * mean_field[name]["density"] for name, weight in zip(self.names, self.aversion))


def check_vectors(name: str, value: Any, names: tuple[str, ...], size: int, low: float = -np.inf) -> list[np.ndarray]:
    """One vector of ``size`` finite reals ``>= low`` per population (``ValueError`` naming ``name`` or ``name[k]``)."""
    try:
        entries = None if isinstance(value, (str, bytes)) else list(value)
    except TypeError:
        entries = None
    if entries is None or len(entries) != len(names):
        raise ValueError(f"{name} must hold one sequence of {size} finite reals per population {names}, got {value!r}")
    return [check_vector(f"{name}[{k}]", entry, size, low) for k, entry in enumerate(entries)]


class CrowdMultiModel(GameModel):
    """Two crowds, ``red`` and ``blue``, on one walled square: own goals and initial laws, shared dynamics and grid.

    Population ``k`` follows :class:`CrowdModel`'s dynamics and wall rule and is paid
    ``r^k = -||s - s_goal^k|| - l1 ||a|| - sum_j A_kj m^j(p)``, ``m^j`` the density of population ``j``
    (histogram mass / cell area) at the agent's cell. No exact equilibrium or best response.
    """

    names = ("red", "blue")

    def __init__(
        self,
        horizon: float = 4.0,
        n_steps: int = 40,
        sigma: float = 0.3,
        goal: Sequence[Sequence[float]] = ((1.0, 0.0), (-1.0, 0.0)),
        action_cost: float = 0.1,
        aversion: Sequence[Sequence[float]] = ((0.1, 0.1), (0.1, 0.1)),
        init_mean: Sequence[Sequence[float]] = ((-1.0, 0.5, 0.0, 0.0), (1.0, -0.5, 0.0, 0.0)),
        init_var: Sequence[Sequence[float]] = ((0.02, 0.02, 0.01, 0.01), (0.02, 0.02, 0.01, 0.01)),
        action_bound: float = 2.0,
        domain: tuple[float, float] = (-2.0, 2.0),
        n_bins: int = 20,
    ) -> None:
        names = self.names
        horizon, n_steps = check_time_grid(horizon, n_steps)
        low, high = check_interval("domain", domain)
        goals = check_vectors("goal", goal, names, 2)
        for k, point in enumerate(goals):
            for i, coordinate in enumerate(point):
                check_real(f"goal[{k}][{i}]", coordinate, low, high)
        means = check_vectors("init_mean", init_mean, names, 4)
        variances = check_vectors("init_var", init_var, names, 4, 0.0)
        weights = check_matrix("aversion", aversion, len(names))
        for (k, j), weight in np.ndenumerate(weights):
            check_real(f"aversion[{k}][{j}]", weight, 0.0)
        # sigma, action_cost, action_bound, n_bins (shared) are validated by CrowdModel under their own names
        self.populations = tuple(
            CrowdGroup(
                names, weights[k], horizon, n_steps, sigma, goals[k], action_cost,
                means[k], variances[k], action_bound, (low, high), n_bins,
            )
            for k in range(len(names))
        )  # fmt: skip
        self.aversion = weights


class CrowdMultiEnv(MeanFieldEnv):
    r"""## Description

    Two crowds, ``red`` and ``blue``, cross a walled square toward different goals; every agent pays for the
    density of both crowds at its position, weighted by an aversion matrix ``A``. The learner is particle 0 of
    ``learner_population``. No closed-form equilibrium: Nash gaps come from RL best responses. Each
    population has ``MFGCrowd-v0``'s dynamics: per axis, with ``dt = T / N`` and ``xi_n ~ N(0, 1)`` one draw
    per axis and particle,

    ``v_{n+1} = v_n + dt a_n + sigma sqrt(dt) xi_n``,  ``p_{n+1} = p_n + dt v_{n+1}``,

    then the wall rule on ``domain^2``: a particle that would leave is stopped at the wall and its velocity
    component into the wall is set to 0, so positions always stay inside. At the defaults ``red`` starts near
    ``(-1, 0.5)`` and walks to ``(1, 0)``, ``blue`` starts near ``(1, -0.5)`` and walks to ``(-1, 0)``: the
    crowds must cross. With ``aversion = diag(l2_red, l2_blue)`` the crowds ignore each other and each is an
    ``MFGCrowd-v0`` crowd.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``, rescaled to the acceleration ``a = action_bound * action``.

    | Num | Action                 | Min | Max |
    |-----|------------------------|-----|-----|
    | 0   | ``a_x / action_bound`` | -1  | 1   |
    | 1   | ``a_y / action_bound`` | -1  | 1   |

    ## Observation Space

    ``Dict``:

    | Key          | Shape            | Meaning                                                                  |
    |--------------|------------------|--------------------------------------------------------------------------|
    | `state`      | (4,)             | own ``(x, y, vx, vy)``, positions in ``domain``                          |
    | `population` | (2 * n_bins**2,) | ``red``'s then ``blue``'s histogram of ``(x, y)`` on ``domain^2``        |
    | `time`       | (1,)             | ``t_n / T``                                                              |

    Each histogram has ``n_bins**2`` cells flattened in C order (``x`` slowest) and sums to 1.

    ## Rewards

    For an agent of population ``k``:

    ``r^k_n = -||s_n - s_goal^k|| - l1 ||a_n|| - sum_j A_kj m^j_n(p_n)``,  ``s_goal^k = (g^k_x, g^k_y, 0, 0)``

    (Euclidean norms, the first over position and velocity), ``m^j_n(p)`` = histogram mass of population ``j``
    in the cell holding ``p`` divided by the cell area (the observation's grid, shared by both populations).
    No ``dt`` factor and no terminal reward.

    ## Starting State

    ``(x, y, vx, vy) ~ N(init_mean[k], diag(init_var[k]))`` for every particle of population ``k``, then the
    wall rule.

    ## Episode End

    Terminates after ``n_steps`` steps. No truncation.

    ## Arguments

    Per-population values are pairs ``(red, blue)``; ``aversion`` has one row per population.

    | keyword | symbol | default |
    |---|---|---|
    | `horizon` | T > 0 | 4.0 |
    | `n_steps` | N | 40 |
    | `sigma` | sigma >= 0 (both populations) | 0.3 |
    | `goal` | g^k, inside ``domain^2`` | ((1.0, 0.0), (-1.0, 0.0)) |
    | `action_cost` | l1 >= 0 (both populations) | 0.1 |
    | `aversion` | A, entries >= 0 (row k: population k's aversion to each density) | ((0.1, 0.1), (0.1, 0.1)) |
    | `init_mean` | mean of ``(x, y, vx, vy)`` per population | ((-1.0, 0.5, 0.0, 0.0), (1.0, -0.5, 0.0, 0.0)) |
    | `init_var` | variances, >= 0, per population | ((0.02, 0.02, 0.01, 0.01), (0.02, 0.02, 0.01, 0.01)) |
    | `action_bound` | a_max > 0 | 2.0 |
    | `domain` | walls ``(low, high)`` on both axes | (-2.0, 2.0) |
    | `n_bins` | histogram cells per axis | 20 |
    | `n_particles` | particles per population (int or pair) | 1000 |
    | `learner_population` | ``red`` or 0, ``blue`` or 1 | 0 |
    | `population_representation` | `histogram`, `moments` or `kde` | `histogram` |

    ## Version History

    * v0: Initial version.
    """

    model_class = CrowdMultiModel
    env_id = "MFGCrowdMulti-v0"
    # Not a ClassVar: the base class declares ``metadata`` as an (overridable) instance attribute.
    metadata: dict[str, Any] = {"render_modes": [], "render_fps": 10}  # noqa: RUF012
