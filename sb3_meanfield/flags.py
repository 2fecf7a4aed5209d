"""The vocabulary of ``python -m sb3_meanfield.train`` that parsing needs, without torch or Stable-Baselines3.

The command parses (and answers ``--help`` and argument errors) before it imports torch: this module holds the
choices, defaults, argparse types and the checks of a parsed command line that need no model;
:mod:`sb3_meanfield.config` re-exports them and does the rest (building, checking hyperparameters against the
algorithm).
"""

from __future__ import annotations

import argparse
import ast
import re
from typing import Any

import mfg_envs

#: ``--algo`` -> the algorithm class (dotted name, imported when a run is built).
ALGORITHMS = {"ddpg": "sb3_meanfield.ddpg.MFDDPG", "td3": "sb3_meanfield.td3.MFTD3", "sac": "sb3_meanfield.sac.MFSAC"}
#: How the population follows the learner (single-population ids; several populations are always self-play).
MODES = ("self-play", "representative")
#: Population updates of the representative mode (:class:`~sb3_meanfield.common.callbacks.PopulationSyncCallback`).
SYNC_MODES = ("fixed_point", "fictitious_play")
#: Schedules of several populations (:class:`~sb3_meanfield.training.MultiPopulationTrainer`).
SCHEDULES = ("alternating", "simultaneous")
#: Env steps between the checkpoints of a single-population run unless ``--checkpoint-freq`` says.
DEFAULT_CHECKPOINT_FREQ = 1000
#: Flags that may accompany ``--resume``: the display flags (they change no result) and ``-n`` (a new total, to
#: train a run longer); every other setting comes from config.yaml.
RESUME_FLAGS = ("resume", "no_progress", "no_figures", "n_timesteps")
_BARE_WORD = re.compile(r"^[\w.+-]+$")
#: ``--device`` values: SB3's ``auto`` (CUDA when available, else the CPU) or one of these torch device types, with an
#: optional ``:<index>``.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
_DEVICE = re.compile(rf"^(auto|({'|'.join(DEVICE_TYPES)})(:\d+)?)$")


class UsageError(ValueError):
    """A bad command line or configuration: reported as one line with exit code 2."""


# --------------------------------------------------------------------------- values
def _literal_node(node: ast.expr) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(keyword.arg is None for keyword in node.keywords):
            raise ValueError("dict(**...) is not supported")
        return {keyword.arg: _literal_node(keyword.value) for keyword in node.keywords}
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise ValueError("{**...} is not supported")
        return {
            _literal_node(key): _literal_node(value) for key, value in zip(node.keys, node.values) if key is not None
        }
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal_node(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nn":
        from torch import nn  # activation classes, as rl_zoo3 configs; only a value that names one imports torch

        if isinstance(getattr(nn, node.attr, None), type):
            return getattr(nn, node.attr)
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


def integer_at_least(text: str, low: int) -> int:
    """``text`` as an integer ``>= low``, else ``argparse.ArgumentTypeError`` naming the bound."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer ``>= 1``."""
    return integer_at_least(text, 1)


def replicate_count(text: str) -> int:
    """argparse type: an integer ``>= 2`` (a standard error needs two replicates)."""
    return integer_at_least(text, 2)


def device_name(text: str) -> str:
    """argparse type: ``auto`` or a torch device of :data:`DEVICE_TYPES`, e.g. ``cpu``, ``cuda``, ``cuda:1`` (whether
    the machine has it is checked once torch is imported, :func:`sb3_meanfield.config.check_device`)."""
    if not _DEVICE.match(text):
        accepted = f"auto, or {', '.join(DEVICE_TYPES)} with an optional :<index>"
        raise argparse.ArgumentTypeError(f"expected a torch device ({accepted}), got {text!r}")
    return text


# --------------------------------------------------------------------------- checks of a parsed command line
def is_multi(env_id: str) -> bool:
    """Whether ``env_id`` is a game of several populations (one model per population)."""
    return env_id in mfg_envs.MULTI_ENV_IDS


def check_env_id(env_id: str) -> None:
    """A registered ``mfg_envs`` id, else :class:`UsageError`."""
    if env_id not in mfg_envs.ALL_ENV_IDS:
        raise UsageError(f"unknown env id {env_id!r}; the mfg_envs ids are {', '.join(mfg_envs.ALL_ENV_IDS)}")


def check_flags(args: argparse.Namespace) -> None:
    """Refuse the flags that do not apply to the kind of ``args.env`` or to ``args.mode`` (:class:`UsageError`):

    - ``--mode representative``, ``--sync-*``, ``--tensorboard`` and ``--checkpoint-freq`` are single-population
      flags; ``--schedule`` and ``--switch-freq`` multi-population ones;
    - one population: ``--n-learners`` is a self-play flag, ``--sync-freq`` and ``--sync-mode`` representative ones.
    """
    mode = getattr(args, "mode", "self-play")
    if is_multi(args.env):
        given = {
            f"--mode {mode}": mode != "self-play",
            "--sync-freq": args.sync_freq is not None,
            "--sync-mode": args.sync_mode is not None,
            "--tensorboard": getattr(args, "tensorboard", False),
            "--checkpoint-freq": getattr(args, "checkpoint_freq", None) not in (None, 0),
        }
        where = "single-population ids"
        hint = f"{args.env} trains one model per population, each in self-play (see --schedule and --switch-freq)"
    else:
        given = {"--schedule": args.schedule is not None, "--switch-freq": args.switch_freq is not None}
        where = f"multi-population ids ({', '.join(mfg_envs.MULTI_ENV_IDS)})"
        hint = f"{args.env} has one population (see --mode)"
        if not any(given.values()):
            other = "representative" if mode == "self-play" else "self-play"
            given = {
                "--n-learners": mode == "representative" and args.n_learners is not None,
                "--sync-freq": mode == "self-play" and args.sync_freq is not None,
                "--sync-mode": mode == "self-play" and args.sync_mode is not None,
            }
            where = f"--mode {other}"
            hint = (
                "in representative mode each SB3 env is one learning particle (n_envs of them)"
                if mode == "representative"
                else "in self-play the population is the learner itself, it needs no update"
            )
    flags = [flag for flag, present in given.items() if present]
    if flags:
        raise UsageError(f"{', '.join(flags)} only appl{'ies' if len(flags) == 1 else 'y'} to {where}; {hint}")
