"""MF-DDPG against MF-TD3 against MF-SAC on every env id, single- and multi-population (the algorithm comparison).

    OMP_NUM_THREADS=1 python scripts/compare_algorithms.py [--envs ID ...] [--algos ddpg td3 sac] [--seeds 0 1 2]
        [--workers 2 | --address ADDR] [-f runs/compare] [--markdown table.md] [--plot compare.png] [-n STEPS]
        [--reuse]
    OMP_NUM_THREADS=1 python scripts/compare_algorithms.py --rl-gap-of RUN_DIR [--rl-timesteps 160000]
        [--rl-responder sac]

Every run trains with the shipped hyperparameters: ``python -m sb3_meanfield.train`` (self-play on the
single-population ids, one model per population, alternating, on the multi-population ids), one trial of a sweep
(:mod:`sb3_meanfield.sweep`, Ray Tune: one CPU per run, ``--workers`` runs at a time on this machine, or on the Ray
cluster at ``--address``; the same command resumes an interrupted comparison). Its FINAL policy is scored by

- the relative Nash gap of the run's own final evaluation (exact, 10,000 particles per population, 4 replicates,
  common random numbers, where the model has exact best responses; dp, 2 replicates, on the walled crowds,
  ``sb3_meanfield.evaluation.gap_method``); on a multi-population id the largest of the populations' gaps;
- the training wall time;
- the critic's overestimation of the initial value, ``mean Q_1(s_0, mu(s_0), m_0) - realized return`` (the
  population's Monte Carlo return under the same policy; the largest over populations): DDPG's single critic
  is expected to overestimate, TD3's clipped twin critics not.

``--rl-gap-of RUN_DIR`` prints an RL lower bound of one run folder's relative gap instead
(:func:`sb3_meanfield.nash_gap`, one policy per population, with ``method="rl"``: a fresh agent trained for
``--rl-timesteps`` transitions against the frozen flow, the neutral policy's gap found the same way). Its responder
is the same for every algorithm's policy (``--rl-responder``, default SAC with its shipped policy for the id), so the
bounds compare the policies, not the responders (scored by their own unbarriered TD3/DDPG, the saturated two-crowd
runs of BENCHMARKS.md looked unexploitable; by SAC they were not).

With ``--reuse``, a run already in the log folder with the same configuration and package versions (for instance
``scripts/benchmark_equilibrium.py``'s runs, when both use one ``-f``) is scored instead of trained again: runs
are deterministic for a configuration and seed.

The script prints a Markdown table (one row per run, then the per env and algorithm medians) and draws the
medians and every seed in one figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from benchmark_equilibrium import run_trials

import mfg_envs
from sb3_meanfield.sweep import Trial

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

ALGOS = ("ddpg", "td3", "sac")
ALL_ENVS = (*mfg_envs.ENV_IDS, *mfg_envs.MULTI_ENV_IDS)


def comparable(result: dict) -> dict:
    """A run's result (:func:`benchmark_equilibrium.result_of`) with the comparison's columns: several populations
    score by the largest relative gap and the largest critic overestimation over the populations."""
    if "critic" not in result:  # one population, or a failed run
        return result
    overestimation = max(critic["q_overestimation"] for critic in result["critic"].values())
    return {**result, "relative_gap": result["max_relative_gap"], "q_overestimation": overestimation}


def responder_template(env_id: str, algo: str) -> OffPolicyAlgorithm:
    """An untrained ``algo`` model with its shipped policy for ``env_id``: the best responder's algorithm, policy
    class and policy keywords (:func:`sb3_meanfield.evaluation.rl_best_response`)."""
    size = ["--algo", algo, "--env", env_id, "--n-particles", "8", "--n-learners", "1"]
    from sb3_meanfield.config import build, build_trainer, resolve_config
    from sb3_meanfield.train import parse_args

    config = resolve_config(parse_args(size))
    return build_trainer(config)[0].models[0] if env_id in mfg_envs.MULTI_ENV_IDS else build(config)[1]


def print_rl_gap(run_dir: Path, rl_timesteps: int, responder: str) -> None:
    """The RL lower bound of a run folder's relative gap (largest over populations), printed last."""
    import gymnasium as gym
    import torch as th
    import yaml

    from sb3_meanfield import ModelPolicy, nash_gap
    from sb3_meanfield.plotting import load_agents

    th.set_num_threads(1)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    env_kwargs = {**config["env_kwargs"], "n_particles": config["n_particles"]}
    env = gym.make(config["env"], **env_kwargs)
    rl = {
        "seed": config["seed"],
        "rl_timesteps": rl_timesteps,
        "rl_template": responder_template(config["env"], responder),
    }
    # callables, not models: the template's algorithm responds
    policies = [ModelPolicy(model) for model in load_agents(run_dir, config)]
    print(nash_gap(policies, env, "rl", **rl).relative_gap)


def summarize(results: list[dict]) -> str:
    lines = [
        "| env id | algo | seed | relative Nash gap | method | critic - realized return | train wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['env']} | {r['algo']} | {r['seed']} | failed: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['env']} | {r['algo']} | {r['seed']} | {r['relative_gap']:.4f} | {r['method']} | "
            f"{r['q_overestimation']:+.3g} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "| env id | algo | median relative gap | worst relative gap | median critic - realized | median time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for (env_id, algo), group in groups(results).items():
        gaps = [r["relative_gap"] for r in group]
        lines.append(
            f"| {env_id} | {algo} | {statistics.median(gaps):.4f} | {max(gaps):.4f} | "
            f"{statistics.median(r['q_overestimation'] for r in group):+.3g} | "
            f"{statistics.median(r['seconds'] for r in group):.0f} |"
        )
    return "\n".join(lines)


def groups(results: list[dict]) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if "error" not in r:
            grouped.setdefault((r["env"], r["algo"]), []).append(r)
    return grouped


def plot(results: list[dict], path: str) -> None:
    """Per env id, one column per algorithm: every seed's relative gap (dots) and the median (bar), log scale;
    below, the critic's overestimation."""
    grouped = groups(results)
    envs = [env_id for env_id in ALL_ENVS if any(env_id == key[0] for key in grouped)]
    algos = [algo for algo in ALGOS if any(algo == key[1] for key in grouped)]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 1.6 * len(envs)), 6.5), sharex=True)
    width = 0.8 / max(len(algos), 1)
    for a, algo in enumerate(algos):
        for e, env_id in enumerate(envs):
            group = grouped.get((env_id, algo), [])
            if not group:
                continue
            x = e + (a - (len(algos) - 1) / 2) * width
            gaps = [r["relative_gap"] for r in group]
            over = [r["q_overestimation"] for r in group]
            color = f"C{a}"
            top.bar(x, statistics.median(gaps), width, color=color, alpha=0.5, label=algo if e == 0 else None)
            top.scatter([x] * len(gaps), gaps, color=color, s=12, zorder=3)
            bottom.bar(x, statistics.median(over), width, color=color, alpha=0.5)
            bottom.scatter([x] * len(over), over, color=color, s=12, zorder=3)
    top.set_yscale("log")
    top.set_ylabel("relative Nash gap (final policy)")
    top.legend()
    bottom.axhline(0.0, color="black", linewidth=0.8)
    bottom.set_ylabel("critic - realized return")
    bottom.set_xticks(range(len(envs)), [env_id.removeprefix("MFG") for env_id in envs], rotation=20)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--envs", nargs="+", default=list(ALL_ENVS), choices=ALL_ENVS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, help="runs at a time on this machine, one CPU each (default 2)")
    parser.add_argument("--address", help="run on this Ray cluster (its log folder shared by the nodes)")
    parser.add_argument("-f", "--log-folder", default="runs/compare")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--plot", help="also draw the comparison to this image file")
    parser.add_argument("-n", "--n-timesteps", type=int, help="override every run's budget (quick looks only)")
    parser.add_argument("--reuse", action="store_true", help="score finished runs of the same configuration again")
    parser.add_argument("--rl-gap-of", type=Path, help="only print the RL lower bound of this run folder")
    parser.add_argument("--rl-timesteps", type=int, default=160_000, help="--rl-gap-of: RL best-response budget")
    parser.add_argument("--rl-responder", default="sac", choices=ALGOS, help="--rl-gap-of: RL best responder")
    args = parser.parse_args()
    if args.rl_gap_of is not None:
        print_rl_gap(args.rl_gap_of, args.rl_timesteps, args.rl_responder)
        return
    extra = ("-n", str(args.n_timesteps)) if args.n_timesteps else ()
    trials = [
        Trial(env_id, algo, seed, flags=extra) for env_id in args.envs for algo in args.algos for seed in args.seeds
    ]
    log_folder = Path(args.log_folder)
    results = run_trials(trials, log_folder, "compare_algorithms", args.workers, args.address, args.reuse)
    results = [comparable(result) for result in results]
    (log_folder / "results.json").write_text(json.dumps(results, indent=1))
    table = summarize(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
