"""Master policies on a random initial law: MF-DDPG, MF-TD3 and MF-SAC with and without the population input.

    OMP_NUM_THREADS=1 python scripts/population_aware.py [--init-mean-std 1.0] [--algos td3 sac ddpg]
        [--seeds 0 1 2] [--variants moments none histogram kde] [-f runs/population_aware] [--reuse] [--workers 2]
        [--replicates 64] [--unseen-means -1 0.5 3.5 5] [--markdown FILE] [--time-only] [--no-train]

On ``MFGLinearQuadratic-v0`` with ``init_mean_std = s0`` each episode starts around a fresh mean ``M0 ~ N(m_0, s0^2)``
(docs/population_aware.md), so a policy must read the population to play the equilibrium ``a = -K_n x - C_n m_n``.

1. **The best time-only policy** (``--time-only`` stops after it): the smallest exact Nash gap of an affine policy of
   time and own state, ``a_n = -K_n x - k_n``, i.e. the minimum over ``2N`` numbers of
   ``model.policy_cost(pi) + model.feedback_best_response(pi).expected_return`` (exact for affine policies), by
   L-BFGS (torch's, on central finite-difference gradients; scipy is not a dependency) from the fixed law's
   equilibrium written as a function of time, and again from the neutral policy. A network that does not see the
   population can only do better than this by being non-affine in the own state.
2. **The runs**: ``python -m sb3_meanfield.train --algo A --seed S --hyperparams env_kwargs:"dict(init_mean_std=s0)"``
   with the shipped hyperparameters, per variant: ``moments`` (the main runs: the population's mean and standard
   deviation in the observation), ``histogram`` (the default representation) and ``kde``
   (``population_representation`` in ``env_kwargs``), and ``none``: the same networks with the population input
   removed (``population_encoder:none``: actor and critic see time and own state only), trained as one sweep
   (``sb3_meanfield.sweep``, ``--workers`` runs at a time). With ``--reuse`` a finished run of the same
   configuration in the log folder is scored instead of trained again.
3. **The gaps**: every final policy's exact Nash gap, on 10,000 particles, averaged over ``--replicates`` initial-mean
   draws (the same draws, seeds ``0..R-1``, for every policy: the differences between two policies are paired, and
   their standard errors are those of the paired differences). The relative gap divides by the neutral policy's
   exact gap under the same random law, averaged over the draws in closed form. ``--unseen-means`` also scores
   the population-aware runs at fixed initial means (``init_mean_std = 0``), each relative to the neutral gap there.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from benchmark_equilibrium import run_trials

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.core import ConstantPolicy
from mfg_envs.equilibrium import AffinePolicy, solve_equilibrium
from mfg_envs.game import game_of
from mfg_envs.linear_quadratic import LinearQuadraticModel
from mfg_envs.nash_gap import ExactBestResponse, replicate_gaps

ENV_ID = "MFGLinearQuadratic-v0"
#: ``variant -> (population_representation, extra --hyperparams)``. ``none`` keeps the default representation,
#: which its networks do not read: its runs are those the same flags without ``population_encoder:none`` would give
#: but for the networks' population input.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "moments": ("moments", []),
    "none": ("histogram", ["population_encoder:none"]),
    "histogram": ("histogram", []),
    "kde": ("kde", []),
}
#: The population-aware configuration the others are compared with (paired differences, same algorithm and seed).
MAIN = "moments"
#: The issue's target for every population-aware run.
TARGET = 0.05
ALGOS = {"td3": "MFTD3", "sac": "MFSAC", "ddpg": "MFDDPG"}


# --------------------------------------------------------------------------- exact figures of affine policies
def exact_gap(model: LinearQuadraticModel, policy: Any) -> float:
    """The exact Nash gap of an affine (or constant) ``policy`` on ``model``, averaged over the random population."""
    return model.policy_cost(policy) + model.feedback_best_response(policy).expected_return


def time_only_policy(model: LinearQuadraticModel, parameters: np.ndarray) -> AffinePolicy:
    """``a_n = -K_n x - k_n`` from ``parameters = (K_0..K_{N-1}, k_0..k_{N-1})`` (physical units)."""
    gains, offsets = np.split(np.asarray(parameters, dtype=np.float64), 2)
    return AffinePolicy(model, gains.reshape(-1, 1, 1), offsets.reshape(-1, 1))


def fixed_law_time_only(model: LinearQuadraticModel) -> AffinePolicy:
    """The fixed law's equilibrium written as a function of time (offsets ``C_n m*_n`` on the nominal mean path)."""
    fixed = copy.copy(model)
    fixed.init_mean_std, fixed.common_noise = 0.0, 0.0
    return dataclasses.replace(fixed.solve_equilibrium().policy, model=model)


def model_key(model: LinearQuadraticModel) -> str:
    """The model's scalar parameters, as a key of the kept optimization results."""
    return json.dumps({name: value for name, value in vars(model).items() if isinstance(value, (int, float))})


def best_time_only(model: LinearQuadraticModel, start: np.ndarray, step: float = 1e-6) -> tuple[float, np.ndarray, int]:
    """``(gap, parameters, evaluations)``: the time-only affine policy of smallest exact gap found by L-BFGS from
    ``start`` (parameters as :func:`time_only_policy`), gradients by central differences of step ``step``."""
    import torch as th

    def gap(parameters: np.ndarray) -> float:
        return exact_gap(model, time_only_policy(model, parameters))

    def gradient(parameters: np.ndarray) -> np.ndarray:
        eye = np.eye(parameters.size) * step
        return np.array([(gap(parameters + e) - gap(parameters - e)) / (2 * step) for e in eye])

    x = th.tensor(start, dtype=th.float64, requires_grad=True)
    optimizer = th.optim.LBFGS(
        [x], max_iter=400, tolerance_grad=1e-9, tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe"
    )
    evaluations = 0

    def closure() -> Any:
        nonlocal evaluations
        evaluations += 1
        parameters = x.detach().numpy().copy()
        x.grad = th.as_tensor(gradient(parameters))
        return th.tensor(gap(parameters))

    optimizer.step(closure)
    parameters = x.detach().numpy().copy()
    return gap(parameters), parameters, evaluations


def neutral_gap(model: LinearQuadraticModel) -> float:
    """The neutral policy's (normalized action 0) exact gap, averaged over the random population: the relative
    gap's scale."""
    return exact_gap(model, ConstantPolicy(np.zeros(1)))


# --------------------------------------------------------------------------- simulated gaps of any policy
def replicate_table(policy: Any, env: gym.Env, n_particles: int, replicates: int, seed: int = 0) -> np.ndarray:
    """The exact Nash gap of ``policy`` on each of ``replicates`` initial-mean draws (seeds ``seed..``), as
    ``mfg_envs.nash_gap.exact_nash_gap`` computes each replicate (one responder for all of them: under common noise
    its feedback best response to ``policy`` is computed once, as in ``nash_gap``)."""
    game = game_of(env)
    responder = ExactBestResponse()
    return np.array([replicate_gaps(game, [policy], responder, n_particles, seed + r)[0, 0] for r in range(replicates)])


def mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


# --------------------------------------------------------------------------- the runs
def run_trial(variant: str, algo: str, seed: int, args: argparse.Namespace) -> Any:
    """The sweep trial of one run: the shipped configuration with the variant's population input and the random
    population of ``args``, into ``<log folder>/<variant>_<algo>_<seed>/``."""
    from sb3_meanfield.sweep import Trial

    representation, hyperparams = VARIANTS[variant]
    env_kwargs = f"init_mean_std={args.init_mean_std}"
    if args.common_noise:
        env_kwargs += f", common_noise={args.common_noise}"
    if representation != "histogram":
        env_kwargs += f", population_representation='{representation}'"
    overrides = (f"env_kwargs:dict({env_kwargs})", *hyperparams, *args.hyperparams)
    return Trial(ENV_ID, algo, seed, hyperparams=overrides, flags=("--no-figures",), folder=f"{variant}_{algo}_{seed}")


def load_model(run_dir: Path, algo: str) -> Any:
    import sb3_meanfield

    return getattr(sb3_meanfield, ALGOS[algo]).load(run_dir / "model.zip")


def score_run(run_dir: Path, algo: str, n_particles: int, replicates: int) -> dict[str, Any]:
    """The run's evaluation figures: its per-replicate gaps, training time and the command line's printed gap."""
    from sb3_meanfield import ModelPolicy

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # the scores are kept in the run folder (a run is deterministic for its configuration, and so are its scores)
    kept = run_dir / f"population_aware_gaps_{replicates}x{n_particles}.json"
    if kept.is_file():
        gaps = np.array(json.loads(kept.read_text()))
    else:
        env = gym.make(ENV_ID, **config["env_kwargs"])
        gaps = replicate_table(ModelPolicy(load_model(run_dir, algo)), env, n_particles, replicates)
        kept.write_text(json.dumps(gaps.tolist()))
    return {
        "run_dir": str(run_dir),
        "gaps": gaps,
        "seconds": metrics["train_seconds"],
        "cli": metrics["evaluation"],
        "env_kwargs": config["env_kwargs"],
    }


def unseen_gaps(run_dir: Path, algo: str, means: list[float], n_particles: int) -> list[float]:
    """Relative exact gaps of a run's policy at fixed initial means (``init_mean_std = 0``, 4 replicates each)."""
    from sb3_meanfield import ModelPolicy

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    policy = ModelPolicy(load_model(run_dir, algo))
    relative = []
    for mean in means:
        kwargs = {**config["env_kwargs"], "init_mean_std": 0.0, "init_mean": mean}
        env = gym.make(ENV_ID, **kwargs)
        gap = replicate_table(policy, env, n_particles, 4).mean()
        relative.append(float(gap / neutral_gap(env.unwrapped.model)))
    return relative


def fixed_mean_gap(model: LinearQuadraticModel, policy: AffinePolicy, mean: float) -> float:
    """The exact relative gap of the affine ``policy`` when every episode starts at the mean ``mean``."""
    fixed = copy.copy(model)
    fixed.init_mean, fixed.init_mean_std = mean, 0.0
    return exact_gap(fixed, dataclasses.replace(policy, model=fixed)) / neutral_gap(fixed)


def fmt(value: float, error: float, scale: float = 1.0) -> str:
    return f"{value / scale:.4f} +- {error / scale:.4f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-mean-std", type=float, default=1.0)
    parser.add_argument("--common-noise", type=float, default=0.0, help="sigma0 of the env (default 0)")
    parser.add_argument("--algos", nargs="+", default=["td3", "sac", "ddpg"], choices=sorted(ALGOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("-f", "--log-folder", default="runs/population_aware")
    parser.add_argument("--reuse", action="store_true", help="score finished runs of the same configuration again")
    parser.add_argument("--replicates", type=int, default=64, help="initial-mean draws of every gap (default 64)")
    parser.add_argument("--eval-particles", type=int, default=10_000)
    parser.add_argument("--unseen-means", nargs="*", type=float, default=[], help="fixed initial means to score at")
    parser.add_argument("--hyperparams", nargs="+", default=[], metavar="KEY:VALUE", help="overrides for every run")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--time-only", action="store_true", help="only the best time-only policy")
    parser.add_argument("--no-train", action="store_true", help="score the finished runs only (as --reuse finds them)")
    parser.add_argument("--workers", type=int, help="runs at a time (CPUs of the sweep, default 2)")
    return parser.parse_args(argv)


def kept_best_time_only(
    model: LinearQuadraticModel, fixed: AffinePolicy, log_folder: str, lines: list[str]
) -> tuple[float, np.ndarray]:
    """The best time-only policy's ``(exact gap, parameters)``: the better of :func:`best_time_only` from the fixed
    law's equilibrium and from the neutral policy, computed once per model and kept in the log folder (the
    optimization takes minutes); ``fixed`` is :func:`fixed_law_time_only`'s policy; what it did goes to ``lines``."""
    cache = Path(log_folder) / "best_time_only.json"
    saved = json.loads(cache.read_text()) if cache.is_file() else {}
    key = model_key(model)
    if key in saved:
        parameters = np.array(saved[key]["parameters"])
        gap = exact_gap(model, time_only_policy(model, parameters))  # recomputed from the kept parameters
        lines.append(f"best time-only affine policy: exact gap {gap:.9f} (parameters kept in {cache})")
        return gap, parameters
    fixed_parameters = np.concatenate([fixed.gains[:, 0, 0], fixed.offsets[:, 0]])
    starts = {"the fixed law's equilibrium": fixed_parameters, "the neutral policy": np.zeros_like(fixed_parameters)}
    found = []
    for name, start in starts.items():
        gap, parameters, evaluations = best_time_only(model, start)
        lines.append(
            f"best time-only affine policy from {name}: exact gap {gap:.9f} ({evaluations} L-BFGS evaluations)"
        )
        found.append((gap, parameters))
    gap, parameters = min(found, key=lambda pair: pair[0])
    cache.parent.mkdir(parents=True, exist_ok=True)
    saved[key] = {"gap": gap, "parameters": parameters.tolist()}
    cache.write_text(json.dumps(saved))
    return gap, parameters


def reference_policies(model: LinearQuadraticModel, args: argparse.Namespace, lines: list[str]) -> dict[str, Any]:
    """The time-only references, ``name -> (affine policy, exact gap)``: the fixed law's equilibrium as a function of
    time and the best time-only affine policy; their figures go to ``lines``."""
    scale = neutral_gap(model)
    started = time.perf_counter()
    fixed = fixed_law_time_only(model)
    fixed_gap = exact_gap(model, fixed)
    best_gap, best_parameters = kept_best_time_only(model, fixed, args.log_folder, lines)
    lines.append(
        f"best time-only exact gap {best_gap:.9f} (relative {best_gap / scale:.5f}); the fixed law's equilibrium as a "
        f"time-only policy {fixed_gap:.9f} ({time.perf_counter() - started:.0f} s)"
    )
    gains, offsets = np.split(best_parameters, 2)
    lines.append(
        f"best time-only K_n (n = 0, 10, 25, 49): {np.round(gains[[0, 10, 25, -1]], 4).tolist()}, k_n: "
        f"{np.round(offsets[[0, 10, 25, -1]], 4).tolist()}"
    )
    return {
        "fixed law's equilibrium as a time-only policy": (fixed, fixed_gap),
        "best time-only affine policy": (time_only_policy(model, best_parameters), best_gap),
    }


def reference_table(
    references: dict[str, Any], env: gym.Env, scale: float, args: argparse.Namespace
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The references' simulated gaps on the draws of the runs (beside their exact ones), and the per-draw gaps."""
    table = ["| policy | relative gap +- se | gap +- se | exact gap |", "|---|---|---|---|"]
    reference_gaps = {}
    for name, (policy, exact) in references.items():
        reference_gaps[name] = replicate_table(policy, env, args.eval_particles, args.replicates)
        mean, se = mean_se(reference_gaps[name])
        table.append(f"| {name} | {fmt(mean, se, scale)} | {fmt(mean, se)} | {exact:.6f} |")
    mean, se = mean_se(replicate_table(solve_equilibrium(env).policy, env, args.eval_particles, args.replicates))
    table.append(f"| exact equilibrium (reads m_n) | {fmt(mean, se, scale)} | {fmt(mean, se)} | 0 |")
    return table, reference_gaps


def scored_runs(args: argparse.Namespace, scale: float) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Train the grid's runs (or, ``--no-train``, find the finished ones) and score each: ``(variant, algo, seed) ->``
    :func:`score_run`'s figures."""
    jobs = [(variant, algo, seed) for variant in args.variants for algo in args.algos for seed in args.seeds]
    trials = [run_trial(*job, args) for job in jobs]
    if args.no_train:
        from sb3_meanfield.sweep import finished_run

        log_folder = Path(args.log_folder)
        found = [finished_run(log_folder / t.run_parent, t.train_argv(log_folder)) for t in trials]
        runs = [{"run_dir": run_dir} if run_dir else {"error": "no finished run (--no-train)"} for run_dir in found]
    else:
        runs = run_trials(trials, Path(args.log_folder), "population_aware", args.workers, None, args.reuse)
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    for job, run in zip(jobs, runs):
        if "error" in run:
            print(f"{' '.join(map(str, job))}: {run['error']}", file=sys.stderr, flush=True)
            continue
        results[job] = score_run(Path(run["run_dir"]), job[1], args.eval_particles, args.replicates)
        mean, se = mean_se(results[job]["gaps"])
        print(f"{' '.join(map(str, job))}: relative gap {fmt(mean, se, scale)} ({run['run_dir']})", flush=True)
    return results


def runs_table(results: dict[tuple[str, str, int], dict[str, Any]], best_draws: np.ndarray, scale: float) -> list[str]:
    """One row per run: its gap, paired against the population-aware run of its algorithm and seed and against the
    best time-only policy on the same draws, and the command line's own figure."""
    table = [
        "",
        f"| variant | algo | seed | relative gap +- se | gap +- se | gap - {MAIN} run's (paired) | gap - best "
        "time-only (paired) | command line's gap +- se | train wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, algo, seed), result in results.items():
        gaps = result["gaps"]
        mean, se = mean_se(gaps)
        aware = results.get((MAIN, algo, seed))
        paired = "-" if aware is None or variant == MAIN else fmt(*mean_se(gaps - aware["gaps"]))
        cli = result["cli"]
        table.append(
            f"| {variant} | {algo} | {seed} | {fmt(mean, se, scale)} | {fmt(mean, se)} | {paired} | "
            f"{fmt(*mean_se(gaps - best_draws))} | {cli['gap']:.4f} +- {cli['standard_error']:.4f} | "
            f"{result['seconds']:.0f} |"
        )
    return table


def summary_table(
    results: dict[tuple[str, str, int], dict[str, Any]], best_gap: float, scale: float, args: argparse.Namespace
) -> list[str]:
    """Per variant and algorithm: median and worst relative gap, the target, and the paired differences from the
    population-aware runs (for the ablation, whether each reaches the best time-only gap)."""
    table = [
        "",
        "| variant | algo | runs | median relative gap | worst relative gap | every run <= 0.05 "
        f"| gap - {MAIN} run's (paired, per seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in args.variants:
        for algo in args.algos:
            rows = [(seed, results[variant, algo, seed]) for seed in args.seeds if (variant, algo, seed) in results]
            if not rows:
                continue
            relative = [float(r["gaps"].mean() / scale) for _, r in rows]
            differences = [
                mean_se(r["gaps"] - results[MAIN, algo, seed]["gaps"])
                for seed, r in rows
                if variant != MAIN and (MAIN, algo, seed) in results
            ]
            # the ablation's criterion: worse than the population-aware run by at least the best time-only gap
            marks = [
                f" ({'>=' if d >= best_gap else '<'} {best_gap:.4f})" if variant == "none" else ""
                for d, _ in differences
            ]
            difference = ", ".join(f"{d:.4f} +- {se:.4f}{m}" for (d, se), m in zip(differences, marks)) or "-"
            met = "yes" if max(relative) <= TARGET else "no"
            table.append(
                f"| {variant} | {algo} | {len(rows)} | {statistics.median(relative):.4f} | {max(relative):.4f} | "
                f"{met} | {difference} |"
            )
    table.append(f"\n(best time-only exact gap: {best_gap:.6f}; relative {best_gap / scale:.5f})")
    return table


def unseen_table(
    results: dict[tuple[str, str, int], dict[str, Any]],
    references: dict[str, Any],
    model: LinearQuadraticModel,
    args: argparse.Namespace,
) -> list[str]:
    """The references (exact) and the population-aware runs at the fixed initial means ``--unseen-means``."""
    table = [
        "",
        "| variant | algo | seed | " + " | ".join(f"relative gap at M0 = {m:g}" for m in args.unseen_means) + " |",
        "|---|---|---|" + "---|" * len(args.unseen_means),
    ]
    for name, (policy, _) in references.items():
        relative = [fixed_mean_gap(model, policy, mean) for mean in args.unseen_means]
        table.append(f"| {name} | - | - | " + " | ".join(f"{r:.4f}" for r in relative) + " |")
    for (variant, algo, seed), result in results.items():
        if variant == "none":
            continue
        relative = unseen_gaps(Path(result["run_dir"]), algo, args.unseen_means, args.eval_particles)
        table.append(f"| {variant} | {algo} | {seed} | " + " | ".join(f"{r:.4f}" for r in relative) + " |")
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = gym.make(ENV_ID, init_mean_std=args.init_mean_std, common_noise=args.common_noise)
    model = env.unwrapped.model
    scale = neutral_gap(model)
    lines = [f"## {ENV_ID}, init_mean_std = {args.init_mean_std}, common_noise = {args.common_noise}", ""]
    lines.append(f"neutral policy's exact gap (the relative gap's scale): {scale:.9f}")
    lines.append(f"exact equilibrium: J* = {-solve_equilibrium(env).expected_return:.9f}, exact gap 0")
    references = reference_policies(model, args, lines)
    print("\n".join(lines), flush=True)
    if args.time_only:
        return

    # simulated check of the references on the draws of the runs
    lines += ["", f"Simulated exact gaps ({args.replicates} initial-mean draws, {args.eval_particles} particles):", ""]
    table, reference_gaps = reference_table(references, env, scale, args)
    print("\n".join(table), flush=True)
    lines += table

    results = scored_runs(args, scale)
    best_gap = references["best time-only affine policy"][1]
    table = runs_table(results, reference_gaps["best time-only affine policy"], scale)
    table += summary_table(results, best_gap, scale, args)
    if args.unseen_means:
        table += unseen_table(results, references, model, args)
    print("\n".join(table), flush=True)
    lines += table
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
