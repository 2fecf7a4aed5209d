"""Exact equilibria, exact best responses and the exact Nash gap (exploitability).

Model-specific solvers live in each model family's module as the methods
:meth:`MeanFieldModel.solve_equilibrium` and :meth:`MeanFieldModel.best_response`; this module holds
what they share: the result types, the affine feedback policy they return, and the Nash gap

``gap(pi) = J(pi; mu^pi) - min_pi' J(pi'; mu^pi) >= 0``  (in costs; here in returns: ``R(BR) - R(pi)``)

estimated with common random numbers: the population playing ``pi`` and a ghost cohort playing
the exact best response start from the same initial states and receive the same noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from mfg_envs.core import (
    ConstantPolicy,
    MeanField,
    MeanFieldModel,
    Population,
    PopulationFlow,
    PopulationPolicy,
    gaussian_smoothing,
    rollout,
)

_erf = np.vectorize(math.erf, otypes=[float])


def normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Standard normal CDF ``Phi(z) = (1 + erf(z / sqrt 2)) / 2`` (elementwise)."""
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype=float) / math.sqrt(2.0)))


def gaussian_histogram(mean: float, var: float, bounds: tuple[float, float], n_bins: int) -> np.ndarray:
    """Cell probabilities of ``N(mean, var)`` on ``n_bins`` regular cells of ``bounds``; edge cells take the tails."""
    edges = np.linspace(bounds[0], bounds[1], n_bins + 1)[1:-1]
    cdf = (edges >= mean).astype(float) if var <= 0.0 else normal_cdf((edges - mean) / math.sqrt(var))
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


@dataclass(frozen=True)
class ScalarLQ:
    """Frozen-flow scalar LQ control problem (arrays over steps ``n = 0..N-1``).

    ``x' = A_n x + B a + d_n + sigma sqrt(dt) xi``, stage cost
    ``dt [R/2 a^2 + Qx_n/2 x^2 + Sx a x + qx_n x + ra_n a + c_n]``, terminal ``QT/2 x^2 + qT x + cT``.
    """

    A: np.ndarray
    B: float
    d: np.ndarray
    sigma: float
    dt: float
    R: float
    Qx: np.ndarray
    Sx: float
    qx: np.ndarray
    ra: np.ndarray
    c: np.ndarray
    QT: float
    qT: float
    cT: float

    def solve(
        self, gains: np.ndarray | None = None, offsets: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Backward recursion for ``V_n(x) = P_n/2 x^2 + s_n x + e_n``.

        With ``gains``/``offsets`` ``None`` it returns the best response ``a = -K_n x - k_n``:
        ``H = dt R + P' B^2``, ``K_n = (dt Sx + P' A B)/H``, ``k_n = (dt ra + P' B d + s' B)/H``; with
        them given it evaluates that affine policy. Returns ``(K, k, P_0, s_0, e_0)``.
        """
        n_steps, dt, B = len(self.A), self.dt, self.B
        P, s, e = self.QT, self.qT, self.cT
        K = np.empty(n_steps) if gains is None else np.asarray(gains, dtype=float)
        k = np.empty(n_steps) if offsets is None else np.asarray(offsets, dtype=float)
        for n in reversed(range(n_steps)):
            A, d = self.A[n], self.d[n]
            if gains is None:
                H = dt * self.R + P * B**2
                if H <= 0.0:
                    raise ValueError("the best response is ill-posed: dt R + P' B^2 <= 0")
                K[n] = (dt * self.Sx + P * A * B) / H
                k[n] = (dt * self.ra[n] + P * B * d + s * B) / H
            Acl, b = A - B * K[n], d - B * k[n]
            e = (
                dt * (0.5 * self.R * k[n] ** 2 - self.ra[n] * k[n] + self.c[n])
                + 0.5 * P * b**2
                + s * b
                + 0.5 * P * self.sigma**2 * dt
                + e
            )
            s = dt * (self.R * K[n] * k[n] - self.Sx * k[n] + self.qx[n] - self.ra[n] * K[n]) + Acl * (P * b + s)
            P = dt * (self.R * K[n] ** 2 - 2 * self.Sx * K[n] + self.Qx[n]) + P * Acl**2
        return K, k, P, s, e

    @staticmethod
    def expected_value(P0: float, s0: float, e0: float, mean: float, var: float) -> float:
        """``E[V_0(x_0)] = P_0/2 (v_0 + m_0^2) + s_0 m_0 + e_0`` for ``x_0`` with mean ``m_0``, variance ``v_0``."""
        return 0.5 * P0 * (var + mean**2) + s0 * mean + e0


@dataclass(frozen=True)
class AffinePolicy:
    """Time-dependent affine feedback in physical units, ``a_n(s) = -K_n s - k_n``, then normalized.

    ``gains`` is ``(N, d_a, d_s)``, ``offsets`` ``(N, d_a)``; the step ``n`` is read from the
    observation's ``time = n / N``. The output is clipped to the normalized box ``[-1, 1]``.
    """

    model: MeanFieldModel
    gains: np.ndarray
    offsets: np.ndarray

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs["state"], dtype=np.float64)
        n = np.minimum(np.rint(np.asarray(obs["time"])[:, 0] * self.model.n_steps).astype(int), self.model.n_steps - 1)
        physical = -np.einsum("nij,nj->ni", self.gains[n], states) - self.offsets[n]
        return np.clip(self.model.normalized_action(states, physical), -1.0, 1.0)


@dataclass(frozen=True)
class Equilibrium:
    """The exact mean field equilibrium of a model.

    ``policy`` maps batched observations to normalized actions (usable as a population policy);
    ``expected_return = -J*``; ``mean_fields[n]`` are the exact statistics of the equilibrium flow
    (``n = 0..N``) and ``histograms[n]`` the exact law of the histogrammed quantity on the env's grid.
    """

    policy: AffinePolicy
    expected_return: float
    mean_fields: tuple[MeanField, ...]
    histograms: np.ndarray

    @property
    def flow(self) -> PopulationFlow:
        """The equilibrium flow in the ``histogram`` representation (for ``set_population_flow``)."""
        return PopulationFlow(self.histograms.astype(np.float32), self.mean_fields)


@dataclass(frozen=True)
class BestResponse:
    """The exact best response to a frozen flow and its expected return from the initial law."""

    policy: AffinePolicy
    expected_return: float


@dataclass(frozen=True)
class NashGap:
    """``gap = best_response_return - policy_return`` with its Monte Carlo standard error."""

    gap: float
    standard_error: float
    policy_return: float
    best_response_return: float
    relative_gap: float = float("nan")


def _model_of(env: Any) -> tuple[MeanFieldModel, Population]:
    unwrapped = env.unwrapped if isinstance(env, gym.Env) else env
    if not hasattr(unwrapped, "population"):
        raise ValueError(f"env must be an mfg_envs environment, got {type(unwrapped).__name__}")
    return unwrapped.population.model, unwrapped.population


def solve_equilibrium(env: Any) -> Equilibrium:
    """The exact equilibrium of ``env`` (a ``gym.make`` env, wrappers included, or a front end)."""
    model, _ = _model_of(env)
    return model.solve_equilibrium()


def flow_in_representation(equilibrium: Equilibrium, population: Population) -> PopulationFlow:
    """The equilibrium flow with its population entry in ``population``'s representation."""
    model = population.model
    n_dims = model.histogram_bounds.shape[0]
    if population.representation == "histogram":
        features = equilibrium.histograms
    elif population.representation == "kde":
        features = np.stack(
            [gaussian_smoothing(h, n_dims, model.n_bins, population.kde_bandwidth) for h in equilibrium.histograms]
        )
    else:  # moments of the binned exact law, per axis
        edges = [np.linspace(lo, hi, model.n_bins + 1) for lo, hi in model.histogram_bounds]
        centers = [0.5 * (e[1:] + e[:-1]) for e in edges]
        grids = np.meshgrid(*centers, indexing="ij")
        rows = []
        for h in equilibrium.histograms:
            w = h.reshape((model.n_bins,) * n_dims)
            means = [float((w * g).sum()) for g in grids]
            stds = [float(np.sqrt(max((w * (g - m) ** 2).sum(), 0.0))) for g, m in zip(grids, means)]
            rows.append(np.array(means + stds))
        features = np.stack(rows)
    return PopulationFlow(features.astype(np.float32), equilibrium.mean_fields)


def exact_nash_gap(
    env: Any, policy: PopulationPolicy, n_particles: int = 10_000, seed: int = 0, relative: bool = True
) -> NashGap:
    """Exact Nash gap of ``policy`` on ``env`` with common random numbers.

    1. ``n_particles`` particles play ``policy``; their empirical flow ``mu^pi`` is recorded and
       their mean return is ``R(pi; mu^pi)``.
    2. The exact best response to ``mu^pi`` is solved (:meth:`MeanFieldModel.best_response`).
    3. A ghost cohort of the same size, seeded identically (same initial states, same noise),
       plays the best response against the frozen ``mu^pi``.

    ``relative=True`` also divides by the gap of the neutral policy (normalized action 0).
    """
    model, template = _model_of(env)
    population = Population(model, n_particles, template.representation, template.kde_bandwidth)
    flow, policy_returns = rollout(population, policy, np.random.default_rng(seed))
    best = model.best_response(flow)
    ghosts = Population(model, n_particles, template.representation, template.kde_bandwidth)
    ghosts.flow = flow
    _, best_returns = rollout(ghosts, best.policy, np.random.default_rng(seed))
    diff = best_returns - policy_returns
    result = NashGap(
        gap=float(diff.mean()),
        standard_error=float(diff.std(ddof=1) / np.sqrt(n_particles)),
        policy_return=float(policy_returns.mean()),
        best_response_return=float(best_returns.mean()),
    )
    if not relative:
        return result
    neutral = exact_nash_gap(env, ConstantPolicy(np.zeros(model.action_dim)), n_particles, seed, relative=False)
    return NashGap(**{**result.__dict__, "relative_gap": result.gap / neutral.gap})
