"""What the deterministic actors' action barrier costs on the walled crowd: the Nash gap of the barrier's equilibrium.

    OMP_NUM_THREADS=1 python scripts/barrier_floor.py [--barriers 0.05 0.1 0.2] [--action-l2 0] [--n-particles 2000]
        [--max-iterations 12] [--eval-particles 10000] [--replicates 2]

MF-TD3 and MF-DDPG on the crowds maximize ``Q_1(s, mu, m) + lambda sum_j log(1 - mu_j^2)`` (normalized actions;
the shipped ``lambda`` decays from 0.2 to 0.1 over a run). An actor that maximized this exactly against its own
critic would be a best response in the game whose per-step reward carries the barrier,

``r_lambda(s, a, m) = r(s, a, m) + lambda sum_j log(1 - (a_j / a_max)^2)``,

and a population of such actors would be at that game's equilibrium. For each ``lambda`` this script computes it
as the reference solver does for the crowd itself (:func:`mfg_envs.crowd_equilibrium.fictitious_play`: dp best
responses of the barrier game to averaged flows, ``--n-particles`` particles, ``--max-iterations`` at most) and
prints its dp Nash gap in the true game (:func:`sb3_meanfield.evaluation.nash_gap`, ``method="dp"``: the best
response without the barrier, ``--eval-particles`` particles, ``--replicates`` replicates, relative to the neutral
policy's gap): the gap that the barrier alone leaves in a run that ends with that ``lambda``.

``--action-l2 kappa`` adds ``-kappa sum_j (a_j / a_max)^2`` to every row's reward: a penalty with the barrier's
curvature at 0 (``lambda log(1 - a^2) = -lambda a^2 + O(a^4)``) that does not forbid the bound, so that the rows
split what the barrier costs between its interior and its edge.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_equilibrium import ReferenceSettings, fictitious_play
from mfg_envs.game import Game
from mfg_envs.nash_gap import NashGap
from sb3_meanfield.evaluation import nash_gap
from sb3_meanfield.td3.critics import MeanFieldCritic

#: Largest ``|a_j| / a_max`` the barrier is evaluated at, the actors' own: the bound itself is finite.
EDGE = MeanFieldCritic.BARRIER_EDGE
#: The columns of the printed table, one row per ``lambda``.
COLUMNS = (
    "lambda",
    "kappa",
    "relative dp gap in the true game",
    "gap (+- s.e.)",
    "barrier game's relative gap",
    "seconds",
)


class BarrierCrowdModel(CrowdModel):
    """The walled crowd whose reward also carries ``lambda sum_j log(1 - (a_j / a_max)^2) - kappa sum_j (a_j /
    a_max)^2`` (module docstring).

    :param action_barrier: ``lambda >= 0``.
    :param action_l2: ``kappa >= 0`` (default 0); the other keywords are :class:`~mfg_envs.crowd.CrowdModel`'s.
    """

    def __init__(self, action_barrier: float, action_l2: float = 0.0, **crowd_kwargs: object) -> None:
        super().__init__(**crowd_kwargs)  # type: ignore[arg-type]
        for name, value in (("action_barrier", action_barrier), ("action_l2", action_l2)):
            if not value >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.action_barrier, self.action_l2 = float(action_barrier), float(action_l2)

    def action_reward(self, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        scaled = [np.minimum(np.abs(a) / self.action_bound, EDGE) for a in (ax, ay)]
        barrier, square = sum(np.log1p(-(a**2)) for a in scaled), sum(a**2 for a in scaled)
        return super().action_reward(ax, ay) + self.action_barrier * barrier - self.action_l2 * square


def barrier_equilibrium_gap(
    action_barrier: float, settings: ReferenceSettings, eval_particles: int, replicates: int, action_l2: float = 0.0
) -> tuple[NashGap, tuple[float, ...]]:
    """The true dp Nash gap of the barrier game's fictitious-play equilibrium on ``MFGCrowd-v0`` (defaults), and the
    iteration's relative gaps in the barrier game."""
    env = gym.make("MFGCrowd-v0")
    game = Game(BarrierCrowdModel(action_barrier, action_l2), settings.n_particles)
    best, _ = fictitious_play(game, settings)
    policy = best.policies[0]  # a DPPolicy of the barrier model: its greedy actions weigh the barrier
    gap = nash_gap(policy, env, method="dp", n_particles=eval_particles, n_replicates=replicates)
    return gap, best.relative_gaps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--barriers", nargs="+", type=float, default=[0.05, 0.1, 0.2], help="values of lambda")
    parser.add_argument("--action-l2", type=float, default=0.0, help="kappa of every row (module docstring)")
    parser.add_argument("--n-particles", type=int, default=2000, help="particles of the fictitious play")
    parser.add_argument("--max-iterations", type=int, default=12, help="fictitious-play iterations at most")
    parser.add_argument("--tolerance", type=float, default=0.01, help="stop below this relative gap (barrier game)")
    parser.add_argument("--eval-particles", type=int, default=10_000, help="particles of the true Nash gap")
    parser.add_argument("--replicates", type=int, default=2, help="replicates of the true Nash gap")
    args = parser.parse_args(argv)
    if any(not barrier >= 0.0 for barrier in args.barriers):
        parser.error(f"--barriers must be >= 0, got {args.barriers}")
    if not args.action_l2 >= 0.0:
        parser.error(f"--action-l2 must be >= 0, got {args.action_l2}")
    for name in ("max_iterations", "replicates"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(args, name)}")
    try:
        settings = ReferenceSettings(
            n_particles=args.n_particles, tolerance=args.tolerance, max_iterations=args.max_iterations
        )
    except ValueError as error:
        parser.error(str(error))
    print("| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|")
    for barrier in args.barriers:
        started = time.perf_counter()
        gap, own = barrier_equilibrium_gap(barrier, settings, args.eval_particles, args.replicates, args.action_l2)
        print(
            f"| {barrier:g} | {args.action_l2:g} | {gap.relative_gap:.4f} | {gap.gap:.3f} +- {gap.standard_error:.3f} "
            f"| {own[0]:.4f} | {time.perf_counter() - started:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
