"""Exploration noise (docs/design.md, "Exploration noise"): ``a_t = mu_theta(s_t, m_t) + N_t``.

``N_t`` is an Ornstein-Uhlenbeck process (SB3's, ``theta = 0.15``, ``sigma = 0.2``) or Gaussian
noise whose scale decays from ``sigma = 0.1`` (:class:`DecayingGaussianActionNoise`). Both are SB3
``ActionNoise`` objects: pass them as ``action_noise=`` to TD3, DDPG, SAC and their mean-field
subclasses, or build them with :func:`make_action_noise`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
from numpy.typing import DTypeLike
from stable_baselines3.common.noise import (
    ActionNoise,
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
    VectorizedActionNoise,
)

from mfg_envs.core import check_int, check_real

NOISE_SCHEDULES = ("linear", "exponential")
NOISE_TYPES = ("ornstein-uhlenbeck", "normal", "decaying-normal")


def _check_scale(name: str, value: float | np.ndarray, shape: tuple[int, ...], positive: bool) -> np.ndarray:
    """``value`` broadcast to ``shape``, every entry finite and ``>= 0`` (``> 0`` when ``positive``)."""
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=float), shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or an array broadcastable to {shape}, got {value!r}") from None
    for x in arr.flat:
        check_real(name, x, 0.0, low_open=positive)
    return arr


class DecayingGaussianActionNoise(ActionNoise):
    """Gaussian action noise whose standard deviation decays with the number of draws.

    ``N_j ~ N(mean, sigma_j^2)`` at the ``j``-th call (one call per env step), with
    ``u = min(j / decay_steps, 1)`` and

    - ``schedule="linear"``: ``sigma_j = sigma + (final_sigma - sigma) u``;
    - ``schedule="exponential"``: ``sigma_j = sigma (final_sigma / sigma)^u`` (both scales ``> 0``).

    The noise has no per-episode state: :meth:`reset`, which SB3 calls at the end of every
    episode, leaves the schedule where it is. Draws use ``np.random`` like SB3's noises, so the
    algorithm's ``seed`` makes them reproducible.

    :param mean: mean of the noise, shape ``(d_a,)`` (or ``(n_envs, d_a)`` for one batched draw).
    :param sigma: initial standard deviation ``sigma_0 >= 0`` (scalar or broadcastable to ``mean``).
    :param final_sigma: standard deviation reached after ``decay_steps`` calls, ``>= 0``.
    :param decay_steps: number of calls over which ``sigma`` decays, ``>= 1``.
    :param schedule: ``"linear"`` or ``"exponential"``.
    :param dtype: type of the output noise.
    """

    def __init__(
        self,
        mean: np.ndarray,
        sigma: float | np.ndarray = 0.1,
        final_sigma: float | np.ndarray = 0.01,
        decay_steps: int = 100_000,
        schedule: str = "linear",
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        if schedule not in NOISE_SCHEDULES:
            raise ValueError(f"schedule must be one of {NOISE_SCHEDULES}, got {schedule!r}")
        self._mu = np.asarray(mean, dtype=float)
        positive = schedule == "exponential"
        self.initial_sigma = _check_scale("sigma", sigma, self._mu.shape, positive)
        self.final_sigma = _check_scale("final_sigma", final_sigma, self._mu.shape, positive)
        self.decay_steps = check_int("decay_steps", decay_steps)
        self.schedule = schedule
        self.n_calls = 0
        self._dtype = dtype

    @property
    def sigma(self) -> np.ndarray:
        """Standard deviation of the next draw."""
        progress = min(self.n_calls / self.decay_steps, 1.0)
        if self.schedule == "linear":
            return self.initial_sigma + (self.final_sigma - self.initial_sigma) * progress
        return self.initial_sigma * (self.final_sigma / self.initial_sigma) ** progress

    def __call__(self) -> np.ndarray:
        noise = np.random.normal(self._mu, self.sigma).astype(self._dtype)
        self.n_calls += 1
        return noise

    def with_batch(self, n_envs: int) -> DecayingGaussianActionNoise:
        """A copy (same schedule position) whose every draw has ``n_envs`` rows."""
        batched = copy.copy(self)
        shape = (check_int("n_envs", n_envs), *self._mu.shape)
        batched._mu = np.broadcast_to(self._mu, shape)
        batched.initial_sigma = np.broadcast_to(self.initial_sigma, shape)
        batched.final_sigma = np.broadcast_to(self.final_sigma, shape)
        return batched

    def __repr__(self) -> str:
        return (
            f"DecayingGaussianActionNoise(mu={self._mu}, sigma={self.initial_sigma} -> {self.final_sigma}, "
            f"decay_steps={self.decay_steps}, schedule={self.schedule!r}, n_calls={self.n_calls})"
        )


class VectorizedDecayingGaussianActionNoise(VectorizedActionNoise):
    """:class:`DecayingGaussianActionNoise` for ``n_envs`` envs in one draw of shape ``(n_envs, d_a)``.

    Off-policy algorithms wrap any other noise in a ``VectorizedActionNoise`` of ``n_envs`` deep
    copies that are called one by one at every step, ``n_envs`` Python calls (a thousand with a
    self-play population); as a ``VectorizedActionNoise`` this class is used as it is. All rows
    share one schedule, which advances by one per call, as each copy's would.

    :param base_noise: the single-env noise (its mean of shape ``(d_a,)``).
    :param n_envs: number of parallel envs ``>= 1``.
    """

    def __init__(self, base_noise: DecayingGaussianActionNoise, n_envs: int) -> None:
        # VectorizedActionNoise.__init__ would build the n_envs deep copies that this class avoids
        if not isinstance(base_noise, DecayingGaussianActionNoise):
            raise ValueError(f"base_noise must be a DecayingGaussianActionNoise, got {type(base_noise).__name__}")
        self.n_envs = check_int("n_envs", n_envs)
        self.base_noise = base_noise
        self.batched_noise = base_noise.with_batch(self.n_envs)

    def __call__(self) -> np.ndarray:
        return self.batched_noise()

    def reset(self, indices: Iterable[int] | None = None) -> None:
        """Nothing to reset: the Gaussian has no per-episode state (the schedule keeps going)."""

    def __repr__(self) -> str:
        return f"VectorizedDecayingGaussianActionNoise({self.batched_noise!r}, n_envs={self.n_envs})"


def make_action_noise(
    noise_type: str,
    action_dim: int,
    n_envs: int = 1,
    sigma: float | None = None,
    theta: float = 0.15,
    final_sigma: float = 0.01,
    decay_steps: int = 100_000,
    schedule: str = "linear",
) -> ActionNoise:
    """Exploration noise, defaults of docs/design.md ("Default hyperparameters"), vectorized over ``n_envs`` envs.

    - ``"ornstein-uhlenbeck"``: ``dX = theta (0 - X) dt + sigma dW`` with ``theta = 0.15``,
      ``sigma = 0.2`` (SB3's process, its ``dt = 0.01``, as rl_zoo3's ``noise_type``);
    - ``"normal"``: ``N(0, sigma^2)`` with ``sigma = 0.1``;
    - ``"decaying-normal"``: :class:`DecayingGaussianActionNoise` from ``sigma = 0.1`` to
      ``final_sigma`` over ``decay_steps`` env steps.

    With ``n_envs > 1`` the decaying noise draws all envs at once; the others are SB3's
    ``VectorizedActionNoise`` of ``n_envs`` independent copies.
    """
    action_dim = check_int("action_dim", action_dim)
    n_envs = check_int("n_envs", n_envs)
    zeros = np.zeros(action_dim)
    noise: ActionNoise
    if noise_type == "ornstein-uhlenbeck":
        scale = check_real("sigma", 0.2 if sigma is None else sigma, 0.0)
        theta = check_real("theta", theta, 0.0)
        noise = OrnsteinUhlenbeckActionNoise(zeros, np.full(action_dim, scale), theta=theta)
    elif noise_type == "normal":
        noise = NormalActionNoise(zeros, np.full(action_dim, check_real("sigma", 0.1 if sigma is None else sigma, 0.0)))
    elif noise_type == "decaying-normal":
        noise = DecayingGaussianActionNoise(zeros, 0.1 if sigma is None else sigma, final_sigma, decay_steps, schedule)
        if n_envs > 1:
            return VectorizedDecayingGaussianActionNoise(noise, n_envs)
    else:
        raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    return VectorizedActionNoise(noise, n_envs) if n_envs > 1 else noise
