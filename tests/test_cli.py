"""The ``python -m sb3_meanfield.train`` command line (every id; the multi-population runs themselves are tested in
test_multi_training.py) and the rl_zoo3 command with our config."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

import mfg_envs
from mfg_envs.game import game_of
from sb3_meanfield.config import (
    MIN_CHECKS,
    UsageError,
    accepted_keywords,
    build,
    key_value,
    parse_value,
    resolve_config,
    schedule,
    with_population_encoder,
)
from sb3_meanfield.plotting import gap_checks, learning_curves_figure, load_metrics
from sb3_meanfield.run import FINAL_REPLICATES, RANDOM_POPULATION_REPLICATES, final_replicates, format_evaluation
from sb3_meanfield.td3 import MFTD3
from sb3_meanfield.train import build_parser, main, parse_args, train

LQ = "MFGLinearQuadratic-v0"
LQM = "MFGLinearQuadraticMulti-v0"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(*argv: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *argv], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# --------------------------------------------------------------------------- usage errors, in subprocesses
BAD_COMMANDS = {
    "unknown env id": (
        ["--env", "Nope-v0"],
        f"unknown env id 'Nope-v0'; the mfg_envs ids are {', '.join(mfg_envs.ALL_ENV_IDS)}",
    ),
    "unknown algo": (["--algo", "ppo"], "argument --algo: invalid choice: 'ppo'"),
    "hyperparams without colon": (["--hyperparams", "learning_rate"], "expected key:value"),
    "malformed hyperparams value": (["--hyperparams", "batch_size:[1,"], "malformed value"),
    "unknown hyperparameter": (["--hyperparams", "learning_rat:0.1"], "unknown hyperparameter(s) ['learning_rat']"),
    "unwritable log folder": (["-f", "{file}/runs"], "cannot write to log folder"),
    "zero steps": (["-n", "0"], "expected an integer >= 1"),
    "one replicate": (["--eval-replicates", "1"], "argument --eval-replicates: expected an integer >= 2, got '1'"),
    "unknown population encoder": (
        ["--hyperparams", "population_encoder:rnn"],
        "population_encoder must be one of ['mlp', 'cnn', 'deepsets', 'none'], got 'rnn'",
    ),
    "more learners than particles": (["--n-particles", "4", "--n-learners", "8"], "n_learners must be in [1,"),
    "unknown device": (["--device", "gpu"], "argument --device: expected a torch device (auto, or cpu, cuda, mps"),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """All bad commands at once (each pays the torch import): ``{case: (returncode, stderr)}``."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "a_file").write_text("not a folder")
    processes = {
        case: run("-m", "sb3_meanfield.train", *[arg.format(file=folder / "a_file") for arg in argv], cwd=folder)
        for case, (argv, _) in BAD_COMMANDS.items()
    }
    results = {case: (process.wait(timeout=120), process.stderr.read()) for case, process in processes.items()}
    assert not any((folder / name).exists() for name in ("runs", "a_file/runs"))
    return results


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_arguments_give_one_line_and_exit_code_2(bad_runs, case):
    returncode, stderr = bad_runs[case]
    assert returncode == 2
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert stderr.startswith("python -m sb3_meanfield.train: error: ")
    assert BAD_COMMANDS[case][1] in stderr
    assert "Traceback" not in stderr


#: Flags that do not apply to the kind of id, and more bad values, in the process (the command's own exit is tested
#: above): ``argv -> message``.
USAGE_ERRORS = {
    "more learners than particles, several populations": (
        ["--env", LQM, "--n-particles", "4", "--n-learners", "8"],
        "n_learners must be in [1, 4]",
    ),
    "representative mode, several populations": (
        ["--env", LQM, "--mode", "representative"],
        "--mode representative only applies to single-population ids; MFGLinearQuadraticMulti-v0 trains one model per",
    ),
    "sync flags, several populations": (
        ["--env", LQM, "--sync-freq", "5", "--sync-mode", "fictitious_play"],
        "--sync-freq, --sync-mode only apply to single-population ids",
    ),
    "checkpoints, several populations": (["--env", LQM, "--checkpoint-freq", "5"], "--checkpoint-freq only applies"),
    "schedule, one population": (["--schedule", "simultaneous"], "--schedule only applies to multi-population ids"),
    "switch-freq, one population": (["--switch-freq", "3"], "--switch-freq only applies to multi-population ids"),
    "unknown schedule": (["--env", LQM, "--schedule", "both"], "argument --schedule: invalid choice: 'both'"),
    "multi-population key, one population": (["--hyperparams", "switch_freq:3"], "unknown hyperparameter(s) ['switch_"),
    "learners, representative mode": (
        ["--mode", "representative", "--n-learners", "8"],
        "--n-learners only applies to --mode self-play; in representative mode each SB3 env is one learning particle",
    ),
    "learners key, representative mode": (
        ["--mode", "representative", "--hyperparams", "n_learners:8"],
        "n_learners only applies to --mode self-play",
    ),
    "sync flags, self-play": (
        ["--sync-freq", "5", "--sync-mode", "fixed_point"],
        "--sync-freq, --sync-mode only apply to --mode representative",
    ),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_flags_for_the_other_kind_of_id_are_usage_errors(case, capsys, tmp_path):
    argv, message = USAGE_ERRORS[case]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "-f", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("python -m sb3_meanfield.train: error: ") and message in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_flag_without_tensorboard_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--tensorboard"])
    assert exit_info.value.code == 2
    assert "pip install 'mfg-envs[tensorboard]'" in capsys.readouterr().err


#: Command lines answered without torch: ``--help`` and argument errors of both launchers.
LIGHT_COMMANDS = {
    "help": ("sb3_meanfield.train", ["--help"], 0),
    "multi help": ("sb3_meanfield.train_multi", ["--help"], 0),
    "unknown algo": ("sb3_meanfield.train", ["--algo", "ppo"], 2),
    "unknown env id": ("sb3_meanfield.train", ["--env", "Nope-v0"], 2),
    "learners, representative": ("sb3_meanfield.train", ["--mode", "representative", "--n-learners", "3"], 2),
    "schedule, one population": ("sb3_meanfield.train", ["--schedule", "simultaneous"], 2),
    "resume with other settings": ("sb3_meanfield.train", ["--resume", "RUN", "--seed", "3"], 2),
    "unknown device": ("sb3_meanfield.train", ["--device", "cuda:x"], 2),
}
IMPORTED = """
import runpy, sys
sys.argv, code = [sys.argv[1], *sys.argv[2:]], 0
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted(name for name in ("torch", "stable_baselines3") if name in sys.modules)
print(code or 0, *heavy, file=sys.stderr)
"""


@pytest.fixture(scope="module")
def light_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("light")
    processes = {
        case: run("-c", IMPORTED, module, *argv, cwd=folder) for case, (module, argv, _) in LIGHT_COMMANDS.items()
    }
    return {case: process.communicate(timeout=120) for case, process in processes.items()}


@pytest.mark.parametrize("case", sorted(LIGHT_COMMANDS))
def test_help_and_argument_errors_do_not_import_torch(light_runs, case):
    """Parsing comes first: --help and usage errors answer in a fraction of a second, without torch or SB3."""
    stdout, stderr = light_runs[case]
    assert stderr.splitlines()[-1] == str(LIGHT_COMMANDS[case][2]), stderr  # the exit code, and no heavy module
    assert "Traceback" not in stderr
    if case == "help":
        assert "checkpoint/" in stdout and "--resume RUN_DIR -n N" in stdout


def test_help_tells_where_checkpoints_are_and_how_to_resume():
    text = " ".join(build_parser().format_help().split())
    assert "RUN_DIR/checkpoint/" in text and "'--resume RUN_DIR' continues it exactly" in text
    assert "'--resume RUN_DIR -n N' trains it (finished or not) to N transitions in all" in text


def test_gap_and_monitor_periods_give_short_runs_several_checks(tmp_path):
    """The configs check every 1000 env steps; a run of 781 env steps (the docs' -n 50000 with 64 learners) still
    gets MIN_CHECKS checks, a long run keeps the configured period, checks are at most once per episode, and
    callbacks given on the command line are taken as they are."""

    def periods(*argv):
        config = resolve_config(parse_args(["--env", "MFGCrowdLQ-v0", *argv]))
        return {next(iter(entry)).rpartition(".")[2]: next(iter(entry.values())) for entry in config["callback"]}

    short = periods("-n", "50000")
    assert short["NashGapCallback"] == {"eval_freq": 50000 // 64 // MIN_CHECKS, "n_particles": 2000}
    assert short["MeanFieldMonitor"] == {"check_freq": 50000 // 64 // MIN_CHECKS}
    assert periods()["NashGapCallback"]["eval_freq"] == 1000  # 800,000 transitions: 12,500 env steps
    assert periods("-n", "6400")["NashGapCallback"]["eval_freq"] == 40  # not below one episode (40 steps)
    representative = periods("--mode", "representative", "-n", "5000", "--hyperparams", "n_envs:2")
    assert representative["NashGapCallback"]["eval_freq"] == 5000 // 2 // MIN_CHECKS
    given = "callback:[{'sb3_meanfield.NashGapCallback': {'eval_freq': 900}}]"
    assert periods("-n", "50000", "--hyperparams", given) == {"NashGapCallback": {"eval_freq": 900}}


def test_crowd_configs_check_the_dp_gap_at_their_own_period(tmp_path):
    """The crowds log the dp gap like the exact ids the exact one; a dp check costs grid solves whatever the run's
    length, so its period is not capped (a short run gets none: its final evaluation has the gap)."""
    # several populations: env steps of the game, which moves one population at a time (alternating schedule)
    for env_id, period in (("MFGCrowd-v0", 2500), ("MFGCrowdMulti-v0", 5000)):
        for argv in ([], ["-n", "50000"]):
            config = resolve_config(parse_args(["--env", env_id, "-f", str(tmp_path), *argv]))
            gaps = [entry for entry in config["callback"] if "NashGapCallback" in next(iter(entry))]
            assert gaps == [{"sb3_meanfield.NashGapCallback": {"eval_freq": period, "method": "dp"}}]
            assert gap_checks(config) == ("dp", 1000)


# --------------------------------------------------------------------------- the final lines of a run
FIGURES = {"gap": 0.0123456, "standard_error": 0.00123, "relative_gap": 0.0456, "policy_return": -2.345678}
FIGURES["best_response_return"] = -2.333
EXACT_LINE = "exact Nash gap 0.01235 +- 0.0012 (relative gap 0.0456; policy return -2.346, best response return -2.333)"


def test_final_lines_name_the_gap_s_method_and_keep_the_exact_ones():
    """The exact lines are those printed before the method was saved (a result without ``method`` is exact)."""
    assert format_evaluation(FIGURES) == format_evaluation({"method": "exact", **FIGURES}) == EXACT_LINE
    assert format_evaluation({"method": "dp", **FIGURES}) == EXACT_LINE.replace("exact", "dp")
    several = {"gaps": {"red": FIGURES, "blue": FIGURES}, "max_gap": 0.0123456, "max_relative_gap": 0.0456}
    lines = [f"red: {EXACT_LINE}", f"blue: {EXACT_LINE}", "max Nash gap 0.01235 (max relative gap 0.0456)"]
    assert format_evaluation(several) == "\n".join(lines)
    assert format_evaluation({"method": "dp", **several}) == "\n".join(lines).replace("exact", "dp")


#: A crowd small enough for the default suite (dt = 0.1 as the shipped crowd's), its dp checks on a coarse grid.
SMALL_CROWD = "env_kwargs:dict(horizon=0.5, n_steps=5, n_bins=6)"
COARSE = "dict(nodes_per_cell=1, velocity_step=0.1, velocity_range=1.5, actions_per_axis=5)"
DP_CHECKS = f"callback:[{{'sb3_meanfield.NashGapCallback': dict(eval_freq=15, method='dp', dp_resolution={COARSE})}}]"
DP_LINE = r"dp Nash gap \S+ \+- \S+ \(relative gap \S+; policy return \S+, best response return \S+\)"


def crowd_argv(tmp_path: Path, env_id: str) -> list[str]:
    """240 transitions of 8 learners (30 env steps: dp checks at 15 and 30), a final evaluation of 200 particles."""
    argv = ["--env", env_id, "-n", "240", "--n-particles", "16", "--n-learners", "8", "--eval-particles", "200"]
    argv += ["--no-progress", "--no-figures", "-f", str(tmp_path), "--hyperparams", "learning_starts:16"]
    return [*argv, "batch_size:16", "policy_kwargs:dict(net_arch=dict(pi=[8], qf=[8]))", SMALL_CROWD, DP_CHECKS]


def test_a_crowd_run_logs_and_prints_the_dp_gap(tmp_path, capsys):
    run_dir = train(parse_args(crowd_argv(tmp_path, "MFGCrowd-v0")))
    out = capsys.readouterr().out
    result = json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    assert result["method"] == "dp"
    (line,) = re.findall(f"^{DP_LINE}$", out, re.MULTILINE)
    assert line == format_evaluation(result)
    metrics = load_metrics(run_dir / "metrics.csv")
    checked = metrics["time/total_timesteps"][np.isfinite(metrics["mfg/nash_gap"])]
    assert list(checked) == [15 * 8, 30 * 8]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    method, particles = gap_checks(config)
    figure = learning_curves_figure(metrics, final=result, check_particles=particles, method=method)
    labels = [label for axis in figure.axes for label in axis.get_legend_handles_labels()[1]]
    assert "dp Nash gap checks during training (1,000 particles)" in labels
    assert "dp best response to that flow" in labels


def test_a_two_crowd_run_prints_the_dp_gap_of_each_population_and_their_maximum(tmp_path, capsys):
    run_dir = train(parse_args(crowd_argv(tmp_path, "MFGCrowdMulti-v0")))
    lines = capsys.readouterr().out.splitlines()
    result = json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    assert result["method"] == "dp" and set(result["gaps"]) == {"red", "blue"}
    at = lines.index(f"red: {format_evaluation({'method': 'dp', **result['gaps']['red']})}")
    assert re.fullmatch(f"red: {DP_LINE}", lines[at]) and re.fullmatch(f"blue: {DP_LINE}", lines[at + 1])
    assert lines[at + 2] == f"max Nash gap {result['max_gap']:.4g} (max relative gap {result['max_relative_gap']:.4g})"
    rows = json.loads((run_dir / "metrics.json").read_text())["progress"]
    assert sum(row.get("mfg/nash_gap/blue") is not None for row in rows) == 4  # 60 env steps of the game


def test_no_eval_gap_ends_a_crowd_run_with_the_mean_return(tmp_path, capsys):
    argv = [*crowd_argv(tmp_path, "MFGCrowd-v0"), "callback:[]", "--no-eval-gap"]
    run_dir = train(parse_args(argv))
    assert "method" not in json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    assert re.search(r"^mean evaluation return \S+ \+- \S+ \(no Nash gap evaluated\)$", capsys.readouterr().out, re.M)


# --------------------------------------------------------------------------- the rl_zoo3 command
def test_rl_zoo3_trains_with_our_config_policy_and_callbacks(tmp_path):
    argv = ["-m", "rl_zoo3.train", "--algo", "td3", "--env", LQ, "--gym-packages", "mfg_envs"]
    argv += ["--conf-file", "sb3_meanfield.hyperparams.td3", "--num-threads", "1", "-n", "200", "--seed", "0"]
    argv += ["-f", str(tmp_path), "--hyperparams", "learning_starts:100", "batch_size:32"]
    process = run(*argv, cwd=tmp_path)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-2000:]
    assert "population_updates" in stdout and "population_return" in stdout  # our callbacks logged
    run_dir = tmp_path / "td3" / f"{LQ}_1"
    model = MFTD3.load(run_dir / f"{LQ}.zip")
    assert type(model.policy).__name__ == "MeanFieldTD3Policy" and model.num_timesteps == 200
    saved = dict(yaml.unsafe_load((run_dir / LQ / "config.yml").read_text()))
    assert saved["policy"] == "sb3_meanfield.td3.policies.MeanFieldTD3Policy" and saved["gamma"] == 1.0


# --------------------------------------------------------------------------- parsing and configuration
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3e-4", 3e-4),
        ("[64, 64]", [64, 64]),
        ("dict(net_arch=dict(pi=[32], qf=[64, 64]))", {"net_arch": {"pi": [32], "qf": [64, 64]}}),
        ("{'a': (1, 2)}", {"a": (1, 2)}),
        ("dict(activation_fn=nn.Tanh)", {"activation_fn": nn.Tanh}),
        ("lin_1e-3", "lin_1e-3"),
        ("'normal'", "normal"),
        ("True", True),
    ],
)
def test_parse_value_reads_literals_without_eval(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("text", ["[1,", "__import__('os').getcwd()", "dict(**x)", "nn.Tanh(", "a b"])
def test_parse_value_rejects_code_and_malformed_text(text):
    with pytest.raises(ValueError, match="malformed value"):
        parse_value(text)


def test_key_value_splits_at_the_first_colon():
    assert key_value("callback:{'a.B': {'x': 1}}") == ("callback", {"a.B": {"x": 1}})


def test_schedules():
    assert schedule(1e-3) == 1e-3
    decay = schedule("lin_1e-3_1e-4")
    assert isinstance(decay, LinearSchedule) and decay(1.0) == 1e-3 and decay(0.0) == pytest.approx(1e-4)
    assert schedule("lin_2e-3")(0.5) == pytest.approx(1e-3)  # rl_zoo3's lin_: linear to 0
    with pytest.raises(UsageError, match="learning_rate must be"):
        schedule("exp_1e-3")


def test_accepted_keywords_follow_the_algorithm_signature():
    keywords = accepted_keywords(MFTD3)
    assert {"learning_rate", "policy_delay", "target_policy_noise", "policy_kwargs"} <= keywords
    assert not {"self", "policy", "env"} & keywords


def test_config_precedence_flags_over_hyperparams_over_self_play_over_the_table(tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text(
        "hyperparams = {'default': {'n_timesteps': 10, 'batch_size': 64, 'tau': 0.01, 'gamma': 1.0,"
        " 'callback': 'sb3_meanfield.common.callbacks.PopulationSyncCallback'}}\n"
        "self_play = {'default': {'batch_size': 128, 'n_particles': 500, 'n_learners': 50}}\n"
    )
    base = ["--conf-file", str(conf), "--hyperparams", "tau:0.5"]
    self_play = resolve_config(parse_args([*base, "--n-learners", "20"]))
    assert self_play["algo_kwargs"] == {"batch_size": 128, "tau": 0.5, "gamma": 1.0}
    assert (self_play["n_particles"], self_play["n_learners"], self_play["n_timesteps"]) == (500, 20, 10)
    assert self_play["callback"] == []  # self-play needs no population update
    representative = resolve_config(parse_args([*base, "--mode", "representative", "--sync-freq", "7", "-n", "99"]))
    assert representative["algo_kwargs"] == {"batch_size": 64, "tau": 0.5, "gamma": 1.0}
    assert representative["n_timesteps"] == 99 and representative["n_particles"] == 1000
    assert representative["callback"] == [{"sb3_meanfield.common.callbacks.PopulationSyncCallback": {"sync_freq": 7}}]


def test_population_encoder_key_changes_only_the_population_encoder():
    """``--hyperparams population_encoder:none``: the shipped networks without the population input, for actor and
    critic alike; a random initial law through ``env_kwargs``."""
    argv = ["--hyperparams", "env_kwargs:dict(init_mean_std=1.0)"]
    aware = resolve_config(parse_args(argv))
    blind = resolve_config(parse_args([*argv, "population_encoder:none"]))
    assert blind["env_kwargs"] == aware["env_kwargs"] == {"init_mean_std": 1.0}
    model = build(blind)[1]
    kwargs, shipped = blind["algo_kwargs"].pop("policy_kwargs"), aware["algo_kwargs"].pop("policy_kwargs")
    assert kwargs == {**shipped, "features_extractor_kwargs": {"population_encoder": "none"}}
    assert blind == aware
    for network in (model.actor, model.critic, model.actor_target, model.critic_target):
        assert network.features_extractor.population_encoder is None
    # a role's own encoder is replaced too
    roles = {"critic_extractor_kwargs": {"population_encoder": "mlp", "state_arch": [4]}}
    assert with_population_encoder(roles, "none")["critic_extractor_kwargs"] == {
        "population_encoder": "none",
        "state_arch": [4],
    }


def test_final_gap_takes_more_replicates_where_the_population_is_random():
    fixed, random = (game_of(gym.make(LQ, init_mean_std=std)) for std in (0.0, 1.0))
    assert final_replicates(fixed, "exact") == FINAL_REPLICATES["exact"]
    assert final_replicates(random, "exact") == RANDOM_POPULATION_REPLICATES
    assert final_replicates(game_of(gym.make("MFGCrowd-v0")), "dp") == FINAL_REPLICATES["dp"]
    assert parse_args(["--eval-replicates", "16"]).eval_replicates == 16


def test_yaml_configs_are_read_like_rl_zoo3(tmp_path):
    conf = tmp_path / "conf.yml"
    conf.write_text(yaml.safe_dump({LQ: {"n_timesteps": 5, "policy": "MultiInputPolicy", "batch_size": 32}}))
    config = resolve_config(parse_args(["--conf-file", str(conf), "--mode", "representative"]))
    assert (config["policy"], config["n_timesteps"]) == ("MultiInputPolicy", 5)
    assert config["algo_kwargs"] == {"batch_size": 32}


def test_several_populations_take_the_schedule_flags_and_their_config_keys(tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text(
        "hyperparams = {'default': {'n_timesteps': 10, 'batch_size': 64, 'callback': 'a.SingleCallback'},"
        f" {LQM!r}: {{'n_timesteps': 20, 'switch_freq': 7, 'n_envs': 3}}}}\n"
        "self_play = {'default': {'batch_size': 128, 'n_particles': 500}}\n"
    )
    config = resolve_config(parse_args(["--env", LQM, "--conf-file", str(conf)]))
    assert (config["mode"], config["schedule"], config["switch_freq"]) == ("self-play", "alternating", 7)
    assert (config["n_timesteps"], config["n_particles"], config["n_learners"]) == (20, 500, 64)
    assert config["algo_kwargs"] == {"batch_size": 128} and config["callback"] == [] and "n_envs" not in config
    flags = ["--schedule", "simultaneous", "--switch-freq", "3", "--n-learners", "9", "--hyperparams", "n_learners:5"]
    config = resolve_config(parse_args(["--env", LQM, "--conf-file", str(conf), *flags]))
    assert (config["schedule"], config["switch_freq"], config["n_learners"]) == ("simultaneous", 3, 9)
    assert config["algo_kwargs"] == {"batch_size": 128}
    other = "MFGCrowdMulti-v0"  # not in the table: the default entry without its single-population callbacks
    config = resolve_config(parse_args(["--env", other, "--conf-file", str(conf)]))
    assert (config["n_timesteps"], config["switch_freq"], config["callback"]) == (10, None, [])


def test_a_multi_population_run_cannot_be_resumed(tmp_path, capsys):
    argv = ["--env", LQM, "-n", "16", "--n-particles", "8", "--n-learners", "4", "--eval-particles", "50"]
    argv += ["-f", str(tmp_path), "--no-progress", "--hyperparams", "learning_starts:8", "batch_size:8"]
    argv += ["env_kwargs:dict(n_steps=4)", "callback:[]"]
    run_dir = train(parse_args(argv))
    assert not (run_dir / "checkpoint").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--resume", str(run_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "multi-population runs write no checkpoint" in err, err


# --------------------------------------------------------------------------- the torch device
def test_device_cpu_trains_and_evaluates_on_the_cpu(tmp_path):
    """``--device cpu``: the model and its replay buffer are on the CPU, the run trains and evaluates, the device is
    saved in config.yaml, and the saved model reloads there."""
    argv = ["--env", LQ, "-n", "64", "--n-particles", "16", "--n-learners", "8", "--eval-particles", "100"]
    argv += ["-f", str(tmp_path), "--no-progress", "--no-figures", "--device", "cpu", "--checkpoint-freq", "0"]
    argv += ["--hyperparams", "learning_starts:16", "batch_size:8", "callback:[]", "env_kwargs:dict(n_steps=4)"]
    config = resolve_config(parse_args(argv))
    assert config["device"] == "cpu" and "device" not in config["algo_kwargs"]
    _, model, _ = build(config)
    assert model.device == th.device("cpu") and model.replay_buffer.device == th.device("cpu")
    run_dir = train(parse_args(argv))
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["device"] == "cpu"
    assert MFTD3.load(run_dir / "model.zip", device="cpu").policy.device == th.device("cpu")


def test_device_of_a_config_is_taken_unless_the_flag_says_otherwise():
    config = resolve_config(parse_args(["--hyperparams", "device:cpu"]))
    assert config["device"] == "cpu" and "device" not in config["algo_kwargs"]
    assert resolve_config(parse_args(["--hyperparams", "device:auto", "--device", "cpu"]))["device"] == "cpu"
    with pytest.raises(UsageError, match="--device: expected a torch device"):
        resolve_config(parse_args(["--hyperparams", "device:gpu"]))


@pytest.mark.skipif(th.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_cuda_device_is_a_usage_error_not_a_silent_cpu_run(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "-f", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--device cuda: this machine has no such cuda device" in err, err
    assert not (tmp_path / "runs").exists()
