"""``python -m sb3_meanfield.train_multi``: ``python -m sb3_meanfield.train`` (which takes every id) for the
multi-population ids under its former flags: ``--mode alternating|simultaneous`` is train's ``--schedule``,
``--env`` takes the ids of ``mfg_envs.MULTI_ENV_IDS`` only (default: MFGLinearQuadraticMulti-v0)."""

from __future__ import annotations

import argparse

import mfg_envs
from sb3_meanfield import train
from sb3_meanfield.flags import SCHEDULES

DEFAULT_ENV = "MFGLinearQuadraticMulti-v0"


def multi_env_id(text: str) -> str:
    """argparse type: a multi-population id."""
    if text not in mfg_envs.MULTI_ENV_IDS:
        ids = ", ".join(mfg_envs.MULTI_ENV_IDS)
        raise argparse.ArgumentTypeError(
            f"unknown multi-population env id {text!r}; the ids are {ids} ({train.PROG} takes every id)"
        )
    return text


def build_parser() -> train.OneLineErrorParser:
    """Train's parser with this command's ``--env`` and ``--mode`` (train's ``--mode`` is self-play here)."""
    parser = train.build_parser("python -m sb3_meanfield.train_multi", conflict_handler="resolve")
    parser.description = f"{train.PROG} for the multi-population ids; --mode is its --schedule."
    parser.add_argument("--env", type=multi_env_id, default=DEFAULT_ENV, help=f"multi-population id ({DEFAULT_ENV})")
    parser.add_argument("--mode", dest="schedule", choices=SCHEDULES, help="alternating (default) or simultaneous")
    parser.set_defaults(mode="self-play")
    return parser


def main(argv: list[str] | None = None) -> None:
    train.main(argv, build_parser())


if __name__ == "__main__":
    main()
