"""Train a mean field equilibrium with DDPG, TD3 or SAC from the command line.

``python -m sb3_meanfield.train --algo td3 --env MFGCrowd-v0 [-n STEPS] [--seed S] [--hyperparams k:v ...] [-f LOGDIR]``

Two self-consistent training modes:

- ``self-play`` (default): the ``n_learners`` first particles of an ``n_particles`` population are the
  environments of one SB3 ``VecEnv`` and share one policy; the other particles play that same policy
  deterministically (:class:`~sb3_meanfield.common.vec_env.SelfPlayVecEnv`).
- ``representative``: one learning particle per env (``gym.make``), the population follows a frozen
  copy of the learner, refreshed every ``sync_freq`` steps as a fixed-point iteration or as
  fictitious play (:class:`~sb3_meanfield.common.callbacks.PopulationSyncCallback`).

Hyperparameters come from an rl_zoo3 config (default ``sb3_meanfield.hyperparams.<algo>``): its
``hyperparams[env_id]`` section (or ``default``), then, in self-play, its ``self_play[env_id]``
overrides, then ``--hyperparams``. Each run writes ``<LOGDIR>/<env>_<algo>_<seed>_<time>/`` with
``model.zip``, ``config.yaml`` (resolved), ``metrics.csv``/``metrics.json`` and ``figures/`` (learning curves,
population flow, learned vs exact policy and moments, a crowd animation),
and ends by printing the exact Nash gap (models with an exact best response) or the mean return.

Every ``--checkpoint-freq`` env steps (default 1000; 0: never) and at the end of training the run writes
``checkpoint/`` (:mod:`sb3_meanfield.common.checkpoint`); ``--resume RUN_DIR`` continues an interrupted run
from it with the settings of ``RUN_DIR/config.yaml`` and ends exactly where the uninterrupted run ends.
Usage errors (and a missing or corrupt checkpoint) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import math
import os
import re
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3 import __version__ as sb3_version
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import CSVOutputFormat, KVWriter, Logger, TensorBoardOutputFormat
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import mfg_envs
from mfg_envs.core import MeanFieldModel, Population
from sb3_meanfield.common.callbacks import SYNC_MODES, PopulationSyncCallback
from sb3_meanfield.common.checkpoint import CHECKPOINT_DIR, CheckpointError, TrainingCheckpoint, load_checkpoint
from sb3_meanfield.common.noise import make_action_noise
from sb3_meanfield.common.vec_env import SelfPlayVecEnv
from sb3_meanfield.evaluation import ModelPolicy, critic_overestimation, nash_gap
from sb3_meanfield.plotting import load_metrics, write_run_figures

ALGORITHMS = {"ddpg": "sb3_meanfield.ddpg.MFDDPG", "td3": "sb3_meanfield.td3.MFTD3", "sac": "sb3_meanfield.sac.MFSAC"}
MODES = ("self-play", "representative")
#: Config keys the launcher consumes; every other key is a keyword of the algorithm.
LAUNCHER_KEYS = ("n_timesteps", "n_envs", "env_kwargs", "noise_type", "noise_std", "noise_final_std", "callback")
#: Self-play keys (population size and learning particles), also settable with flags.
SELF_PLAY_KEYS = ("n_particles", "n_learners")
_BARE_WORD = re.compile(r"^[\w.+-]+$")
#: Flags that may accompany ``--resume`` (they change no result); every other setting comes from config.yaml.
RESUME_FLAGS = ("resume", "no_progress", "no_figures")


class UsageError(ValueError):
    """A bad command line or configuration: reported as one line with exit code 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


# --------------------------------------------------------------------------- values and config
def _literal_node(node: ast.expr) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(keyword.arg is None for keyword in node.keywords):
            raise ValueError("dict(**...) is not supported")
        return {keyword.arg: _literal_node(keyword.value) for keyword in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal_node(key): _literal_node(value) for key, value in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal_node(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    is_nn_name = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nn"
    if is_nn_name and isinstance(getattr(th.nn, node.attr, None), type):  # activation classes, as rl_zoo3 configs
        return getattr(th.nn, node.attr)
    return ast.literal_eval(node)


def parse_value(text: str) -> Any:
    """A config value without ``eval``: Python literals, ``dict(k=v, ...)``, ``nn.<Module>``; bare words are strings.

    ``"3e-4"`` -> ``0.0003``, ``"[64, 64]"`` -> list, ``"dict(net_arch=[32])"`` -> dict, ``"lin_1e-3"`` -> str.
    """
    try:
        return _literal_node(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, TypeError) as error:
        if _BARE_WORD.match(text.strip()):
            return text.strip()
        raise ValueError(f"malformed value {text!r}") from error


def key_value(text: str) -> tuple[str, Any]:
    """``--hyperparams`` item ``key:value`` (rl_zoo3 syntax, values parsed by :func:`parse_value`)."""
    key, sep, value = text.partition(":")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected key:value with a Python identifier as key, got {text!r}")
    try:
        return key, parse_value(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{key}: {error}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer ``>= 1``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def load_config(conf: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(hyperparams, self_play)`` of an rl_zoo3 config: a module name, a ``.py`` file or a YAML file."""
    try:
        if conf.endswith((".yml", ".yaml")):
            return yaml.safe_load(Path(conf).read_text()), {}
        if conf.endswith(".py"):
            namespace: dict[str, Any] = {}
            exec(Path(conf).read_text(), namespace)  # rl_zoo3's convention for .py configs
        else:
            namespace = vars(importlib.import_module(conf))
    except (OSError, ImportError, yaml.YAMLError) as error:
        raise UsageError(f"cannot load config {conf!r}: {error}") from None
    if not isinstance(namespace.get("hyperparams"), dict):
        raise UsageError(f"config {conf!r} defines no 'hyperparams' dict")
    return namespace["hyperparams"], namespace.get("self_play", {})


def section(table: dict[str, Any], env_id: str) -> dict[str, Any]:
    """The entry of ``env_id`` in a config table, else its ``default`` entry, else nothing (deep copies)."""
    return deepcopy(table.get(env_id, table.get("default", {})))


def import_name(dotted: str) -> Any:
    """The object named ``package.module.Name``."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise UsageError(f"cannot import {dotted!r}") from None


def accepted_keywords(cls: type) -> set[str]:
    """Keyword names of ``cls.__init__``, following ``**kwargs`` up the MRO."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names - {"self", "policy", "env"}


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The full run configuration (plain data, saved as ``config.yaml``): config file, mode overrides, flags."""
    if args.env not in mfg_envs.ENV_IDS:
        raise UsageError(f"unknown env id {args.env!r}; the mfg_envs ids are {', '.join(mfg_envs.ENV_IDS)}")
    hyperparams, self_play = load_config(args.conf_file or f"sb3_meanfield.hyperparams.{args.algo}")
    params = section(hyperparams, args.env)
    if args.mode == "self-play":
        params.update(section(self_play, args.env))
    params.update(dict(args.hyperparams or []))
    algo_class = import_name(ALGORITHMS[args.algo])
    known = {*LAUNCHER_KEYS, *SELF_PLAY_KEYS, "policy"} | accepted_keywords(algo_class)
    unknown = sorted(set(params) - known)
    if unknown:
        raise UsageError(f"unknown hyperparameter(s) {unknown} for {args.algo}")
    env_kwargs, n_particles = pop_population(params)
    n_learners = params.pop("n_learners", None)
    n_timesteps = params.pop("n_timesteps", 100_000)
    callbacks = params.pop("callback", None) or []
    callbacks = [callbacks] if isinstance(callbacks, (str, dict)) else list(callbacks)
    if args.mode == "representative":
        callbacks = sync_callback_entries(callbacks, args.sync_freq, args.sync_mode)
    else:  # self-play: the population is the learner itself
        callbacks = [entry for entry in callbacks if not _is_sync(entry)]
    return {
        "algo": args.algo,
        "algo_class": ALGORITHMS[args.algo],
        "env": args.env,
        "mode": args.mode,
        "seed": args.seed,
        "n_timesteps": int(args.n_timesteps or n_timesteps),
        "n_envs": int(params.pop("n_envs", 1)),
        "n_particles": int(args.n_particles or n_particles),
        "n_learners": args.n_learners or (None if n_learners is None else int(n_learners)),
        "env_kwargs": env_kwargs,
        "noise": pop_noise(params),
        "callback": callbacks,
        "policy": params.pop("policy", "MeanFieldPolicy"),
        "algo_kwargs": params,
    }


def pop_population(params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Take ``env_kwargs`` and the population size out of a config: its ``n_particles``, else ``env_kwargs``', else
    the env default 1000 (``--n-particles`` overrides both)."""
    env_kwargs = dict(params.pop("env_kwargs", None) or {})
    return env_kwargs, params.pop("n_particles", None) or env_kwargs.pop("n_particles", 1000)


def pop_noise(params: dict[str, Any]) -> dict[str, Any]:
    """Take the exploration keys (``noise_type``, ``noise_std``, ``noise_final_std``) out of a config."""
    return {
        "type": params.pop("noise_type", None),
        "std": params.pop("noise_std", None),
        "final_std": params.pop("noise_final_std", 0.01),
    }


def _callback_name(entry: str | dict[str, Any]) -> str:
    return entry if isinstance(entry, str) else next(iter(entry))


def _is_sync(entry: str | dict[str, Any]) -> bool:
    return _callback_name(entry).rpartition(".")[2] == PopulationSyncCallback.__name__


def sync_callback_entries(entries: list[Any], sync_freq: int | None, sync_mode: str | None) -> list[Any]:
    """Representative mode always has one population update: the config's entry with the flags applied."""
    default = f"{PopulationSyncCallback.__module__}.{PopulationSyncCallback.__name__}"
    sync = next((entry for entry in entries if _is_sync(entry)), default)
    name = _callback_name(sync)
    kwargs = dict(sync[name]) if isinstance(sync, dict) else {}
    if sync_freq is not None:
        kwargs["sync_freq"] = sync_freq
    if sync_mode is not None:
        kwargs["mode"] = sync_mode
    return [entry for entry in entries if not _is_sync(entry)] + [{name: kwargs}]


# --------------------------------------------------------------------------- building the run
def make_env(config: dict[str, Any]) -> VecEnv:
    """Self-play: one ``SelfPlayVecEnv``; representative: ``n_envs`` single-agent envs. Both monitored."""
    env_kwargs = config["env_kwargs"]
    try:
        if config["mode"] == "self-play":
            env: VecEnv = VecMonitor(
                SelfPlayVecEnv(config["env"], config["n_particles"], config["n_learners"], **env_kwargs)
            )
            env.seed(config["seed"])
            return env
        env_kwargs = {**env_kwargs, "n_particles": config["n_particles"]}
        return make_vec_env(config["env"], config["n_envs"], config["seed"], env_kwargs=env_kwargs)
    except ValueError as error:
        raise UsageError(f"invalid environment settings for {config['env']}: {error}") from None


def schedule(value: Any) -> Any:
    """``lin_<start>`` (rl_zoo3: linear to 0) or ``lin_<start>_<end>``; numbers pass through."""
    if not isinstance(value, str):
        return value
    parts = value.split("_")
    try:
        if parts[0] != "lin" or len(parts) not in (2, 3):
            raise ValueError
        start, end = float(parts[1]), float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError:
        accepted = "a number, 'lin_<start>' (linear to 0) or 'lin_<start>_<end>'"
        raise UsageError(f"learning_rate must be {accepted}, got {value!r}") from None
    return LinearSchedule(start, end, 1.0)


def make_callbacks(entries: list[Any]) -> list[BaseCallback]:
    """rl_zoo3 ``callback`` entries: dotted class names, or ``{dotted.name: {kwargs}}``."""
    callbacks = []
    for entry in entries:
        name = _callback_name(entry)
        kwargs = entry[name] if isinstance(entry, dict) else {}
        try:
            callbacks.append(import_name(name)(**(kwargs or {})))
        except (TypeError, ValueError) as error:
            raise UsageError(f"invalid callback {name}: {error}") from None
    return callbacks


def make_model(config: dict[str, Any], env: VecEnv) -> BaseAlgorithm:
    algo_class = import_name(config["algo_class"])
    kwargs = deepcopy(config["algo_kwargs"])  # SB3 writes into the policy_kwargs it is given (DDPG: n_critics)
    if "learning_rate" in kwargs:
        kwargs["learning_rate"] = schedule(kwargs["learning_rate"])
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    noise = config["noise"]
    if noise["type"] is not None:
        calls = max(config["n_timesteps"] // env.num_envs, 1)  # a decaying noise decays over the whole run
        try:
            kwargs["action_noise"] = make_action_noise(
                noise["type"],
                env.action_space.shape[0],
                env.num_envs,
                noise["std"],
                final_sigma=noise["final_std"],
                decay_steps=calls,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
    policy = config["policy"]
    policy = import_name(policy) if "." in policy else policy
    try:
        return algo_class(policy, env, seed=config["seed"], verbose=0, **kwargs)
    except (TypeError, ValueError, KeyError) as error:
        raise UsageError(f"invalid hyperparameters for {config['algo']}: {error}") from None


def build(config: dict[str, Any]) -> tuple[VecEnv, BaseAlgorithm, list[BaseCallback]]:
    """Env, model and callbacks of a resolved config; in self-play the non-learning particles play the live policy."""
    env = make_env(config)
    model = make_model(config, env)
    if config["mode"] == "self-play" and config["n_particles"] > env.num_envs:
        env.env_method("set_population_policy", ModelPolicy(model), indices=[0])
    return env, model, make_callbacks(config["callback"])


def make_run_dir(log_folder: str, config: dict[str, Any]) -> Path:
    """``<log_folder>/<env>_<algo>_<seed>_<timestamp>`` (a suffix keeps simultaneous runs apart)."""
    root = Path(log_folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(13, "permission denied")
        stem = f"{config['env']}_{config['algo']}_{config['seed']}_{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in range(1000):
            run_dir = root / (stem if suffix == 0 else f"{stem}-{suffix}")
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
        raise FileExistsError(17, "too many runs with the same name")
    except OSError as error:
        raise UsageError(f"cannot write to log folder {log_folder!r}: {error.strerror or error}") from None


class StepCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV writer that also fills ``time/total_timesteps`` with the dump's step (callbacks dump without it).

    ``keep_until``: a resumed run keeps the file's rows up to that step (the interrupted run may have logged past
    its checkpoint) and appends after them.
    """

    def __init__(self, filename: str, keep_until: int | None = None) -> None:
        kept = [] if keep_until is None else rows_until(Path(filename), keep_until)
        super().__init__(filename)
        if kept:
            self.keys = kept[0].rstrip("\n").split(self.separator)
            self.file.writelines(kept)
            self.file.flush()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        super().write({**key_values, "time/total_timesteps": step}, key_excluded, step)


def rows_until(path: Path, step: int) -> list[str]:
    """Header and rows of a metrics CSV whose ``time/total_timesteps`` is at most ``step``."""
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    if not lines:
        return []
    column = lines[0].rstrip("\n").split(",").index("time/total_timesteps")
    return lines[:1] + [line for line in lines[1:] if float(line.rstrip("\n").split(",")[column]) <= step]


def package_versions() -> dict[str, str]:
    """Versions of the packages a run's results depend on (saved in its ``config.yaml``)."""
    return {"mfg_envs": mfg_envs.__version__, "stable_baselines3": sb3_version, "torch": th.__version__}


def plain(value: Any) -> Any:
    """``value`` as YAML/JSON data (classes by dotted name, numpy scalars as numbers)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return str(value)  # subclasses such as torch's version string are not YAML-safe
    return value if value is None or isinstance(value, (bool, int, float)) else repr(value)


# --------------------------------------------------------------------------- results
def has_exact_best_response(model: MeanFieldModel) -> bool:
    """Whether the model overrides :meth:`MeanFieldModel.best_response` (so its exact Nash gap exists)."""
    return type(model).best_response is not MeanFieldModel.best_response


def evaluate(model: BaseAlgorithm, population: Population, n_particles: int, seed: int) -> dict[str, float]:
    """Exact Nash gap of the deterministic policy when the model has an exact best response, else its mean return;
    and the critic's overestimation of the initial value (:func:`critic_overestimation`)."""
    critic = critic_overestimation(model, population, n_particles, seed)
    if has_exact_best_response(population.model):
        gap = nash_gap(model, population, "exact", n_particles, seed)
        return {**{key: float(value) for key, value in vars(gap).items()}, **critic}
    return {"mean_return": critic["realized_return"], "standard_error": critic["realized_return_se"], **critic}


def metric_rows(metrics: dict[str, np.ndarray]) -> list[dict[str, float | None]]:
    """The logger's columns (:func:`sb3_meanfield.plotting.load_metrics`) as JSON rows (missing values: ``None``)."""
    return [
        {key: None if math.isnan(value) else float(value) for key, value in zip(metrics, values)}
        for values in zip(*metrics.values())
    ]


def format_evaluation(result: dict[str, float]) -> str:
    """The final line of a run: exact Nash gap and relative gap, or the mean return."""
    if "gap" in result:
        return (
            f"exact Nash gap {result['gap']:.4g} +- {result['standard_error']:.2g} "
            f"(relative gap {result['relative_gap']:.4g}; policy return {result['policy_return']:.4g}, "
            f"best response return {result['best_response_return']:.4g})"
        )
    mean, se = result["mean_return"], result["standard_error"]
    return f"mean evaluation return {mean:.4g} +- {se:.2g} (the model has no exact best response)"


def train(args: argparse.Namespace) -> Path:
    """Run one training from parsed arguments; return the run folder. Bad settings raise :class:`UsageError`."""
    if args.resume is not None:
        run_dir = Path(args.resume)
        config, args = resumed_run(run_dir, args)
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    restored = None
    if args.resume is None:
        config = resolve_config(args)
        env, model, callbacks = build(config)
        run_dir = make_run_dir(args.log_folder, config)
    else:
        try:
            restored = load_checkpoint(run_dir)
        except CheckpointError as error:
            raise UsageError(str(error)) from None
        model, callbacks = restored["model"], restored["callbacks"]
        env = model.get_env()
    keep_until = None if restored is None else model.num_timesteps
    writers: list[KVWriter] = [StepCSVOutputFormat(str(run_dir / "metrics.csv"), keep_until)]
    if args.tensorboard:
        writers.append(TensorBoardOutputFormat(str(run_dir / "tensorboard")))
    model.set_logger(Logger(str(run_dir), writers))
    if restored is None:
        with (run_dir / "config.yaml").open("w") as file:
            resolved = {**config, "n_envs": env.num_envs, "arguments": vars(args), "versions": package_versions()}
            yaml.safe_dump(plain(resolved), file, sort_keys=False)
    else:  # values recorded before the checkpoint and not yet dumped
        for key, values in restored["logger"].items():
            getattr(model.logger, key).update(values)
    if args.checkpoint_freq > 0:
        callbacks = [
            *callbacks,
            TrainingCheckpoint(run_dir / CHECKPOINT_DIR, callbacks, args.checkpoint_freq, restored),
        ]
    started = time.perf_counter()
    model.learn(
        config["n_timesteps"] - model.num_timesteps,
        callback=callbacks,
        log_interval=env.num_envs,
        progress_bar=not args.no_progress,
        reset_num_timesteps=restored is None,
    )
    seconds = time.perf_counter() - started
    model.save(run_dir / "model.zip")
    model.logger.close()
    population = env.get_attr("population", indices=[0])[0]
    result = evaluate(model, population, args.eval_particles, args.seed)
    metrics = load_metrics(run_dir / "metrics.csv")
    summary = {"evaluation": result, "train_seconds": seconds, "progress": metric_rows(metrics)}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    env.close()
    if args.tensorboard:
        log_population_histogram(run_dir, model, population, args.seed)
    figures = [] if args.no_figures else write_run_figures(run_dir, seed=args.seed)
    print(f"{config['env']} {config['algo']} {config['mode']}: {config['n_timesteps']} steps in {seconds:.0f} s")
    print(format_evaluation(result))
    print(f"run folder: {run_dir}" + (f" (figures in {run_dir / 'figures'})" if figures else ""))
    return run_dir


def resumed_run(run_dir: Path, args: argparse.Namespace) -> tuple[dict[str, Any], argparse.Namespace]:
    """The resolved config of ``run_dir`` and its arguments, with the display flags of ``args``."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        saved = {**vars(build_parser().parse_args([])), **config["arguments"]}
    except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
        raise UsageError(f"cannot resume {str(run_dir)!r}: no readable config.yaml ({error})") from None
    saved.update({name: getattr(args, name) for name in RESUME_FLAGS})
    return config, argparse.Namespace(**saved)


def log_population_histogram(run_dir: Path, model: BaseAlgorithm, population: Population, seed: int) -> None:
    """TensorBoard: the histogrammed quantity of the final policy's population at every step, one histogram each."""
    cohort = Population(population.model, 1000, population.representation, population.kde_bandwidth)
    cohort.reset(np.random.default_rng(seed))
    policy = ModelPolicy(model)
    logger = Logger(str(run_dir), [TensorBoardOutputFormat(str(run_dir / "tensorboard"))])
    rng = np.random.default_rng(seed)
    while not cohort.done:  # a loop over time steps
        cohort.step(policy(cohort.observation()), cohort.model.noise(cohort.n_particles, rng))
        values = cohort.model.histogram_values(cohort.states, cohort.last_actions)
        logger.record("mfg/population", th.as_tensor(values[:, 0]), exclude=("stdout", "log", "json", "csv"))
        logger.dump(cohort.step_index)
    logger.close()


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="python -m sb3_meanfield.train",
        description="Learn a mean field equilibrium with DDPG, TD3 or SAC (rl_zoo3-style flags).",
    )
    parser.add_argument("--algo", default="td3", choices=sorted(ALGORITHMS), help="algorithm (default: td3)")
    parser.add_argument("--env", default="MFGLinearQuadratic-v0", help="mfg_envs id (default: MFGLinearQuadratic-v0)")
    steps_help = "transitions to collect (self-play: n_learners per env step; default: the config's)"
    parser.add_argument("-n", "--n-timesteps", type=positive_int, help=steps_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hyperparams", type=key_value, nargs="+", action="extend", metavar="KEY:VALUE", help="override the config"
    )
    parser.add_argument("-conf", "--conf-file", help="rl_zoo3 config module, .py or .yml (default: ours)")
    parser.add_argument("-f", "--log-folder", default="runs", help="parent of the run folder (default: runs)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (default 1; <= 0: torch's default)")
    parser.add_argument("--mode", choices=MODES, default="self-play", help="self-consistent training mode")
    parser.add_argument("--n-particles", type=positive_int, help="population size (default: from the config)")
    parser.add_argument("--n-learners", type=positive_int, help="self-play: learning particles (<= n-particles)")
    parser.add_argument("--sync-freq", type=positive_int, help="representative: env steps between population updates")
    parser.add_argument("--sync-mode", choices=SYNC_MODES, help="representative: fixed_point or fictitious_play")
    parser.add_argument("--eval-particles", type=positive_int, default=10_000, help="particles of the final evaluation")
    parser.add_argument("--tensorboard", action="store_true", help="also log to <run>/tensorboard (needs tensorboard)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-figures", action="store_true", help="do not write the run's figures")
    checkpoint_help = "env steps between checkpoints, also written at the end (default 1000; 0: none)"
    parser.add_argument("--checkpoint-freq", type=int, default=1000, help=checkpoint_help)
    resume_help = "continue RUN_DIR from its checkpoint with its config.yaml (only --no-progress/--no-figures allowed)"
    parser.add_argument("--resume", metavar="RUN_DIR", help=resume_help)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.checkpoint_freq < 0:
        parser.error(f"argument --checkpoint-freq: expected an integer >= 0, got {args.checkpoint_freq}")
    if args.resume is not None:
        defaults = vars(parser.parse_args([]))
        conflicting = [
            name for name, value in vars(args).items() if name not in RESUME_FLAGS and value != defaults[name]
        ]
        if conflicting:
            flags = ", ".join("--" + name.replace("_", "-") for name in conflicting)
            parser.error(f"--resume takes its settings from RUN_DIR/config.yaml; drop {flags}")
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        parser.error("--tensorboard needs the tensorboard package: pip install 'mfg-envs[tensorboard]'")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        train(args)
    except UsageError as error:
        build_parser().error(str(error))


if __name__ == "__main__":
    main()
