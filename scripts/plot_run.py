"""Write the figures of a training run folder (``python -m sb3_meanfield.train`` output) into ``<run>/figures/``.

    python scripts/plot_run.py runs/MFGLinearQuadratic-v0_td3_0_20260101-120000 [--n-particles 1000] [--seed 0]

Writes ``learning_curves.png``, ``population_flow.png`` (1-D models) or ``crowd_snapshots.png`` and
``crowd.gif`` (crowds), ``moment_flows.png`` and ``policy.png``; see
:func:`sb3_meanfield.plotting.write_run_figures`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch as th  # imported after the thread setting above

from sb3_meanfield.plotting import write_run_figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder with config.yaml, metrics.csv and model.zip")
    parser.add_argument("--n-particles", type=int, default=1000, help="particles simulated under the learned policy")
    parser.add_argument("--seed", type=int, default=0, help="seed of that simulation")
    parser.add_argument("--no-animation", action="store_true", help="skip the crowd GIF")
    args = parser.parse_args(argv)
    missing = [name for name in ("config.yaml", "metrics.csv", "model.zip") if not (args.run_dir / name).is_file()]
    if missing:
        parser.error(f"{args.run_dir} is not a run folder: missing {', '.join(missing)}")
    if args.n_particles < 2:
        parser.error(f"--n-particles must be an integer >= 2, got {args.n_particles}")
    th.set_num_threads(1)
    for path in write_run_figures(args.run_dir, args.n_particles, args.seed, animate=not args.no_animation):
        print(path)


if __name__ == "__main__":
    main()
