"""The walled crowds' numerical reference equilibrium: solve it (or load it from the cache) and print its numbers.

    OMP_NUM_THREADS=1 python scripts/crowd_reference.py                     # both crowds, the default settings
    OMP_NUM_THREADS=1 python scripts/crowd_reference.py --env MFGCrowd-v0   # one of them

The default settings are ``solve_equilibrium(env)``'s, so a run fills the cache that call reads
(``$MFG_ENVS_CACHE``, default ``~/.cache/mfg_envs``; mfg_envs/crowd_equilibrium.py describes the iteration). Per
env: the one-replicate relative gaps of every fictitious-play iteration (the stopping rule's numbers), then one
markdown row per population: the dp Nash gap of the reference policy (common random numbers, ``--replicates``
replicates of ``--particles`` particles, ± one standard error), the neutral policy's dp gap, their ratio, the
Monte Carlo expected return (± one standard error) and the wall time of the solve (when it was solved).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym

import mfg_envs  # noqa: F401  (registers the env ids)
from mfg_envs.crowd_equilibrium import DEFAULT_SETTINGS, NumericalEquilibrium, ReferenceSettings, solve_reference

ENV_IDS = ("MFGCrowd-v0", "MFGCrowdMulti-v0")


def measure(env_id: str, settings: ReferenceSettings) -> tuple[list[str], list[str]]:
    """``env_id``'s reference (solved or loaded): the lines of its iteration history and its markdown rows."""
    started = time.perf_counter()
    reference = solve_reference(gym.make(env_id), settings)
    elapsed = time.perf_counter() - started
    if isinstance(reference, NumericalEquilibrium):
        returns, errors = (reference.expected_return,), (reference.standard_error,)
    else:
        returns, errors = reference.expected_returns, reference.standard_errors
    report = reference.report
    history = [f"{env_id}: {report.iterations} iterations, converged {report.converged}, this call {elapsed:.0f} s"]
    history += [
        f"  iteration {j}: relative gaps {', '.join(f'{gap:.4f}' for gap in gaps)}"
        for j, gaps in enumerate(report.history)
    ]
    table = [
        f"| {env_id} | {name} | {report.iterations} | {gap.gap:.4f} +- {gap.standard_error:.2g} | "
        f"{report.neutral_gaps[name]:.3f} | {gap.relative_gap:.5f} | {expected:.3f} +- {error:.2g} | "
        f"{report.seconds:.0f} |"
        for (name, gap), expected, error in zip(report.gap.gaps.items(), returns, errors)
    ]
    return history, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", choices=ENV_IDS, default=list(ENV_IDS))
    parser.add_argument("--particles", type=int, default=DEFAULT_SETTINGS.n_particles)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_SETTINGS.tolerance)
    parser.add_argument("--max-iterations", type=int, default=DEFAULT_SETTINGS.max_iterations)
    parser.add_argument("--replicates", type=int, default=DEFAULT_SETTINGS.n_replicates)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # the iterations as they go
    settings = ReferenceSettings(
        n_particles=args.particles,
        tolerance=args.tolerance,
        max_iterations=args.max_iterations,
        n_replicates=args.replicates,
    )
    table = [
        "| env id | population | iterations | dp gap | neutral dp gap | relative gap | expected return | solve (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id in args.env:
        history, rows = measure(env_id, settings)
        print("\n".join(history), flush=True)
        table += rows
    print("\n" + "\n".join(table))


if __name__ == "__main__":
    main()
