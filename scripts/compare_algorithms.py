"""MF-DDPG against MF-TD3 against MF-SAC on every env id, single- and multi-population (the algorithm comparison).

    OMP_NUM_THREADS=1 python scripts/compare_algorithms.py [--envs ID ...] [--algos ddpg td3 sac] [--seeds 0 1 2]
        [--workers 2] [-f runs/compare] [--markdown table.md] [--plot compare.png] [--rl-timesteps 160000]
        [--rl-responder sac] [-n STEPS] [--reuse]

Every run trains with the shipped hyperparameters: ``python -m sb3_meanfield.train`` (self-play on the
single-population ids, one model per population, alternating, on the multi-population ids). Its FINAL policy is
scored by

- the relative Nash gap: the run's own final evaluation where it has one (exact, 10,000 particles per population,
  4 replicates, common random numbers, where the model has exact best responses; dp, 2 replicates, on the walled
  crowds, ``sb3_meanfield.evaluation.gap_method``); otherwise an RL lower bound (:func:`sb3_meanfield.nash_gap`,
  one policy per population, with ``method="rl"``: a fresh agent trained for ``--rl-timesteps``
  transitions against the frozen flow, the neutral policy's gap found the same way); on a multi-population id
  the largest of the populations' gaps. The best responder is the same for every algorithm's policy
  (``--rl-responder``, default SAC with its shipped policy for the id), so the bounds compare the policies, not
  the responders (scored by their own unbarriered TD3/DDPG, the saturated two-crowd runs of BENCHMARKS.md looked
  unexploitable; by SAC they were not);
- the training wall time;
- the critic's overestimation of the initial value, ``mean Q_1(s_0, mu(s_0), m_0) - realized return`` (the
  population's Monte Carlo return under the same policy; the largest over populations): DDPG's single critic
  is expected to overestimate, TD3's clipped twin critics not.

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
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from benchmark_equilibrium import error_line, launch, run_one

import mfg_envs

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

ALGOS = ("ddpg", "td3", "sac")
ALL_ENVS = (*mfg_envs.ENV_IDS, *mfg_envs.MULTI_ENV_IDS)


def run_multi(
    algo: str, env_id: str, seed: int, log_folder: Path, extra_args: tuple[str, ...] = (), reuse: bool = False
) -> dict:
    """Train one model per population (``launch`` of ``sb3_meanfield.train``); return its final evaluation."""
    run_dir = launch(
        "sb3_meanfield.train", algo, env_id, seed, log_folder / f"{env_id}_{algo}_{seed}", extra_args, reuse
    )
    if isinstance(run_dir, str):
        return {"algo": algo, "env": env_id, "seed": seed, "error": run_dir}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = metrics["evaluation"]
    result = {"algo": algo, "env": env_id, "seed": seed, "run_dir": str(run_dir), "seconds": metrics["train_seconds"]}
    result["q_overestimation"] = max(c["q_overestimation"] for c in evaluation["critic"].values())
    if "gaps" in evaluation:  # runs written before the method was saved: exact
        result["relative_gap"], result["method"] = evaluation["max_relative_gap"], evaluation.get("method", "exact")
    return result


def rl_relative_gap(result: dict, rl_timesteps: int, responder: str) -> dict:
    """Add the RL lower bound of the relative gap of a finished run (in a subprocess: one torch thread each). It is
    deterministic for the run, budget and responder, so it is kept in the run folder
    (``rl_gap_<budget>_<responder>.txt``) and read from there next time."""
    saved = Path(result["run_dir"]) / f"rl_gap_{rl_timesteps}_{responder}.txt"
    if not saved.is_file():
        command = [sys.executable, __file__, "--rl-gap-of", result["run_dir"], "--rl-timesteps", str(rl_timesteps)]
        completed = subprocess.run([*command, "--rl-responder", responder], capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            return {**result, "error": error_line(completed)}
        saved.write_text(completed.stdout.split()[-1] + "\n")
    return {**result, "relative_gap": float(saved.read_text()), "method": f"RL ({rl_timesteps}, {responder})"}


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


def run(
    job: tuple[str, str, int],
    log_folder: Path,
    rl_timesteps: int,
    responder: str,
    extra_args: tuple[str, ...],
    reuse: bool,
) -> dict:
    algo, env_id, seed = job
    if env_id in mfg_envs.MULTI_ENV_IDS:
        result = run_multi(algo, env_id, seed, log_folder, extra_args, reuse)
    else:
        result = run_one(algo, env_id, seed, log_folder, extra_args, reuse=reuse)
        if "gap" in result:  # runs written before the method was saved: exact
            result.setdefault("method", "exact")
    if "error" in result or "relative_gap" in result:
        return result
    return rl_relative_gap(result, rl_timesteps, responder)


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
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("-f", "--log-folder", default="runs/compare")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--plot", help="also draw the comparison to this image file")
    parser.add_argument("--rl-timesteps", type=int, default=160_000, help="RL best-response budget (no exact gap)")
    parser.add_argument("--rl-responder", default="sac", choices=ALGOS, help="RL best responder (every run's)")
    parser.add_argument("-n", "--n-timesteps", type=int, help="override every run's budget (quick looks only)")
    parser.add_argument("--reuse", action="store_true", help="score finished runs of the same configuration again")
    parser.add_argument("--rl-gap-of", type=Path, help="only print the RL lower bound of this run folder")
    args = parser.parse_args()
    if args.rl_gap_of is not None:
        print_rl_gap(args.rl_gap_of, args.rl_timesteps, args.rl_responder)
        return
    jobs = [(algo, env_id, seed) for env_id in args.envs for algo in args.algos for seed in args.seeds]
    log_folder = Path(args.log_folder)
    extra = ("-n", str(args.n_timesteps)) if args.n_timesteps else ()
    rl = (args.rl_timesteps, args.rl_responder)
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda job: run(job, log_folder, *rl, extra, args.reuse), jobs))
    (log_folder / "results.json").write_text(json.dumps(results, indent=1))
    table = summarize(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
