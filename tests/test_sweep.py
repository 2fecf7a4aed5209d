"""``python -m sb3_meanfield.sweep``: trials and search spaces, bad input, the reports of the Nash gap to Tune, a
two-trial local sweep (default run); a two-node Ray cluster, an interrupted sweep and an Optuna search (slow)."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml

from mfg_envs.game import game_of
from sb3_meanfield import MFTD3, NashGapCallback
from sb3_meanfield.flags import UsageError, parse_value
from sb3_meanfield.plotting import load_agents
from sb3_meanfield.run import evaluate
from sb3_meanfield.sweep import Distribution, Sweep, Trial, finished_run, grid_trials
from sb3_meanfield.sweep.__main__ import main
from sb3_meanfield.sweep.report import TuneReport
from sb3_meanfield.sweep.results import trial_rows
from sb3_meanfield.sweep.runner import param_space
from sb3_meanfield.sweep.space import value_text
from sb3_meanfield.sweep.trial import REPORT_CALLBACK
from sb3_meanfield.train import build_parser

th.set_num_threads(1)

#: Train flags of a run of a few seconds: 2000 transitions (125 env steps of 16 learners, two Nash-gap checks).
TINY = "-n 2000 --n-particles 64 --n-learners 16 --eval-particles 500 --eval-replicates 2 --no-figures "
TINY += "--hyperparams learning_starts:64 batch_size:32"
#: The environment of a sweep's process: one thread per process, no usage statistics sent out.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def sweep_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "sb3_meanfield.sweep", *flags]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def gap_checks(run_dir: Path) -> dict[float, float]:
    """The run's own Nash-gap checks (``metrics.json``): transitions -> relative gap."""
    progress = json.loads((run_dir / "metrics.json").read_text())["progress"]
    return {
        row["time/total_timesteps"]: row["mfg/relative_nash_gap"]
        for row in progress
        if row.get("mfg/relative_nash_gap") is not None
    }


# --------------------------------------------------------------------------- trials and search spaces
def test_a_grid_is_every_combination_once_and_each_trial_a_train_command():
    trials = grid_trials(
        ["MFGLinearQuadratic-v0", "MFGPrice-v0"], ["td3", "sac"], [0, 1, 2], {"tau": ["0.005", "0.01"]}, ["-n", "9"]
    )
    combos = {(t.env, t.algo, t.seed, t.hyperparams) for t in trials}
    assert len(trials) == len(combos) == 2 * 2 * 3 * 2
    assert trials[0].seed == 0 and trials[1].seed == 1  # the seeds of one configuration are neighbours
    args = build_parser().parse_args(trials[-1].train_argv("/logs"))
    assert (args.env, args.algo, args.seed, args.n_timesteps) == ("MFGPrice-v0", "sac", 2, 9)
    assert args.hyperparams == [("tau", 0.01)] and args.log_folder == "/logs/MFGPrice-v0_sac_2"
    assert Trial.from_dict(json.loads(json.dumps(asdict(trials[5])))) == trials[5]  # as Tune keeps it


@pytest.mark.parametrize("value", [0.1 + 0.2, 1e-7, 3, np.float64(2.5e-4), np.int64(7), "[64, 64]"])
def test_a_sampled_value_reaches_the_train_command_exactly(value):
    expected = parse_value(value) if isinstance(value, str) else value
    assert parse_value(value_text(value)) == expected


def test_a_search_space_becomes_tune_domains():
    search = {
        "learning_rate": Distribution("loguniform", 1e-4, 1e-2),
        "gradient_steps": Distribution("randint", 1, 4),
        "net_arch": Distribution("choice", choices=("[32, 32]", "[64, 64]")),
    }
    sweep = Sweep((Trial("MFGLinearQuadratic-v0", "td3", 0),), search=search, num_samples=2, scheduler="asha")
    domains = param_space(sweep)["search"]
    assert (domains["learning_rate"].lower, domains["learning_rate"].upper) == (1e-4, 1e-2)
    assert (domains["gradient_steps"].lower, domains["gradient_steps"].upper) == (1, 5)  # 4 included
    assert domains["net_arch"].categories == ["[32, 32]", "[64, 64]"]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "Foo-v0"], "argument --env: unknown env id 'Foo-v0'; the mfg_envs ids are MFGCrowd-v0"),
        (["--algo", "ppo"], "argument --algo: invalid choice: 'ppo' (choose from 'ddpg', 'sac', 'td3')"),
        (["--search", "tau:uniform(0.001, 0.01)", "--num-samples", "0"], "--num-samples: expected an integer >= 1"),
        (["--search", "learning_rate:loguniform(0, 1)"], "loguniform needs loguniform(LOW, HIGH) with LOW > 0"),
        (["--search", "tau:normal(0, 1)"], "tau: distribution must be one of uniform(LOW, HIGH)"),
        (["--search", "tau:uniform(0.02, 0.01)"], "LOW < HIGH; got (0.02, 0.01)"),
        (["--search", "tau:uniform(0.001, 0.01)", "--seed", "0", "1"], "one env id, algorithm and seed), got 2"),
        (["--grid", "tau:0.01"], "tau: expected a non-empty list of values, [V1, V2, ...]"),
        (["--seed", "1", "1"], "seeds: expected one or more distinct values, got [1, 1]"),
        (["--num-samples", "3"], "--num-samples: the number of trials of a --search"),
        (["--grace-period", "2"], "--grace-period applies to --scheduler asha, not fifo"),
        (["--hyperparams", "foo:1"], "unknown hyperparameter(s) ['foo'] for td3"),
        (
            ["--hyperparams", "tau:0.1", "--grid", "tau:[0.2, 0.3]"],
            "['tau']: set twice (--grid, --search, --hyperparams)",
        ),
        (["--n-particles", "0"], "argument --n-particles: expected an integer >= 1, got '0'"),
        (["--resume", "somewhere"], "--resume: set by the sweep for every trial"),
        (["--no-eval-gap"], "--no-eval-gap: the sweep scores every trial by its final Nash gap"),
        (["--address", "auto", "--num-cpus", "2"], "num_cpus applies to Ray started on this machine"),
    ],
)
def test_bad_input_is_one_line_naming_the_parameter(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "-f", str(tmp_path)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and len(error.splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing was trained


def test_bad_sweeps_are_refused_when_made():
    trial = Trial("MFGLinearQuadratic-v0", "td3", 0)
    with pytest.raises(UsageError, match="one or more trials"):
        Sweep(())
    with pytest.raises(UsageError, match=r"num_samples must be an integer >= 1, got 0"):
        Sweep((trial,), search={"tau": Distribution("uniform", 0.001, 0.01)}, num_samples=0)
    with pytest.raises(UsageError, match=r"scheduler must be one of \('fifo', 'asha'\), got 'hyperband'"):
        Sweep((trial,), scheduler="hyperband")
    with pytest.raises(UsageError, match="the trials of a sweep must differ"):
        Sweep((trial, trial))
    with pytest.raises(UsageError, match="choice needs two or more distinct values"):
        Distribution("choice", choices=("1", "1"))


# --------------------------------------------------------------------------- reports to Tune
def test_every_nash_gap_check_and_only_those_is_reported(monkeypatch):
    """The reporter forwards the Nash-gap callback's checks (the same numbers at the same steps), not the other dumps
    of the logger (SB3's training statistics)."""
    reports = []
    monkeypatch.setattr("ray.tune.report", reports.append)
    monkeypatch.setattr("sb3_meanfield.sweep.report.node_record", lambda: {"node_id": "this node"})
    env = gym.make("MFGLinearQuadratic-v0", n_particles=50)
    model = MFTD3("MeanFieldPolicy", env, learning_starts=50, batch_size=32, seed=0)
    checks = NashGapCallback(eval_freq=50, n_particles=100, n_replicates=2)
    model.learn(100, callback=[checks, TuneReport()], log_interval=1)
    assert len(checks.history) == 2
    assert [(r["timesteps"], r["relative_gap"], r["gap"]) for r in reports] == [
        (step, gap.relative_gap, gap.gap) for step, gap in checks.history
    ]
    assert all(r["final"] is False and r["node_id"] == "this node" for r in reports)


class FakeResult:
    """The attributes of a ``ray.tune.Result`` that :func:`trial_rows` reads."""

    def __init__(self, config: dict | None, metrics: dict | None, path: str) -> None:
        self.config, self.metrics, self.path = config, metrics, path
        self.error = None
        self.metrics_dataframe = None


class FakeGrid(list):
    experiment_path = "unused"


def test_an_interrupted_search_tabulates_the_trials_that_ran_and_skips_those_never_started(monkeypatch, tmp_path):
    """A search stopped before its searcher filled a pending trial's config leaves a result whose config is None:
    the table holds the trials that ran, the best first, and not the empty one (it used to crash on it)."""

    class FakeAnalysis:
        def __init__(self, path: str) -> None:
            self.trials: list = []

    monkeypatch.setattr("ray.tune.ExperimentAnalysis", FakeAnalysis)
    trial = Trial("MFGLinearQuadratic-v0", "td3", 0)
    sweep = Sweep(
        (trial,), search={"tau": Distribution("uniform", 0.001, 0.01)}, num_samples=3, log_folder=str(tmp_path)
    )
    ran = [
        FakeResult({"trial": asdict(trial), "search": {"tau": tau}}, {"relative_gap": gap, "final": True}, f"t{i}")
        for i, (tau, gap) in enumerate([(0.002, 0.3), (0.007, 0.1)])
    ]
    grid = FakeGrid([ran[0], FakeResult(None, None, "pending"), ran[1]])
    rows = trial_rows(grid, sweep)
    assert [(row["hyperparams"], row["relative_gap"], row["status"]) for row in rows] == [
        ("tau:0.007", 0.1, "done"),
        ("tau:0.002", 0.3, "done"),
    ]


def test_a_sweep_is_not_resumed_once_its_trials_resolve_to_another_configuration(monkeypatch, tmp_path):
    """Resuming keeps a sweep's finished trials; after a change of what its trials resolve to (here a shipped
    hyperparameter) their results are not this code's, so the sweep's folder is refused with the reason."""
    from sb3_meanfield.hyperparams import td3
    from sb3_meanfield.sweep.runner import SPEC_FILE, tuner_of

    trials = (Trial("MFGLinearQuadratic-v0", "td3", 0),)
    sweep = Sweep(trials, log_folder=str(tmp_path), name="lq")
    sweep.path.mkdir(parents=True)
    (sweep.path / SPEC_FILE).write_text(json.dumps(sweep.spec()))
    monkeypatch.setattr("ray.tune.Tuner.can_restore", lambda path: True)
    monkeypatch.setattr("ray.tune.Tuner.restore", lambda *args, **kwargs: "restored")
    assert tuner_of(sweep, None) == "restored"  # same code: resumed
    monkeypatch.setitem(td3.self_play["MFGLinearQuadratic-v0"], "tau", 0.5)
    with pytest.raises(UsageError, match="before its trials' configuration changed"):
        tuner_of(sweep, None)
    other = Sweep((Trial("MFGLinearQuadratic-v0", "td3", 1),), log_folder=str(tmp_path), name="lq")
    with pytest.raises(UsageError, match="holds another sweep"):
        tuner_of(other, None)


# --------------------------------------------------------------------------- a local sweep
def test_a_two_trial_local_sweep_writes_its_table_runs_and_reports(tmp_path):
    flags = ["-f", "sweep", "--seed", "0", "1", "--num-cpus", "2", *shlex.split(TINY)]
    done = subprocess.run(sweep_command(*flags), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "sweep" / "sweep"
    rows = read_rows(folder / "results.csv")
    assert [(row["seed"], row["status"]) for row in rows] == [("0", "done"), ("1", "done")]
    table = (folder / "results.csv").with_suffix(".md").read_text()
    assert table in done.stdout  # the Markdown table is the one the command printed
    lines = table.splitlines()
    assert len(lines) == 4 and all("| MFGLinearQuadratic-v0 | td3 |" in line for line in lines[2:])
    assert (folder / "results.png").stat().st_size > 0
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert run_dir.parent == tmp_path / "sweep" / f"MFGLinearQuadratic-v0_td3_{row['seed']}"
        assert {"config.yaml", "metrics.json", "model.zip"} <= {path.name for path in run_dir.iterdir()}
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert REPORT_CALLBACK in config["callback"] and config["seed"] == int(row["seed"])
        # the table's gap is the final policy's: evaluated again from the saved model, it is the same number
        game = game_of(gym.make(config["env"], n_particles=config["n_particles"]))
        again = evaluate(load_agents(run_dir, config), game, n_particles=500, seed=config["seed"], n_replicates=2)
        assert np.isfinite(float(row["relative_gap"]))
        assert float(row["relative_gap"]) == pytest.approx(again["relative_gap"], rel=1e-9)
        # every check of the run reached Tune (its result.json), then the final evaluation
        results = [json.loads(line) for line in (folder / f"trial_{row['trial_id']}" / "result.json").open()]
        checks = gap_checks(run_dir)
        assert len(checks) == 2 and [r["final"] for r in results] == [False, False, True]
        assert {r["timesteps"]: r["relative_gap"] for r in results[:-1]} == checks
        # the run is this trial's configuration: the sweep finds it again (its reporter callback aside)
        train_args = shlex.split(row["command"])[3:]
        assert finished_run(run_dir.parent, train_args) == run_dir


# --------------------------------------------------------------------------- slow: cluster, resuming, search
@pytest.mark.slow
def test_a_sweep_runs_its_trials_on_both_nodes_of_a_two_node_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        nodes = {node.node_id for node in cluster.list_all_nodes()}
        assert len(nodes) == 2
        flags = ["-f", "sweep", "--seed", "0", "1", "--address", cluster.address, *shlex.split(TINY)]
        done = subprocess.run(sweep_command(*flags), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "sweep" / "sweep" / "results.csv")
    assert [row["status"] for row in rows] == ["done", "done"]
    assert {row["node_id"] for row in rows} == nodes  # one CPU per node: each node ran one trial
    assert all(np.isfinite(float(row["relative_gap"])) for row in rows)


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    """Ctrl-C after the first trial finished and the second wrote a checkpoint; the same command then keeps the
    first, continues the second from its checkpoint, and ends where an uninterrupted run ends."""
    longer = TINY.replace("-n 2000", "-n 12000") + " --checkpoint-freq 50"
    command = sweep_command("-f", "sweep", "--seed", "0", "1", "--num-cpus", "1", *shlex.split(longer))
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        done, second = (
            tmp_path / "sweep" / "MFGLinearQuadratic-v0_td3_0",
            tmp_path / "sweep" / "MFGLinearQuadratic-v0_td3_1",
        )
        deadline = time.monotonic() + 400
        while not (list(done.glob("*/metrics.json")) and list(second.glob("*/checkpoint/training_state.pt"))):
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130
    assert not list(second.glob("*/metrics.json"))
    resumed = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_rows(tmp_path / "sweep" / "sweep" / "results.csv")
    assert [row["status"] for row in rows] == ["done", "done"]
    assert len(list(done.iterdir())) == len(list(second.iterdir())) == 1  # neither trained again from the start
    alone = tmp_path / "alone"
    train_args = shlex.split(rows[1]["command"])[3:]
    train_args[train_args.index("-f") + 1] = str(alone)
    subprocess.run([sys.executable, "-m", "sb3_meanfield.train", *train_args], env=ENV, check=True, timeout=600)
    (uninterrupted,) = alone.iterdir()
    evaluation = json.loads((uninterrupted / "metrics.json").read_text())["evaluation"]
    assert float(rows[1]["relative_gap"]) == evaluation["relative_gap"]


@pytest.mark.slow
def test_an_optuna_search_samples_within_its_space_and_names_its_best_trial(tmp_path):
    search = ["learning_rate:loguniform(1e-4, 3e-3)", "batch_size:choice(32, 64)"]
    flags = ["-f", "sweep", "--search", *search, "--num-samples", "2", "--num-cpus", "2"]
    tiny = TINY.replace(" batch_size:32", "")
    done = subprocess.run(
        sweep_command(*flags, *shlex.split(tiny)), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "sweep" / "sweep" / "results.csv")
    assert len(rows) == 2 and {row["status"] for row in rows} <= {"done", "stopped early"}
    gaps = [float(row["relative_gap"]) for row in rows]
    assert gaps == sorted(gaps)  # the best first
    for row in rows:
        config = yaml.safe_load((Path(row["run_dir"]) / "config.yaml").read_text())
        learning_rate, batch_size = config["algo_kwargs"]["learning_rate"], config["algo_kwargs"]["batch_size"]
        assert 1e-4 <= learning_rate <= 3e-3 and batch_size in (32, 64)
        assert f"learning_rate:{learning_rate!r}" in row["hyperparams"]
    assert f"best trial, relative Nash gap {gaps[0]:.4g}: {rows[0]['command']}" in done.stdout
