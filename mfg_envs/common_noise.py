"""Best responses under common noise (``MFGLinearQuadratic-v0`` with ``common_noise > 0``).

With common noise the population mean ``m_n`` is a random process, and a best response is a feedback on it:
one recorded flow is one path, and a response to that path alone would foresee the future common shocks. The
exact method of the Nash gap (:class:`mfg_envs.nash_gap.ExactBestResponse`) asks :func:`common_noise_best_response`:

- a population policy affine in ``(x, m)`` (the equilibrium, a policy of time alone, perturbed gains, a constant):
  the exact best response on the augmented state ``(x, m, 1)``
  (:meth:`mfg_envs.linear_quadratic.LinearQuadraticModel.feedback_best_response`);
- any other policy (a trained network): a numerical best response, :func:`mean_feedback_best_response`.

The numerical best response rests on one fact of the LQ model. Against any mean process, the agent's own
dynamics are linear in ``x`` and its costs quadratic in ``x``, so its value is ``V_n(x, m) = P_n/2 x^2 +
s_n(m) x + e_n(m)``: the curvature ``P_n`` and the gain ``K_n`` do not see the population, and only the offset
``k_n(m)`` does. With ``m' = f_n(m) + sqrt(sigma0^2 dt + r_n) z`` (``z ~ N(0, 1)``) and
``S_n(m) = E s_{n+1}(m')``, minimizing the one-step cost gives, with ``al = 1 - beta dt``,

``K_n = (q + P' al) / (1 + P' dt)``, ``k_n(m) = ((beta dt P' - q kappa) m + S_n(m)) / (1 + P' dt)``,
``s_n(m) = dt (K k - q k + q kappa K m - eps kappa m) + F (P' b + S_n(m))``, ``F = al - dt K``,
``b = beta dt m - dt k``, ``P_n = dt (K^2 - 2 q K + eps) + P' F^2``, from ``P_N = c``, ``s_N(m) = -c kappa_T m``.

The drift ``f_n`` of the mean is measured, not assumed: ``n_episodes`` episodes of the population playing the
policy record ``m_n`` and the common shocks, and ``f_n`` is the least-squares quadratic in ``m_n`` of
``m_{n+1} - sigma0 sqrt(dt) xi0_n`` (residual variance ``r_n``). ``s_n`` lives on a grid of ``m`` and ``S_n`` is a
Gauss-Hermite expectation. The best response is a policy of ``(x, m)`` only: where the population's law matters
beyond its mean (a policy far from affine in ``x``), the gap it finds is a lower bound. On policies affine in
``(x, m)``, where the exact answer is known, it agrees with it (docs/population_aware.md gives the measured error).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfg_envs.core import ConstantPolicy, MeanFieldModel, PopulationPolicy, check_int
from mfg_envs.equilibrium import AffinePolicy, observed_means
from mfg_envs.game import Game

#: Seed offset of the numerical best response's own episodes: shocks never used by the replicates it is scored on.
FIT_SEED_OFFSET = 2_000_003
#: Episodes, particles per episode and grid points of the numerical best response (defaults).
FIT_EPISODES, FIT_PARTICLES, GRID_POINTS = 32, 1000, 401
#: Gauss-Hermite nodes of the expectation over the next mean.
HERMITE_NODES = 24


@dataclass(frozen=True)
class MeanFeedbackPolicy:
    """``a_n(x, m) = -K_n x - k_n(m)`` in physical units, then normalized and clipped to ``[-1, 1]``: ``gains`` are
    ``K_n`` (``(N,)``), ``offsets[n]`` the values of ``k_n`` on ``grid`` (``(N, G)``, linear interpolation, linear
    extrapolation outside), ``m`` the population mean read from the observation in ``representation``."""

    model: MeanFieldModel
    gains: np.ndarray
    grid: np.ndarray
    offsets: np.ndarray
    representation: str = "histogram"

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        states = np.asarray(obs["state"], dtype=np.float64)
        n = np.minimum(np.rint(np.asarray(obs["time"])[:, 0] * self.model.n_steps).astype(int), self.model.n_steps - 1)
        means = observed_means(obs["population"], self.model, self.representation)[:, 0]
        offsets = interpolate(self.grid, self.offsets[n], means)
        physical = -self.gains[n, None] * states - offsets[:, None]
        return np.clip(self.model.normalized_action(states, physical), -1.0, 1.0)

    def for_representation(self, representation: str) -> MeanFeedbackPolicy:
        return dataclasses.replace(self, representation=representation)


def interpolate(grid: np.ndarray, values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``values`` (on ``grid``) at ``points[i]``, linear, extrapolated linearly past the ends."""
    index = np.clip(np.searchsorted(grid, points) - 1, 0, grid.size - 2)
    weight = (points - grid[index]) / (grid[index + 1] - grid[index])
    rows = np.arange(values.shape[0]) if values.ndim == 2 else None
    low = values[rows, index] if rows is not None else values[index]
    high = values[rows, index + 1] if rows is not None else values[index + 1]
    return low + weight * (high - low)


def is_affine(policy: PopulationPolicy) -> bool:
    """Whether ``policy`` is affine in ``(x, m)``: an :class:`AffinePolicy` of one scalar state or a constant."""
    return (isinstance(policy, AffinePolicy) and policy.gains.shape[1:] == (1, 1)) or isinstance(policy, ConstantPolicy)


def common_noise_best_response(game: Game, population: int, policies: Any, seed: int) -> PopulationPolicy:
    """The best response of ``population`` to ``policies`` under common noise: exact for a policy affine in
    ``(x, m)``, else :func:`mean_feedback_best_response` on episodes seeded ``seed + FIT_SEED_OFFSET``."""
    model = game.model.populations[population]
    if len(game.names) != 1 or not hasattr(model, "feedback_best_response"):
        raise NotImplementedError(f"{type(model).__name__} has no best response under common noise")
    if policies is None:
        raise ValueError("under common noise the best response answers the population's policy: pass policies")
    policy = policies[population]
    if is_affine(policy):
        return model.feedback_best_response(policy).policy.for_representation(game.representation)
    return mean_feedback_best_response(game, policy, seed + FIT_SEED_OFFSET)


def mean_paths(game: Game, policy: PopulationPolicy, n_episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E, N+1)`` population means and ``(E, N)`` common shocks of ``n_episodes`` episodes of ``game``'s population
    playing ``policy`` (episode ``e`` seeded ``seed + e``)."""
    member, model = game.members[0], game.members[0].model
    means, shocks = np.empty((n_episodes, model.n_steps + 1)), np.empty((n_episodes, model.n_steps))
    for episode in range(n_episodes):  # a loop over episodes; each step moves every particle at once
        rng = np.random.default_rng(seed + episode)
        game.reset([rng])
        means[episode, 0] = member.states[:, 0].mean()
        while not game.done:
            n, noise = game.step_index, model.noise(member.n_particles, rng)
            game.step([policy(game.observation(0))], [noise])
            means[episode, n + 1], shocks[episode, n] = member.states[:, 0].mean(), noise[0, 1]
    return means, shocks


def fit_mean_drift(model: Any, means: np.ndarray, shocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the quadratic ``f_n(m) = c0 + c1 m + c2 m^2`` fitted to ``m_{n+1} - sigma0 sqrt(dt) xi0_n`` over the
    episodes (``(N, 3)`` coefficients) and the residual variance ``r_n`` (``(N,)``)."""
    drifted = means[:, 1:] - model.common_noise * np.sqrt(model.dt) * shocks
    coefficients, residuals = np.empty((model.n_steps, 3)), np.empty(model.n_steps)
    for n in range(model.n_steps):  # a loop over time steps
        design = np.column_stack([np.ones(len(means)), means[:, n], means[:, n] ** 2])
        coefficients[n] = np.linalg.lstsq(design, drifted[:, n], rcond=None)[0]
        residuals[n] = np.mean((design @ coefficients[n] - drifted[:, n]) ** 2) * len(means) / max(len(means) - 3, 1)
    return coefficients, residuals


def mean_feedback_best_response(
    game: Game,
    policy: PopulationPolicy,
    seed: int,
    n_episodes: int = FIT_EPISODES,
    n_particles: int = FIT_PARTICLES,
    grid_points: int = GRID_POINTS,
) -> MeanFeedbackPolicy:
    """The numerical best response of the module docstring to the population playing ``policy``: ``n_episodes``
    episodes of ``n_particles`` particles fit the mean's drift, ``grid_points`` grid points carry ``s_n(m)``."""
    n_episodes, grid_points = check_int("n_episodes", n_episodes, 4), check_int("grid_points", grid_points, 3)
    model: Any = game.members[0].model  # a LinearQuadraticModel (its coefficients are read below)
    means, shocks = mean_paths(game.clone(check_int("n_particles", n_particles)), policy, n_episodes, seed)
    drift, residual = fit_mean_drift(model, means, shocks)
    spread = 4.0 * (means.std() + model.common_noise * np.sqrt(model.horizon)) + 1.0
    grid = np.linspace(means.min() - spread, means.max() + spread, grid_points)
    nodes, weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
    weights = weights / weights.sum()
    dt, beta, q, eps, kappa = model.dt, model.mean_reversion, model.cross_cost, model.running_cost, model.kappa
    al = 1.0 - beta * dt
    P, s = model.terminal_cost, -model.terminal_cost * model.kappa_terminal * grid
    gains, offsets = np.empty(model.n_steps), np.empty((model.n_steps, grid_points))
    for n in reversed(range(model.n_steps)):  # a loop over time steps; every grid point at once
        centre = drift[n, 0] + drift[n, 1] * grid + drift[n, 2] * grid**2
        scale = np.sqrt(model.common_noise**2 * dt + residual[n])
        following = centre[:, None] + scale * nodes[None, :]
        expected = interpolate(grid, s, following.ravel()).reshape(following.shape) @ weights
        K = (q + P * al) / (1.0 + P * dt)
        k = ((beta * dt * P - q * kappa) * grid + expected) / (1.0 + P * dt)
        F, b = al - dt * K, beta * dt * grid - dt * k
        s = dt * (K * k - q * k + q * kappa * K * grid - eps * kappa * grid) + F * (P * b + expected)
        P = dt * (K**2 - 2.0 * q * K + eps) + P * F**2
        gains[n], offsets[n] = K, k
    return MeanFeedbackPolicy(model, gains, grid, offsets, game.representation)
