"""Exact equilibria and exact best responses: the pieces the exactly solvable models share.

Model-specific solvers live in each model family's module as the methods ``solve_equilibrium()`` and
``best_response(flow)`` (a game: ``best_response(population, flows)``); a model or game that defines
them is exactly solvable (:func:`mfg_envs.game.exactly_solvable`). This module holds the result types,
the affine feedback policy they return, the generic scalar LQ recursion and :func:`solve_equilibrium`.
The exact Nash gap is :func:`mfg_envs.nash_gap.exact_nash_gap`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mfg_envs.core import (
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    PopulationPolicy,
    gaussian_smoothing,
    histogram,
    histogram_moments,
    population_of,
)
from mfg_envs.game import exactly_solvable, game_of, model_name

_erf = np.vectorize(math.erf, otypes=[float])


def normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Standard normal CDF ``Phi(z) = (1 + erf(z / sqrt 2)) / 2`` (elementwise)."""
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype=float) / math.sqrt(2.0)))


@dataclass(frozen=True)
class ScalarLQSolution:
    """Cost-to-go ``V_n(x) = P_n/2 x^2 + s_n x + e_n`` (``n = 0..N``) of the policy ``a_n = -K_n x - k_n``.

    ``gains`` and ``offsets`` are ``K_n, k_n`` (``(N,)``), ``quadratic``, ``linear``, ``constant`` are
    ``P_n, s_n, e_n`` (``(N+1,)``).
    """

    gains: np.ndarray
    offsets: np.ndarray
    quadratic: np.ndarray
    linear: np.ndarray
    constant: np.ndarray

    def expected_cost(self, mean: float, variance: float) -> float:
        """``E[V_0(x_0)] = P_0/2 (v_0 + m_0^2) + s_0 m_0 + e_0`` for ``x_0`` with mean ``m_0``, variance ``v_0``."""
        return float(0.5 * self.quadratic[0] * (variance + mean**2) + self.linear[0] * mean + self.constant[0])


def scalar_lq_best_response(
    n_steps: int,
    dt: float,
    sigma: float,
    *,
    A: float | np.ndarray,
    B: float | np.ndarray,
    drift: float | np.ndarray,
    R: float | np.ndarray,
    Qx: float | np.ndarray,
    Sx: float | np.ndarray,
    qx: float | np.ndarray,
    ra: float | np.ndarray,
    c: float | np.ndarray,
    QT: float,
    qT: float = 0.0,
    cT: float = 0.0,
    gains: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> ScalarLQSolution:
    """Backward Riccati recursion of a scalar LQ control problem (docs/models.md, "Generic scalar LQ best response").

    Dynamics ``x' = A_n x + B_n a + drift_n + sigma sqrt(dt) eps``; stage cost
    ``dt [R/2 a^2 + Qx/2 x^2 + Sx a x + qx x + ra a + c]`` (per-step coefficients: scalars or ``(N,)``);
    terminal cost ``QT/2 x^2 + qT x + cT``. With ``H = dt R + P' B^2 > 0``:

    - ``K_n = (dt Sx + P' A B)/H``, ``k_n = (dt ra + P' B drift + s' B)/H`` (best response), or the given
      ``gains``/``offsets`` held fixed (then the result is the exact cost of that affine policy);
    - ``Acl = A - B K``, ``b = drift - B k``;
    - ``P_n = dt (R K^2 - 2 Sx K + Qx) + P' Acl^2``;
    - ``s_n = dt (R K k - Sx k + qx - ra K) + Acl (P' b + s')``;
    - ``e_n = dt (R/2 k^2 - ra k + c) + P'/2 b^2 + s' b + P'/2 sigma^2 dt + e'``.
    """
    A, B, drift, R, Qx, Sx, qx, ra, c = (
        np.broadcast_to(np.asarray(value, dtype=float), (n_steps,)) for value in (A, B, drift, R, Qx, Sx, qx, ra, c)
    )
    best = gains is None
    K = np.zeros(n_steps) if best else np.asarray(gains, dtype=float)
    k = np.zeros(n_steps) if best else np.asarray(offsets, dtype=float)
    if K.shape != (n_steps,) or k.shape != (n_steps,):
        raise ValueError(f"gains and offsets must both have shape ({n_steps},)")
    P, s, e = np.zeros(n_steps + 1), np.zeros(n_steps + 1), np.zeros(n_steps + 1)
    P[-1], s[-1], e[-1] = QT, qT, cT
    for n in range(n_steps - 1, -1, -1):
        P1, s1 = P[n + 1], s[n + 1]
        if best:
            H = dt * R[n] + P1 * B[n] ** 2
            if H <= 0.0:
                raise ValueError(f"scalar LQ problem is not convex at step {n}: H = dt R + P' B^2 = {H:g} <= 0")
            K[n] = (dt * Sx[n] + P1 * A[n] * B[n]) / H
            k[n] = (dt * ra[n] + P1 * B[n] * drift[n] + s1 * B[n]) / H
        closed_loop, shift = A[n] - B[n] * K[n], drift[n] - B[n] * k[n]
        P[n] = dt * (R[n] * K[n] ** 2 - 2.0 * Sx[n] * K[n] + Qx[n]) + P1 * closed_loop**2
        s[n] = dt * (R[n] * K[n] * k[n] - Sx[n] * k[n] + qx[n] - ra[n] * K[n]) + closed_loop * (P1 * shift + s1)
        e[n] = (
            dt * (0.5 * R[n] * k[n] ** 2 - ra[n] * k[n] + c[n])
            + 0.5 * P1 * (shift**2 + sigma**2 * dt)
            + s1 * shift
            + e[n + 1]
        )
    return ScalarLQSolution(K, k, P, s, e)


def gaussian_histogram(mean: float, std: float, bounds: np.ndarray, n_bins: int) -> np.ndarray:
    """Exact law of ``N(mean, std^2)`` on the 1-d env grid: ``Phi(e_{j+1}) - Phi(e_j)``, edge cells take the tails.

    ``std = 0`` is a point mass, placed in its cell exactly as :func:`mfg_envs.core.histogram` would.
    """
    if std == 0.0:
        return histogram(np.array([[mean]]), bounds, n_bins)
    inner_edges = np.linspace(bounds[0, 0], bounds[0, 1], n_bins + 1)[1:-1]
    cdf = normal_cdf((inner_edges - mean) / std)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def observed_means(features: np.ndarray, model: MeanFieldModel, representation: str) -> np.ndarray:
    """``(n, d)``: the population mean of the histogrammed quantity that each observation's population entry
    carries: its first ``d`` features in the ``moments`` representation, else the mean of the (smoothed) histogram over
    its cell centres (:func:`histogram_moments`). A step's entry broadcast to every particle is read once."""
    n_dims = model.histogram_bounds.shape[0]
    features = np.asarray(features)
    if features.ndim == 2 and features.shape[0] > 1 and features.strides[0] == 0:
        return np.broadcast_to(observed_means(features[:1], model, representation), (features.shape[0], n_dims))
    if representation == "moments":
        return features[:, :n_dims].astype(np.float64)
    return histogram_moments(features.astype(np.float64), model.histogram_bounds, model.n_bins)[0]


@dataclass(frozen=True)
class AffinePolicy:
    """Time-dependent affine feedback in physical units, ``a_n(s, m) = -K_n s - C_n m_n - k_n``, then normalized.

    ``gains`` is ``(N, d_a, d_s)``, ``offsets`` ``(N, d_a)``; the step ``n`` is read from the
    observation's ``time = n / N``. ``population_gains`` (``(N, d_a, d)``, default none: a policy of time and own
    state only) multiply the population mean ``m_n`` of the histogrammed quantity (``d`` its dimension), read from
    the observation's population entry of a single population: the first ``d`` features in the ``moments``
    representation, else the mean of the (smoothed) histogram over its cell centres (:func:`histogram_moments`).
    ``representation`` names the observation's representation (``solve_equilibrium(env)`` sets the env's).
    The output is clipped to the normalized box ``[-1, 1]``.
    """

    model: MeanFieldModel
    gains: np.ndarray
    offsets: np.ndarray
    population_gains: np.ndarray | None = None
    representation: str = "histogram"

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs["state"], dtype=np.float64)
        n = np.minimum(np.rint(np.asarray(obs["time"])[:, 0] * self.model.n_steps).astype(int), self.model.n_steps - 1)
        physical = -np.einsum("nij,nj->ni", self.gains[n], states) - self.offsets[n]
        if self.population_gains is not None:
            physical -= np.einsum("nij,nj->ni", self.population_gains[n], self.population_means(obs["population"]))
        return np.clip(self.model.normalized_action(states, physical), -1.0, 1.0)

    def population_means(self, features: np.ndarray) -> np.ndarray:
        """``(n, d)``: the population mean ``m_n`` each observation's population entry carries."""
        return observed_means(features, self.model, self.representation)

    def for_representation(self, representation: str) -> AffinePolicy:
        """This policy reading the population mean from observations in ``representation``."""
        return dataclasses.replace(self, representation=representation)


@dataclass(frozen=True)
class Equilibrium:
    """The exact mean field equilibrium of a model.

    ``policy`` maps batched observations to normalized actions (usable as a population policy; an
    :class:`AffinePolicy` for every exact solution); ``expected_return = -J*``; ``mean_fields[n]`` are the exact
    statistics of the equilibrium flow (``n = 0..N``) and ``histograms[n]`` the exact law of the histogrammed
    quantity on the env's grid. ``numerical`` is false: the subclass
    :class:`mfg_envs.crowd_equilibrium.NumericalEquilibrium` (the walled crowd's reference) sets it.
    """

    policy: PopulationPolicy
    expected_return: float
    mean_fields: tuple[MeanField, ...]
    histograms: np.ndarray
    numerical: ClassVar[bool] = False

    @property
    def flow(self) -> PopulationFlow:
        """The equilibrium flow in the ``histogram`` representation (for ``set_population_flow``)."""
        return PopulationFlow(self.histograms.astype(np.float32), self.mean_fields)

    def flow_for(self, env: Any) -> PopulationFlow:
        """The equilibrium flow in ``env``'s population representation (histogram, KDE or moments)."""
        return PopulationFlow(represent(self.histograms, population_of(env)), self.mean_fields)


def represent(histograms: np.ndarray, population: Population) -> np.ndarray:
    """Exact laws on ``population``'s grid ``(T, n_bins**d)`` as its observation features (float32): the histograms
    themselves, their KDE smoothing, or their moments (:func:`histogram_moments`, the binned law's mean and std)."""
    model = population.model
    n_dims = model.histogram_bounds.shape[0]
    if population.representation == "kde":
        features = np.stack([gaussian_smoothing(h, n_dims, model.n_bins, population.kde_bandwidth) for h in histograms])
    elif population.representation == "moments":
        means, variances = histogram_moments(histograms, model.histogram_bounds, model.n_bins)
        features = np.concatenate([means, np.sqrt(variances)], axis=1)
    else:
        features = histograms
    return features.astype(np.float32)


@dataclass(frozen=True)
class BestResponse:
    """The exact best response to a frozen flow and its expected return from the initial law."""

    policy: AffinePolicy
    expected_return: float


@dataclass(frozen=True)
class GameEquilibrium:
    """The exact equilibrium of a multi-population game: per population its policy, its return ``-J^k*`` and its
    exact flow (histograms). ``numerical`` as for :class:`Equilibrium` (the two walled crowds' reference:
    :class:`mfg_envs.crowd_equilibrium.NumericalGameEquilibrium`)."""

    names: tuple[str, ...]
    policies: tuple[PopulationPolicy, ...]
    expected_returns: tuple[float, ...]
    flows: tuple[PopulationFlow, ...]
    numerical: ClassVar[bool] = False

    def flows_for(self, env: Any) -> tuple[PopulationFlow, ...]:
        """The equilibrium flows in ``env``'s population representation (histogram, KDE or moments)."""
        members = game_of(env).members
        return tuple(PopulationFlow(represent(f.population, m), f.mean_fields) for f, m in zip(self.flows, members))


def solve_equilibrium(env: Any) -> Equilibrium | GameEquilibrium:
    """The equilibrium of ``env`` (a ``gym.make`` env, wrappers included, a front end or a core): an
    :class:`Equilibrium` for one population, a :class:`GameEquilibrium` for several.

    Exact for the exactly solvable models (:func:`mfg_envs.game.exactly_solvable`, ``numerical`` false). The walled
    crowds (``MFGCrowd-v0``, ``MFGCrowdMulti-v0``, :func:`mfg_envs.crowd_equilibrium.has_reference`) get their
    numerical reference (``numerical`` true): read from the disk cache, else computed (tens of minutes at the defaults)
    and cached (:func:`mfg_envs.crowd_equilibrium.solve_reference`). ``NotImplementedError`` for any other model.
    """
    # crowd_equilibrium builds on this module's result types: imported here, where it is used
    from mfg_envs.crowd_equilibrium import has_reference, solve_reference

    game = game_of(env)
    model = game.model
    if exactly_solvable(model):
        equilibrium = model.solve_equilibrium()  # type: ignore[attr-defined]
        policy = getattr(equilibrium, "policy", None)
        if isinstance(policy, AffinePolicy) and policy.population_gains is not None:
            equilibrium = dataclasses.replace(equilibrium, policy=policy.for_representation(game.representation))
        return equilibrium
    if has_reference(model):
        return solve_reference(model)
    raise NotImplementedError(f"{model_name(model)} has no exact equilibrium; estimate its Nash gap by RL")
