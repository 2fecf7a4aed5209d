"""The configuration of a ``python -m sb3_meanfield.train`` run: reading it, resolving it, building from it.

- reading: :func:`parse_value` (config values without ``eval``), :func:`key_value` (``--hyperparams`` items),
  :func:`load_config` (an rl_zoo3 config: module, ``.py`` or YAML), :func:`section`;
- resolving: :func:`resolve_config` turns the parsed command line into the run's plain-data configuration
  (saved as ``config.yaml``): the config's ``hyperparams[env_id]`` (or ``default``), then, in self-play, its
  ``self_play[env_id]`` overrides, then ``--hyperparams`` and the flags; the config's Nash-gap and monitor
  callbacks check at least :data:`MIN_CHECKS` times per run (:func:`adapt_check_freqs`; dp gaps keep their period);
- building: :func:`build` (one population: env, model, callbacks) and :func:`build_trainer` (several
  populations: a :class:`~sb3_meanfield.training.MultiPopulationTrainer` and callbacks) from a resolved
  configuration.

A bad command line or configuration raises :class:`UsageError` (reported as one line, exit code 2). What parsing
needs (choices, argparse types, the checks of flags) is :mod:`sb3_meanfield.flags`, re-exported here.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from copy import deepcopy
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import mfg_envs  # noqa: F401  (registers the ids for gym.make)
from mfg_envs.game import game_of
from sb3_meanfield.common.callbacks import MeanFieldMonitor, PopulationSyncCallback
from sb3_meanfield.common.encoders import POPULATION_ENCODERS
from sb3_meanfield.common.noise import make_action_noise
from sb3_meanfield.common.vec_env import PopulationVecEnv, population_envs
from sb3_meanfield.evaluation import NashGapCallback
from sb3_meanfield.flags import (
    ALGORITHMS,
    DEFAULT_CHECKPOINT_FREQ,
    MODES,
    RESUME_FLAGS,
    SCHEDULES,
    UsageError,
    check_env_id,
    check_flags,
    device_name,
    is_multi,
    key_value,
    parse_value,
    positive_int,
)
from sb3_meanfield.training import MultiPopulationTrainer

__all__ = [  # the command line's vocabulary (sb3_meanfield.flags) is re-exported
    "ALGORITHMS",
    "DEFAULT_CHECKPOINT_FREQ",
    "MIN_CHECKS",
    "MODES",
    "RESUME_FLAGS",
    "SCHEDULES",
    "UsageError",
    "build",
    "build_trainer",
    "check_flags",
    "is_multi",
    "key_value",
    "parse_value",
    "positive_int",
    "resolve_config",
]

#: Config keys the launcher consumes; every other key is a keyword of the algorithm. ``population_encoder``
#: (:data:`~sb3_meanfield.common.encoders.POPULATION_ENCODERS`) sets the population encoder of the actor's and the
#: critic's extractors in ``policy_kwargs`` (:func:`with_population_encoder`): ``population_encoder:none`` trains the
#: same networks without the population input.
LAUNCHER_KEYS = (
    "n_timesteps",
    "n_envs",
    "env_kwargs",
    "noise_type",
    "noise_std",
    "noise_final_std",
    "callback",
    "population_encoder",
)
#: Self-play keys (population size and learning particles), also settable with flags.
SELF_PLAY_KEYS = ("n_particles", "n_learners")
#: Config keys of the multi-population ids only (also settable with flags).
MULTI_KEYS = ("switch_freq",)
#: Learning particles per population of a multi-population id when neither the config nor a flag says.
MULTI_N_LEARNERS = 64
#: Fewest Nash-gap checks and monitor checks of a run: the config's ``eval_freq`` / ``check_freq`` (env steps)
#: are capped at ``env steps of the run // MIN_CHECKS``, but not below one episode (:func:`adapt_check_freqs`;
#: dp Nash-gap checks keep their period).
MIN_CHECKS = 10


# --------------------------------------------------------------------------- config files
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
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names - {"self", "policy", "env"}


# --------------------------------------------------------------------------- resolving
def config_params(args: argparse.Namespace) -> dict[str, Any]:
    """The config's entry for ``args.env``, its self-play overrides and ``--hyperparams``, in this order of
    precedence (unknown keys raise :class:`UsageError`)."""
    hyperparams, self_play = load_config(args.conf_file or f"sb3_meanfield.hyperparams.{args.algo}")
    params = section(hyperparams, args.env)
    if is_multi(args.env) and args.env not in hyperparams:  # the default entry's callbacks are single-population ones
        params.pop("callback", None)
    if args.mode == "self-play":
        params.update(section(self_play, args.env))
    overrides = dict(args.hyperparams or [])
    if args.mode == "representative" and "n_learners" in overrides:
        raise UsageError(
            "n_learners only applies to --mode self-play; in representative mode each SB3 env is one "
            "learning particle (n_envs of them)"
        )
    params.update(overrides)
    known = {*LAUNCHER_KEYS, *SELF_PLAY_KEYS, *(MULTI_KEYS if is_multi(args.env) else ()), "policy"}
    unknown = sorted(set(params) - known - accepted_keywords(import_name(ALGORITHMS[args.algo])))
    if unknown:
        raise UsageError(f"unknown hyperparameter(s) {unknown} for {args.algo}")
    return params


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The full run configuration (plain data, saved as ``config.yaml``): config file, mode overrides, flags.

    Several populations add ``schedule`` and ``switch_freq`` (``None``: one episode) and have no ``n_envs``
    (one shared game); their ``n_learners`` defaults to :data:`MULTI_N_LEARNERS` per population.
    """
    check_env_id(args.env)
    check_flags(args)
    multi = is_multi(args.env)
    params = config_params(args)
    if "population_encoder" in params:
        encoder = params.pop("population_encoder")
        params["policy_kwargs"] = with_population_encoder(params.get("policy_kwargs"), encoder)
    env_kwargs, n_particles = pop_population(params)
    n_learners = params.pop("n_learners", None)
    n_learners = args.n_learners or n_learners or (MULTI_N_LEARNERS if multi else None)
    n_timesteps = params.pop("n_timesteps", 100_000)
    switch_freq = params.pop("switch_freq", None)
    switch_freq = args.switch_freq or switch_freq
    n_envs = int(params.pop("n_envs", 1))
    callbacks = params.pop("callback", None) or []
    callbacks = [callbacks] if isinstance(callbacks, (str, dict)) else list(callbacks)
    if args.mode == "representative":
        callbacks = sync_callback_entries(callbacks, args.sync_freq, args.sync_mode)
    else:  # self-play: the population is the learner itself
        callbacks = [entry for entry in callbacks if not _is_sync(entry)]
    n_timesteps = int(args.n_timesteps or n_timesteps)
    device = params.pop("device", "auto")  # a config's device; the --device flag overrides it
    n_particles = int(args.n_particles or n_particles)
    if "callback" not in dict(args.hyperparams or []):  # callbacks given on the command line are taken as they are
        envs = n_envs if args.mode == "representative" else int(n_learners or n_particles)
        callbacks = adapt_check_freqs(callbacks, n_timesteps // envs, episode_length(args.env, env_kwargs))
    return {
        "algo": args.algo,
        "algo_class": ALGORITHMS[args.algo],
        "env": args.env,
        "mode": args.mode,
        **({"schedule": args.schedule or SCHEDULES[0], "switch_freq": _optional_int(switch_freq)} if multi else {}),
        "seed": args.seed,
        "n_timesteps": n_timesteps,
        **({} if multi else {"n_envs": n_envs}),
        "n_particles": n_particles,
        "n_learners": _optional_int(n_learners),
        "env_kwargs": env_kwargs,
        "noise": pop_noise(params),
        "callback": callbacks,
        "policy": params.pop("policy", "MeanFieldPolicy"),
        "device": check_device(device if args.device == "auto" else args.device),
        "algo_kwargs": params,
    }


def check_device(device: str) -> str:
    """``device`` (``auto`` or a torch device name, :func:`sb3_meanfield.flags.device_name`) when this machine has it,
    else :class:`UsageError` naming ``--device`` (SB3 would silently fall back to the CPU for a missing CUDA)."""
    try:
        device_name(device)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"--device: {error}") from None
    if device == "auto":
        return device
    target = th.device(device)
    backend = {"cuda": th.cuda, "mps": th.backends.mps, "xpu": getattr(th, "xpu", None)}.get(target.type)
    if backend is not None and not (backend.is_available() and (target.index or 0) < device_count(backend)):
        raise UsageError(f"--device {device}: this machine has no such {target.type} device; use cpu or auto")
    return device


def device_count(backend: Any) -> int:
    """Devices of a torch backend module (``mps`` has one when it is available)."""
    return int(backend.device_count()) if hasattr(backend, "device_count") else 1


def with_population_encoder(policy_kwargs: dict[str, Any] | None, encoder: Any) -> dict[str, Any]:
    """``policy_kwargs`` (a copy) whose actor and critic extractors both use the population encoder ``encoder``
    (the shared ``features_extractor_kwargs``, and each role's own keywords where they name one): the config key
    ``population_encoder``, e.g. ``--hyperparams population_encoder:none`` (the networks without the population
    input). A name outside :data:`~sb3_meanfield.common.encoders.POPULATION_ENCODERS` raises :class:`UsageError`."""
    if encoder not in POPULATION_ENCODERS:
        raise UsageError(f"population_encoder must be one of {list(POPULATION_ENCODERS)}, got {encoder!r}")
    kwargs = deepcopy(policy_kwargs or {})
    kwargs["features_extractor_kwargs"] = {
        **(kwargs.get("features_extractor_kwargs") or {}),
        "population_encoder": encoder,
    }
    for role in ("actor_extractor_kwargs", "critic_extractor_kwargs"):
        if "population_encoder" in (kwargs.get(role) or {}):
            kwargs[role] = {**kwargs[role], "population_encoder": encoder}
    return kwargs


def episode_length(env_id: str, env_kwargs: dict[str, Any]) -> int:
    """Env steps of one episode of ``env_id`` with ``env_kwargs`` (of its first population; 1 for keywords that
    :func:`make_env` will reject)."""
    try:
        return game_of(gym.make(env_id, **{**env_kwargs, "n_particles": 1})).model.populations[0].n_steps
    except (TypeError, ValueError):
        return 1


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


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


# --------------------------------------------------------------------------- callback entries
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


def adapt_check_freqs(entries: list[Any], env_steps: int, episode: int = 1) -> list[Any]:
    """The callback entries with the checking period of every Nash-gap callback (``eval_freq``) and convergence
    monitor (``check_freq``) capped at ``max(env_steps // MIN_CHECKS, episode)``: a run of ``env_steps`` env steps (of
    its VecEnv, or of the game for several populations) gets :data:`MIN_CHECKS` checks however short it is, but
    checks at most once per ``episode`` env steps (an episode's length). A dp Nash-gap callback keeps its period: its
    check costs grid solves whatever the run's length (a short run gets none; its final evaluation has the gap)."""
    cap = max(env_steps // MIN_CHECKS, episode, 1)
    adapted = []
    for entry in entries:
        name = _callback_name(entry)
        try:
            cls = import_name(name)
        except UsageError:  # reported by make_callbacks
            cls = None
        bases = [
            base for base in (NashGapCallback, MeanFieldMonitor) if isinstance(cls, type) and issubclass(cls, base)
        ]
        kwargs = dict(entry[name] or {}) if bases and isinstance(entry, dict) else {}
        if bases and kwargs.get("method") != "dp":
            key = "eval_freq" if bases[0] is NashGapCallback else "check_freq"
            period = kwargs.get(key, inspect.signature(bases[0]).parameters[key].default)
            if isinstance(period, int) and period > cap:
                entry = {name: {**kwargs, key: cap}}
        adapted.append(entry)
    return adapted


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


# --------------------------------------------------------------------------- building
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


def make_env(config: dict[str, Any]) -> VecEnv:
    """One population. Self-play: one monitored ``PopulationVecEnv``; representative: ``n_envs`` single-agent envs."""
    env_kwargs = config["env_kwargs"]
    try:
        if config["mode"] == "self-play":
            venv = PopulationVecEnv.from_id(config["env"], config["n_particles"], config["n_learners"], **env_kwargs)
            env: VecEnv = VecMonitor(venv)
            env.seed(config["seed"])
            return env
        env_kwargs = {**env_kwargs, "n_particles": config["n_particles"]}
        return make_vec_env(config["env"], config["n_envs"], config["seed"], env_kwargs=env_kwargs)
    except (TypeError, ValueError) as error:
        raise UsageError(f"invalid environment settings for {config['env']}: {error}") from None


def make_model(config: dict[str, Any], env: VecEnv) -> BaseAlgorithm:
    """The configured algorithm on ``env`` (learning-rate schedule, exploration noise decaying over the run), on the
    configured torch ``device``."""
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
                get_action_dim(env.action_space),
                env.num_envs,
                noise["std"],
                final_sigma=noise["final_std"],
                decay_steps=calls,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
    policy = config["policy"]
    policy = import_name(policy) if "." in policy else policy
    device = config.get("device", "auto")  # the config.yaml of a run resumed from before --device has none
    try:
        return algo_class(policy, env, seed=config["seed"], device=device, verbose=0, **kwargs)
    except (TypeError, ValueError, KeyError) as error:
        raise UsageError(f"invalid hyperparameters for {config['algo']}: {error}") from None


def build(config: dict[str, Any]) -> tuple[VecEnv, BaseAlgorithm, list[BaseCallback]]:
    """Env, model and callbacks of a resolved single-population config (in self-play the non-learning particles
    follow the model being trained: the library binds them when it starts learning)."""
    env = make_env(config)
    return env, make_model(config, env), make_callbacks(config["callback"])


def build_trainer(config: dict[str, Any]) -> tuple[MultiPopulationTrainer, list[BaseCallback]]:
    """A resolved multi-population config's trainer (one model per population, each built as :func:`build` builds
    its model, model ``k`` seeded ``seed + k``, on one shared game) and callbacks."""
    try:
        env = gym.make(config["env"], n_particles=config["n_particles"], **config["env_kwargs"])
        venvs = population_envs(env, config["n_learners"])
    except (TypeError, ValueError) as error:
        raise UsageError(f"invalid environment settings for {config['env']}: {error}") from None
    models = [make_model({**config, "seed": config["seed"] + k}, venv) for k, venv in enumerate(venvs)]
    try:
        trainer = MultiPopulationTrainer(models, config["schedule"], config["switch_freq"])
    except ValueError as error:
        raise UsageError(str(error)) from None
    return trainer, make_callbacks(config["callback"])
