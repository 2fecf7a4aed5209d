"""What a sweep runs: its trials (:class:`Trial`, each one ``python -m sb3_meanfield.train`` run) and the search space
of an Optuna search (:class:`Distribution`), parsed and checked before anything is trained.

- :func:`grid_trials`: the grid of env ids x algorithms x hyperparameter values x seeds;
- :func:`grid_values` and :func:`distribution_item`: the ``--grid KEY:[V1, V2, ...]`` and ``--search KEY:DIST``
  items of the command line;
- :func:`check_trial`: a trial's train flags parsed by the train command itself and its configuration resolved
  (unknown ids, algorithms, flags and hyperparameters fail here, each naming what it accepts).

Hyperparameter values stay the text the user wrote (``"[64, 64]"``, ``"nn.ReLU"``): a trial passes them to the
train command as ``--hyperparams KEY:TEXT``, so every trial is a command line one can run again.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_meanfield.flags import UsageError, key_value, parse_value

if TYPE_CHECKING:
    from sb3_meanfield.train import OneLineErrorParser

#: The command every trial runs.
TRAIN_COMMAND = "python -m sb3_meanfield.train"
#: Train flags a sweep sets itself for each trial (argparse destination -> option strings).
OWNED_FLAGS = {
    "env": ("--env",),
    "algo": ("--algo",),
    "seed": ("--seed",),
    "log_folder": ("-f", "--log-folder"),
    "resume": ("--resume",),
}
#: Distributions of a search (``--search KEY:DIST``), by the form a user writes.
DISTRIBUTIONS = {
    "uniform": "uniform(LOW, HIGH)",
    "loguniform": "loguniform(LOW, HIGH) with LOW > 0",
    "randint": "randint(LOW, HIGH), integers LOW..HIGH",
    "choice": "choice(V1, V2, ...), two or more distinct values",
}


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: ``python -m sb3_meanfield.train`` with these settings, into ``LOGDIR/folder``.

    :param env: the ``mfg_envs`` id.
    :param algo: ``ddpg``, ``td3`` or ``sac``.
    :param seed: the run's seed.
    :param hyperparams: ``KEY:VALUE`` overrides of the config (the text of ``--hyperparams`` items).
    :param flags: more flags of the train command (``-n 20000``, ``--mode representative``, ...), not the ones the
        sweep sets (:data:`OWNED_FLAGS`).
    :param folder: the parent of the run folder inside the sweep's log folder; empty: ``<env>_<algo>_<seed>``.
    """

    env: str
    algo: str
    seed: int
    hyperparams: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    folder: str = ""

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> Trial:
        """The trial of :func:`dataclasses.asdict` data (as Tune keeps a trial's config: lists for tuples)."""
        sequences = {name: tuple(fields[name]) for name in ("hyperparams", "flags")}
        return cls(fields["env"], fields["algo"], int(fields["seed"]), folder=fields["folder"], **sequences)

    @property
    def run_parent(self) -> str:
        """The folder (relative to the sweep's log folder) the train command writes its run folder into."""
        return self.folder or f"{self.env}_{self.algo}_{self.seed}"

    def train_argv(self, log_folder: str | Path) -> list[str]:
        """The train command's arguments: the run writes ``log_folder/run_parent/<env>_<algo>_<seed>_<time>/``."""
        argv = [*self.flags, "--env", self.env, "--algo", self.algo, "--seed", str(self.seed)]
        argv += ["-f", str(Path(log_folder) / self.run_parent), "--no-progress"]
        return argv + (["--hyperparams", *self.hyperparams] if self.hyperparams else [])

    def command(self, log_folder: str | Path) -> str:
        """The train command line of this trial, as a shell would take it."""
        return f"{TRAIN_COMMAND} {shlex.join(self.train_argv(log_folder))}"

    def with_values(self, values: Mapping[str, Any]) -> Trial:
        """This trial with more hyperparameters (a search's sampled values, numbers or the text of a choice)."""
        return replace(self, hyperparams=(*self.hyperparams, *(f"{k}:{value_text(v)}" for k, v in values.items())))

    @property
    def label(self) -> str:
        """``<env> <algo> seed <seed>`` and the trial's own hyperparameters and flags."""
        extra = " ".join([*self.hyperparams, *self.flags])
        return f"{self.env} {self.algo} seed {self.seed}" + (f" {extra}" if extra else "")

    def hyperparam_keys(self) -> list[str]:
        """The keys this trial overrides with ``--hyperparams`` (its own and those in ``flags``)."""
        keys, in_hyperparams = [item.partition(":")[0] for item in self.hyperparams], False
        for token in self.flags:
            if token.startswith("-"):
                in_hyperparams = token == "--hyperparams"
            elif in_hyperparams:
                keys.append(token.partition(":")[0])
        return keys


def value_text(value: Any) -> str:
    """A sampled value as ``--hyperparams`` text: a choice's text as it is, a number as Python writes it (exact)."""
    if isinstance(value, str):
        return value
    number = value.item() if hasattr(value, "item") else value  # numpy scalars
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise TypeError(f"expected a number or text, got {value!r}")
    return repr(number)


@dataclass(frozen=True)
class Distribution:
    """One hyperparameter's distribution in a search: ``kind`` one of :data:`DISTRIBUTIONS`, with ``low`` and
    ``high`` (``uniform``, ``loguniform``, ``randint``, both ends included) or ``choices`` (the values' text)."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise UsageError(f"distribution must be one of {', '.join(DISTRIBUTIONS.values())}; got {self.kind!r}")
        if self.kind == "choice":
            if len(self.choices) < 2 or len(set(self.choices)) != len(self.choices):
                raise UsageError(f"choice needs two or more distinct values, got {list(self.choices)}")
            return
        finite = all(math.isfinite(bound) for bound in (self.low, self.high))
        if not finite or not self.low < self.high or (self.kind == "loguniform" and self.low <= 0):
            raise UsageError(f"{self.kind} needs {DISTRIBUTIONS[self.kind]}, LOW < HIGH; got ({self.low}, {self.high})")
        if self.kind == "randint" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise UsageError(f"randint needs integer bounds, got ({self.low}, {self.high})")

    def describe(self) -> str:
        """The distribution as written on the command line."""
        if self.kind == "choice":
            return f"choice({', '.join(self.choices)})"
        if self.kind == "randint":
            return f"randint({int(self.low)}, {int(self.high)})"
        return f"{self.kind}({self.low:g}, {self.high:g})"

    def tune_domain(self) -> Any:
        """The Ray Tune search domain (which ``OptunaSearch`` turns into Optuna's distribution)."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.choices))
        if self.kind == "randint":
            return tune.randint(int(self.low), int(self.high) + 1)  # Tune's upper bound is excluded
        return (tune.loguniform if self.kind == "loguniform" else tune.uniform)(self.low, self.high)


def source_items(text: str, node: ast.expr) -> tuple[str, ...]:
    """The source text of the items of a list or call ``node`` parsed from ``text``, each checked by
    :func:`~sb3_meanfield.flags.parse_value` (the train command will read it)."""
    items = node.elts if isinstance(node, ast.List) else node.args if isinstance(node, ast.Call) else []
    texts = tuple(ast.get_source_segment(text, item) or "" for item in items)
    for item in texts:
        parse_value(item)
    return texts


def grid_values(text: str) -> tuple[str, tuple[str, ...]]:
    """argparse type: ``KEY:[V1, V2, ...]``, a hyperparameter and its grid values (each a ``--hyperparams`` value)."""
    key, value = key_value(text)
    source = text.partition(":")[2].strip()
    node = ast.parse(source, mode="eval").body
    if not isinstance(value, list) or not value:
        raise argparse.ArgumentTypeError(f"{key}: expected a non-empty list of values, [V1, V2, ...], got {source!r}")
    values = source_items(source, node)
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{key}: the values of a grid must be distinct, got {source!r}")
    return key, values


def distribution_item(text: str) -> tuple[str, Distribution]:
    """argparse type: ``KEY:DIST``, a hyperparameter and its search distribution (:data:`DISTRIBUTIONS`)."""
    key, _, source = text.partition(":")
    accepted = "; ".join(DISTRIBUTIONS.values())
    if not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY:DIST with a Python identifier as key, got {text!r}")
    try:
        node = ast.parse(source.strip(), mode="eval").body
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords):
            raise ValueError("not a call")
        kind = node.func.id
        if kind == "choice":
            return key, Distribution(kind, choices=source_items(source.strip(), node))
        bounds = [ast.literal_eval(arg) for arg in node.args]
        if len(bounds) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds):
            raise ValueError("two numbers expected")
        return key, Distribution(kind, float(bounds[0]), float(bounds[1]))
    except UsageError as error:
        raise argparse.ArgumentTypeError(f"{key}: {error}") from None
    except (SyntaxError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"{key}: expected one of {accepted}; got {source.strip()!r}") from None


def grid_trials(
    envs: Sequence[str],
    algos: Sequence[str],
    seeds: Sequence[int],
    grid: Mapping[str, Sequence[str]] | None = None,
    flags: Sequence[str] = (),
) -> list[Trial]:
    """Every combination of env id, algorithm, hyperparameter values (``grid``: key -> values) and seed, in this
    order of nesting (the seeds of one configuration are neighbours), each with the train ``flags``."""
    for name, values in {"envs": envs, "algos": algos, "seeds": seeds, **(grid or {})}.items():
        if not values or len(set(values)) != len(values):
            raise UsageError(f"{name}: expected one or more distinct values, got {list(values)}")
    combos = list(itertools.product(*[[f"{key}:{value}" for value in values] for key, values in (grid or {}).items()]))
    return [
        Trial(env, algo, seed, tuple(combo), tuple(flags))
        for env, algo, combo, seed in itertools.product(envs, algos, combos, seeds)
    ]


def raising_parser() -> OneLineErrorParser:
    """The train command's parser, raising :class:`~sb3_meanfield.flags.UsageError` with its own message where the
    command would print it and exit (the sweep reports it, naming the trial)."""
    from sb3_meanfield.train import build_parser

    parser = build_parser()

    def error(message: str) -> None:
        raise UsageError(" ".join(message.split()))

    parser.error = error  # type: ignore[method-assign]
    return parser


def owned_flags(flags: Sequence[str]) -> list[str]:
    """The flags of :data:`OWNED_FLAGS` among the train flags ``flags``, read as the train command reads them
    (abbreviations included)."""
    parser = argparse.ArgumentParser(add_help=False)
    for dest, options in OWNED_FLAGS.items():
        parser.add_argument(*options, dest=dest, nargs="?", const="")
    given = vars(parser.parse_known_args(list(flags))[0])
    return ["/".join(OWNED_FLAGS[dest]) for dest, value in given.items() if value is not None]


def check_trial(trial: Trial, log_folder: str | Path) -> dict[str, Any]:
    """Parse ``trial``'s train arguments with the train command's parser and resolve its configuration (the
    checks that need no training); return the configuration. Raises :class:`~sb3_meanfield.flags.UsageError`
    naming the trial: a flag the sweep sets (:data:`OWNED_FLAGS`), ``--no-eval-gap`` (the sweep's objective is the
    final Nash gap), or any error of the train command (unknown id, algorithm, flag or hyperparameter)."""
    from sb3_meanfield.config import resolve_config
    from sb3_meanfield.train import parse_args

    try:
        owned = owned_flags(trial.flags)
        if owned:
            raise UsageError(f"{', '.join(owned)}: set by the sweep for every trial, not a flag of its trials")
        args = parse_args(trial.train_argv(log_folder), raising_parser())
        if args.no_eval_gap:
            raise UsageError("--no-eval-gap: the sweep scores every trial by its final Nash gap, which it skips")
        return resolve_config(args)
    except UsageError as error:
        raise UsageError(f"trial {trial.label}: {error}") from None
