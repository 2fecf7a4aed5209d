"""``python -m sb3_meanfield.train --resume RUN_DIR``: a run interrupted after a checkpoint and resumed ends bit-for-bit
where the uninterrupted run with the same seed ends (actor, critics and their targets, replay buffer, logged metrics,
final Nash gap)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

from sb3_meanfield.common.callbacks import MeanFieldMonitor
from sb3_meanfield.common.checkpoint import CHECKPOINT_DIR, STATE_FILE, TrainingCheckpoint, load_checkpoint
from sb3_meanfield.sac import MFSAC
from sb3_meanfield.td3 import MFTD3
from sb3_meanfield.train import main, parse_args, train

th.set_num_threads(1)

ALGORITHMS = {"td3": MFTD3, "sac": MFSAC}

LQ = "MFGLinearQuadratic-v0"
SMALL_POLICY = {
    "net_arch": {"pi": [8], "qf": [8]},
    "actor_extractor_kwargs": {"state_arch": [8], "population_arch": [8]},
    "critic_extractor_kwargs": {"state_arch": [8], "population_arch": [8]},
}
#: (algorithm, mode, timesteps, extra flags, checkpoint frequency and crash step in env steps)
CASES = {
    "td3-self-play": ("td3", "self-play", 8 * 30, ["--hyperparams", "noise_type:ornstein-uhlenbeck"], 10, 13),
    "sac-self-play": ("sac", "self-play", 8 * 30, [], 10, 17),
    "td3-representative": (
        "td3",
        "representative",
        60,
        ["--sync-freq", "15", "--sync-mode", "fictitious_play"],
        25,
        33,
    ),
}
#: The monitor, and the averaging of the actor's last iterates, whose running sums must survive the checkpoint
#: (samples from 30 % of the run on, every 40 transitions: on both sides of the checkpoint and the crash).
CALLBACKS = (
    "callback:[{'sb3_meanfield.common.callbacks.MeanFieldMonitor': {'check_freq': 7, 'n_probe': 32}},"
    " {'sb3_meanfield.common.callbacks.PolicyAveraging': {'start': 0.3, 'every': 40}}]"
)


class Crash(Exception):
    """Stands for a killed process."""


def run_argv(log_folder: Path, case: str) -> list[str]:
    algo, mode, n_steps, extra, checkpoint_freq, _ = CASES[case]
    argv = ["--algo", algo, "--env", LQ, "--mode", mode, "-n", str(n_steps), "-f", str(log_folder)]
    argv += ["--n-particles", "32", "--eval-particles", "300", "--no-progress", "--no-figures"]
    argv += ["--n-learners", "8"] if mode == "self-play" else []  # a self-play flag
    argv += ["--checkpoint-freq", str(checkpoint_freq), *extra]
    return [*argv, "--hyperparams", "learning_starts:16", "batch_size:16", f"policy_kwargs:{SMALL_POLICY!r}", CALLBACKS]


def interrupted_run(monkeypatch: pytest.MonkeyPatch, log_folder: Path, case: str) -> Path:
    """Train until the crash step (after a checkpoint and a few more steps) and die there."""
    crash_step = CASES[case][-1]

    def crash(checkpoint: TrainingCheckpoint) -> bool:
        if checkpoint.model.num_timesteps // checkpoint.model.n_envs >= crash_step:
            raise Crash
        return True

    with monkeypatch.context() as patch:
        patch.setattr(TrainingCheckpoint, "_on_step", crash)
        with pytest.raises(Crash):
            train(parse_args(run_argv(log_folder, case)))
    (run_dir,) = log_folder.iterdir()
    return run_dir


def metrics_without_clock(run_dir: Path) -> list[dict[str, float]]:
    """metrics.json's rows without the wall-clock columns (time/fps, time/time_elapsed)."""
    rows = json.loads((run_dir / "metrics.json").read_text())["progress"]
    return [{key: value for key, value in row.items() if key not in ("time/fps", "time/time_elapsed")} for row in rows]


@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_run_ends_where_the_uninterrupted_run_ends(tmp_path, monkeypatch, case):
    reference = train(parse_args(run_argv(tmp_path / "reference", case)))
    crashed = interrupted_run(monkeypatch, tmp_path / "interrupted", case)
    algo, _, n_steps, _, checkpoint_freq, crash_step = CASES[case]
    at_checkpoint = load_checkpoint(crashed)["model"]
    env_steps = at_checkpoint.num_timesteps // at_checkpoint.n_envs
    assert checkpoint_freq <= env_steps < crash_step  # the crash lost the steps after the checkpoint
    assert train(parse_args(["--resume", str(crashed), "--no-progress", "--no-figures"])) == crashed

    expected, resumed = ALGORITHMS[algo].load(reference / "model.zip"), ALGORITHMS[algo].load(crashed / "model.zip")
    assert resumed.num_timesteps == expected.num_timesteps == n_steps
    expected_params, resumed_params = expected.policy.state_dict(), resumed.policy.state_dict()
    assert expected_params.keys() == resumed_params.keys()
    assert all(th.equal(expected_params[key], resumed_params[key]) for key in expected_params)
    expected_buffer = load_checkpoint(reference)["model"].replay_buffer
    resumed_buffer = load_checkpoint(crashed)["model"].replay_buffer
    assert (expected_buffer.pos, expected_buffer.full) == (resumed_buffer.pos, resumed_buffer.full)
    for name in ("observations", "next_observations"):
        for key, values in getattr(expected_buffer, name).items():
            np.testing.assert_array_equal(getattr(resumed_buffer, name)[key], values)
    for name in ("actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(resumed_buffer, name), getattr(expected_buffer, name))
    assert metrics_without_clock(crashed) == metrics_without_clock(reference)
    evaluations = [json.loads((run_dir / "metrics.json").read_text())["evaluation"] for run_dir in (crashed, reference)]
    assert evaluations[0] == evaluations[1]


def test_resume_continues_with_the_configured_settings(tmp_path):
    """A finished run resumes from its final checkpoint: nothing left to train, same evaluation."""
    finished = train(parse_args(run_argv(tmp_path, "td3-representative")))
    before = json.loads((finished / "metrics.json").read_text())
    train(parse_args(["--resume", str(finished), "--no-progress", "--no-figures"]))
    after = json.loads((finished / "metrics.json").read_text())
    assert after["evaluation"] == before["evaluation"]
    assert metrics_without_clock(finished) == [
        {key: value for key, value in row.items() if key not in ("time/fps", "time/time_elapsed")}
        for row in before["progress"]
    ]


def test_resume_with_a_new_total_trains_a_finished_run_longer(tmp_path, capsys):
    finished = train(parse_args(run_argv(tmp_path, "td3-self-play")))
    n_steps = CASES["td3-self-play"][2]
    assert "-n is the new total" in usage_error(capsys, ["--resume", str(finished), "-n", str(n_steps - 8)])
    longer = 2 * n_steps
    assert (
        train(parse_args(["--resume", str(finished), "-n", str(longer), "--no-progress", "--no-figures"])) == finished
    )
    assert MFTD3.load(finished / "model.zip").num_timesteps == longer
    saved = yaml.safe_load((finished / "config.yaml").read_text())
    assert saved["n_timesteps"] == saved["arguments"]["n_timesteps"] == longer  # a later --resume keeps the total
    steps = [row["time/total_timesteps"] for row in metrics_without_clock(finished)]
    assert steps == sorted(steps) and n_steps < steps[-1] == longer  # the metrics go on after the first total
    assert load_checkpoint(finished)["model"].num_timesteps == longer


@pytest.mark.parametrize("checkpoint_freq", [10, 0])
def test_ctrl_c_prints_one_line_with_the_resume_command_and_exits_130(tmp_path, monkeypatch, capsys, checkpoint_freq):
    def interrupt(checkpoint: TrainingCheckpoint) -> bool:
        if checkpoint.model.num_timesteps // checkpoint.model.n_envs >= 13:
            raise KeyboardInterrupt
        return True

    argv = [*run_argv(tmp_path, "td3-self-play"), "--checkpoint-freq", str(checkpoint_freq)]
    with monkeypatch.context() as patch:
        patch.setattr(TrainingCheckpoint, "_on_step", interrupt)
        if checkpoint_freq == 0:  # no checkpoint callback: interrupt through the monitor instead
            patch.setattr(MeanFieldMonitor, "_on_step", interrupt)
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    (run_dir,) = tmp_path.iterdir()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    if checkpoint_freq == 0:
        assert f"{run_dir} holds no checkpoint to resume from" in err
        return
    assert err.rstrip("\n").endswith(f"continue with: python -m sb3_meanfield.train --resume {run_dir}"), err
    assert str(run_dir / CHECKPOINT_DIR) in err
    assert train(parse_args(["--resume", str(run_dir), "--no-progress", "--no-figures"])) == run_dir
    assert MFTD3.load(run_dir / "model.zip").num_timesteps == CASES["td3-self-play"][2]


def usage_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_resume_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert "no readable config.yaml" in usage_error(capsys, ["--resume", str(tmp_path / "missing")])
    assert "drop --algo, --seed" in usage_error(capsys, ["--resume", str(tmp_path), "--seed", "3", "--algo", "sac"])
    run_dir = train(parse_args([*run_argv(tmp_path, "td3-representative"), "--checkpoint-freq", "0"]))
    assert not (run_dir / CHECKPOINT_DIR).exists()
    assert "no checkpoint to resume from" in usage_error(capsys, ["--resume", str(run_dir)])
    (run_dir / CHECKPOINT_DIR).mkdir()
    (run_dir / CHECKPOINT_DIR / STATE_FILE).write_bytes(b"not a checkpoint")
    assert "corrupt checkpoint" in usage_error(capsys, ["--resume", str(run_dir)])
    assert "--checkpoint-freq: expected an integer >= 0" in usage_error(capsys, ["--checkpoint-freq", "-1"])
