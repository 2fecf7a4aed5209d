"""Train one policy per population of a multi-population mean field game from the command line.

``python -m sb3_meanfield.train_multi --algo td3 --env MFGLinearQuadraticMulti-v0 [-n STEPS] [--seed S]
[-f LOGDIR] [--mode alternating|simultaneous] [--switch-freq STEPS] [--hyperparams k:v ...]``

One SB3 model per population (same algorithm, policy class and hyperparameters, separate networks; model ``k``
seeded ``seed + k``), each learning on the first ``n_learners`` particles of its population of one shared game
while the population's other particles follow that model's live policy
(:class:`~sb3_meanfield.multi.MultiPopulationTrainer`): ``--mode alternating`` (default) gives the models turns of
``--switch-freq`` env steps (default: one episode), ``--mode simultaneous`` moves every model at every env step.
``-n`` counts the transitions of EACH population's model.

Hyperparameters come from the rl_zoo3 config (default ``sb3_meanfield.hyperparams.<algo>``) as in
``python -m sb3_meanfield.train``'s self-play: ``hyperparams[env_id]``, then ``self_play[env_id]``, then
``--hyperparams`` (an id missing from the config takes its ``default`` entry without its callbacks). Each run
writes ``<LOGDIR>/<env>_<algo>_<seed>_<time>/`` with ``model_<population>.zip`` per population, ``config.yaml``
(resolved), ``metrics.csv`` (the per-population Nash gaps of the config's callback, one row per check),
``progress_<population>.csv`` (each model's SB3 training log) and ``metrics.json`` (final evaluation, training
time, the rows of ``metrics.csv``), and ends by printing every population's exact Nash gap and their maximum
(games with exact best responses) or every population's mean return. Usage errors print one line and exit
with code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

import mfg_envs
from mfg_envs.multi_population import MultiPopulation, MultiPopulationModel, population_rngs, rollout_joint
from sb3_meanfield.evaluation import ModelPolicy, critic_value, overestimation
from sb3_meanfield.multi import MODES, MultiPopulationTrainer, multi_nash_gap, population_envs
from sb3_meanfield.plotting import load_metrics
from sb3_meanfield.train import (
    ALGORITHMS,
    LAUNCHER_KEYS,
    SELF_PLAY_KEYS,
    OneLineErrorParser,
    StepCSVOutputFormat,
    UsageError,
    accepted_keywords,
    import_name,
    key_value,
    load_config,
    make_callbacks,
    make_model,
    make_run_dir,
    metric_rows,
    package_versions,
    plain,
    pop_noise,
    pop_population,
    positive_int,
    section,
)

DEFAULT_ENV = "MFGLinearQuadraticMulti-v0"


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The full run configuration (plain data, saved as ``config.yaml``), as :func:`sb3_meanfield.train.resolve_config`
    for self-play plus ``switch_freq``."""
    if args.env not in mfg_envs.MULTI_ENV_IDS:
        ids = ", ".join(mfg_envs.MULTI_ENV_IDS)
        raise UsageError(f"unknown multi-population env id {args.env!r}; the ids are {ids}")
    hyperparams, self_play = load_config(args.conf_file or f"sb3_meanfield.hyperparams.{args.algo}")
    params = section(hyperparams, args.env)
    if args.env not in hyperparams:  # the default entry's callbacks are single-population ones
        params.pop("callback", None)
    params.update(section(self_play, args.env))
    params.update(dict(args.hyperparams or []))
    algo_class = import_name(ALGORITHMS[args.algo])
    unknown = sorted(
        set(params) - {*LAUNCHER_KEYS, *SELF_PLAY_KEYS, "policy", "switch_freq"} - accepted_keywords(algo_class)
    )
    if unknown:
        raise UsageError(f"unknown hyperparameter(s) {unknown} for {args.algo}")
    env_kwargs, n_particles = pop_population(params)
    n_learners = params.pop("n_learners", None) or 64
    n_timesteps = params.pop("n_timesteps", 100_000)
    switch_freq = params.pop("switch_freq", None)
    params.pop("n_envs", None)  # one shared game
    callbacks = params.pop("callback", None) or []
    return {
        "algo": args.algo,
        "algo_class": ALGORITHMS[args.algo],
        "env": args.env,
        "mode": args.mode,
        "switch_freq": args.switch_freq or (None if switch_freq is None else int(switch_freq)),
        "seed": args.seed,
        "n_timesteps": int(args.n_timesteps or n_timesteps),
        "n_particles": int(args.n_particles or n_particles),
        "n_learners": int(args.n_learners or n_learners),
        "env_kwargs": env_kwargs,
        "noise": pop_noise(params),
        "callback": [callbacks] if isinstance(callbacks, (str, dict)) else list(callbacks),
        "policy": params.pop("policy", "MeanFieldPolicy"),
        "algo_kwargs": params,
    }


def build(config: dict[str, Any]) -> tuple[MultiPopulationTrainer, list[BaseCallback]]:
    """The trainer (one model per population, built as ``train.py`` builds its model) and the callbacks."""
    try:
        env = gym.make(config["env"], n_particles=config["n_particles"], **config["env_kwargs"])
        venvs = population_envs(env, config["n_learners"])
    except (TypeError, ValueError) as error:
        raise UsageError(f"invalid environment settings for {config['env']}: {error}") from None
    models = [make_model({**config, "seed": config["seed"] + k}, venv) for k, venv in enumerate(venvs)]
    try:
        trainer = MultiPopulationTrainer(models, config["mode"], config["switch_freq"])
    except ValueError as error:
        raise UsageError(str(error)) from None
    return trainer, make_callbacks(config["callback"])


def evaluate(trainer: MultiPopulationTrainer, n_particles: int, seed: int) -> dict[str, Any]:
    """Every population's exact Nash gap and their maximum where the game has exact best responses, else every
    population's mean return under the learned policies; and every critic's overestimation of its population's
    initial value (``critic_value - realized_return``, as :func:`sb3_meanfield.evaluation.critic_overestimation`)."""
    game = trainer.game
    cohort = MultiPopulation(game.model, n_particles, game.representation, game.kde_bandwidth)
    cohort.reset(population_rngs(seed, len(game.members)))
    critics = [critic_value(model, cohort.observation(k)) for k, model in enumerate(trainer.models)]
    _, returns = rollout_joint(cohort, [ModelPolicy(model) for model in trainer.models], seed)  # same initial states
    critic = {name: overestimation(q, r) for name, q, r in zip(game.names, critics, returns)}
    if type(game.model).best_response is not MultiPopulationModel.best_response:
        result = multi_nash_gap(trainer.models, game, "exact", n_particles, seed)
        gaps = {name: {key: float(value) for key, value in vars(gap).items()} for name, gap in result.gaps.items()}
        return {"gaps": gaps, "max_gap": result.max_gap, "max_relative_gap": result.max_relative_gap, "critic": critic}
    mean_returns = {
        name: {"mean_return": value["realized_return"], "standard_error": value["realized_return_se"]}
        for name, value in critic.items()
    }
    return {"mean_returns": mean_returns, "critic": critic}


def format_evaluation(result: dict[str, Any]) -> str:
    """The final lines of a run: per-population exact Nash gaps and their maximum, or mean returns."""
    if "gaps" in result:
        lines = [
            f"{name}: exact Nash gap {gap['gap']:.4g} +- {gap['standard_error']:.2g} (relative gap "
            f"{gap['relative_gap']:.4g}; policy return {gap['policy_return']:.4g}, best response return "
            f"{gap['best_response_return']:.4g})"
            for name, gap in result["gaps"].items()
        ]
        lines.append(f"max Nash gap {result['max_gap']:.4g} (max relative gap {result['max_relative_gap']:.4g})")
        return "\n".join(lines)
    lines = [
        f"{name}: mean evaluation return {value['mean_return']:.4g} +- {value['standard_error']:.2g}"
        for name, value in result["mean_returns"].items()
    ]
    return "\n".join([*lines, "(the game has no exact best responses)"])


def train(args: argparse.Namespace) -> Path:
    """Run one training from parsed arguments; return the run folder. Bad settings raise :class:`UsageError`."""
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    config = resolve_config(args)
    trainer, callbacks = build(config)
    run_dir = make_run_dir(args.log_folder, config)
    trainer.set_logger(Logger(str(run_dir), [StepCSVOutputFormat(str(run_dir / "metrics.csv"))]))
    for name, model in zip(trainer.names, trainer.models):
        model.set_logger(Logger(str(run_dir), [StepCSVOutputFormat(str(run_dir / f"progress_{name}.csv"))]))
    with (run_dir / "config.yaml").open("w") as file:
        resolved = {**config, "switch_freq": trainer.switch_freq, "populations": list(trainer.names)}
        resolved.update(arguments=vars(args), versions=package_versions())
        yaml.safe_dump(plain(resolved), file, sort_keys=False)
    started = time.perf_counter()
    trainer.learn(config["n_timesteps"], callback=callbacks, progress_bar=not args.no_progress)
    seconds = time.perf_counter() - started
    for name, model in zip(trainer.names, trainer.models):
        model.save(run_dir / f"model_{name}.zip")
        model.logger.close()
    trainer.logger.close()
    result = evaluate(trainer, args.eval_particles, args.seed)
    progress = metric_rows(load_metrics(run_dir / "metrics.csv"))
    summary = {"evaluation": result, "train_seconds": seconds, "progress": progress}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    steps = f"{config['n_timesteps']} steps per population"
    print(f"{config['env']} {config['algo']} {config['mode']}: {steps} in {seconds:.0f} s")
    print(format_evaluation(result))
    print(f"run folder: {run_dir}")
    return run_dir


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="python -m sb3_meanfield.train_multi",
        description="Learn a multi-population mean field equilibrium: one DDPG, TD3 or SAC model per population.",
    )
    parser.add_argument("--algo", default="td3", choices=sorted(ALGORITHMS), help="algorithm (default: td3)")
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"multi-population mfg_envs id (default: {DEFAULT_ENV})")
    parser.add_argument("--mode", choices=MODES, default=MODES[0], help="alternating (default) or simultaneous")
    parser.add_argument("--switch-freq", type=positive_int, help="alternating: env steps per turn (default: episode)")
    steps_help = "transitions each population's model collects (n_learners per env step; default: the config's)"
    parser.add_argument("-n", "--n-timesteps", type=positive_int, help=steps_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the game and of population 0's model (k: +k)")
    parser.add_argument("--n-particles", type=positive_int, help="particles per population (default: the config's)")
    parser.add_argument("--n-learners", type=positive_int, help="learning particles per population (<= n-particles)")
    parser.add_argument(
        "--hyperparams", type=key_value, nargs="+", action="extend", metavar="KEY:VALUE", help="override the config"
    )
    parser.add_argument("-conf", "--conf-file", help="rl_zoo3 config module, .py or .yml (default: ours)")
    parser.add_argument("-f", "--log-folder", default="runs", help="parent of the run folder (default: runs)")
    parser.add_argument("--eval-particles", type=positive_int, default=10_000, help="particles of the final evaluation")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (default 1; <= 0: torch's default)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    try:
        train(parser.parse_args(argv))
    except UsageError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
