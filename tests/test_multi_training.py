"""Multi-population training: one model per population on one game (PopulationVecEnv, MultiPopulationTrainer),
per-population Nash gaps (exact and RL) and their callback, ``python -m sb3_meanfield.train`` on the multi-population
ids and its alias ``python -m sb3_meanfield.train_multi`` (tiny budgets)."""

import importlib
import json
from copy import deepcopy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from helpers import StopAfter
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger

import mfg_envs
from mfg_envs.core import ConstantPolicy
from mfg_envs.game import Game, population_rngs
from mfg_envs.nash_gap import exact_nash_gap
from sb3_meanfield import MFDDPG, MFSAC, MFTD3, ModelPolicy, NashGapCallback, nash_gap
from sb3_meanfield.common.callbacks import ActionBarrierSchedule, PolicyAveraging
from sb3_meanfield.common.vec_env import PopulationVecEnv, population_envs, step_populations
from sb3_meanfield.config import build_trainer, resolve_config
from sb3_meanfield.hyperparams import ACTION_BARRIER, CONCAT_POLICY_KWARGS
from sb3_meanfield.train import main as train_main
from sb3_meanfield.train import parse_args
from sb3_meanfield.train_multi import main
from sb3_meanfield.training import MODES, MultiPopulationTrainer

th.set_num_threads(1)

LQM = "MFGLinearQuadraticMulti-v0"
CROWD_MULTI = "MFGCrowdMulti-v0"
ALGORITHMS = {"ddpg": MFDDPG, "td3": MFTD3, "sac": MFSAC}
SMALL_POLICY = {
    "net_arch": {"pi": [4], "qf": [4]},
    "actor_extractor_kwargs": {"state_arch": [4], "population_arch": [4]},
    "critic_extractor_kwargs": {"state_arch": [4], "population_arch": [4]},
}


def tiny(**kwargs):
    """Fresh tiny-model keywords (SB3 writes into the policy_kwargs it is given)."""
    return {"policy_kwargs": deepcopy(SMALL_POLICY), "learning_starts": 8, "batch_size": 8, **kwargs}


def tiny_game(n_particles=8, n_steps=5, env_id=LQM):
    return gym.make(env_id, n_particles=n_particles, n_steps=n_steps).unwrapped.game


def tiny_trainer(algo=MFTD3, mode="alternating", **kwargs):
    return MultiPopulationTrainer.make(tiny_game(), algo, n_learners=4, mode=mode, switch_freq=3, **tiny(**kwargs))


class Recorder(KVWriter):
    """Keeps every dump of a logger."""

    def __init__(self):
        self.dumps = []

    def write(self, key_values, key_excluded, step=0):
        self.dumps.append((step, dict(key_values)))


# --------------------------------------------------------------------------- PopulationVecEnv
def test_population_env_moves_the_whole_game_with_every_population_policy():
    """Red learners' actions plus both populations' policies, fed to a copy of the game by hand, give the same run."""
    game = tiny_game(n_particles=6, n_steps=4)
    venv = PopulationVecEnv(game, "red", n_learners=4)
    game.set_policy("red", ConstantPolicy(np.array([0.3])))
    game.set_policy("blue", ConstantPolicy(np.array([-0.2])))
    reference = Game(game.model, 6)
    rngs = population_rngs(3, 2)
    venv.seed(3)
    obs = venv.reset()
    reference.reset(rngs)
    rng = np.random.default_rng(0)
    for step in range(4):
        expected = reference.observation(0, slice(0, 4))
        for key, value in obs.items():
            assert value.flags.writeable and value.shape[0] == 4
            np.testing.assert_array_equal(value, expected[key])
        actions = rng.uniform(-1, 1, (4, 1))
        obs, rewards, dones, infos = venv.step(actions)
        joint = [np.concatenate([actions, np.full((2, 1), 0.3)]), np.full((6, 1), -0.2)]
        expected_rewards = reference.step(
            joint, [member.model.noise(6, r) for member, r in zip(reference.members, rngs)]
        )
        np.testing.assert_allclose(rewards, expected_rewards[0][:4], rtol=1e-6)
        assert dones.tolist() == [step == 3] * 4
    terminal = reference.observation(0, slice(0, 4))
    for i, info in enumerate(infos):
        np.testing.assert_array_equal(info["terminal_observation"]["state"], terminal["state"][i])
        assert info["terminal_observation"]["time"][0] == 1.0 and not info["TimeLimit.truncated"]
    assert obs["time"][0, 0] == 0.0  # the last step returns the next episode's first observation


def test_joint_step_moves_every_population_learners_once():
    game = tiny_game(n_particles=5)
    red, blue = population_envs(game, n_learners=2)
    red.seed(0)
    red.reset()
    (red_obs, _, _, _), (blue_obs, _, _, _) = step_populations(
        [red, blue], [np.full((2, 1), 0.5), np.full((2, 1), -0.5)]
    )
    assert game.step_index == 1
    np.testing.assert_array_equal(game.members[0].last_actions[:2], game.model.populations[0].action_bound * 0.5)
    np.testing.assert_array_equal(game.members[1].last_actions[:2], game.model.populations[1].action_bound * -0.5)
    np.testing.assert_array_equal(game.members[1].last_actions[2:], 0.0)  # the neutral population policy
    np.testing.assert_array_equal(blue_obs["population"], red_obs["population"])  # one shared game


def test_population_env_api_and_errors():
    game = tiny_game(n_particles=4)
    venv = PopulationVecEnv(game, 1, n_learners=3)
    assert venv.get_attr("game", indices=[0]) == [game] and venv.get_attr("population_index") == [1] * 3
    assert venv.get_attr("names", indices=[0]) == [("red", "blue")]  # other names resolve on the game
    policy = ConstantPolicy(np.array([0.1]))
    venv.env_method("set_population_policy", policy, indices=[0])
    assert game.members[1].policy is policy and game.members[0].policy is not policy
    with pytest.raises(RuntimeError, match="call reset"):
        venv.step(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="n_learners must be in"):
        PopulationVecEnv(game, 0, n_learners=5)
    with pytest.raises(ValueError, match="population must be one of"):
        PopulationVecEnv(game, "green")
    with pytest.raises(ValueError, match="one model per population"):
        MultiPopulationTrainer([MFTD3("MeanFieldPolicy", venv, **tiny())])
    with pytest.raises(ValueError, match="mode must be one of"):
        MultiPopulationTrainer.make(game, MFTD3, n_learners=2, mode="both", **tiny())


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_tiny_learn_for_every_algorithm_and_mode(algo, mode):
    trainer = tiny_trainer(ALGORITHMS[algo], mode)
    trainer.learn(48)
    assert [model.num_timesteps for model in trainer.models] == [48, 48]
    assert trainer.num_env_steps == (24 if mode == "alternating" else 12)  # alternating: one model at a time
    assert all(model._n_updates > 0 for model in trainer.models)
    assert trainer.models[0].policy is not trainer.models[1].policy  # separate networks
    for member, model in zip(trainer.game.members, trainer.models):
        assert isinstance(member.policy, ModelPolicy) and member.policy.policy is model.policy


@pytest.mark.parametrize("mode", MODES)
def test_every_population_follows_its_own_live_model(mode):
    """After training, a step of population k's env: its other particles and every particle of the other
    population act with their models' deterministic actions."""
    trainer = tiny_trainer(MFTD3, mode)
    trainer.learn(32)
    game = trainer.game
    trainer.venvs[0].reset()  # two steps from here stay inside the episode
    for k, venv in enumerate(trainer.venvs):
        before = [game.observation(j) for j in range(2)]
        states = [member.states.copy() for member in game.members]
        learner_actions = np.full((4, 1), 0.25)
        venv.step(learner_actions)
        for j, (member, model) in enumerate(zip(game.members, trainer.models)):
            rows = slice(4, None) if j == k else slice(None)
            expected, _ = model.predict({key: value[rows] for key, value in before[j].items()}, deterministic=True)
            physical = member.model.physical_action(states[j][rows], expected)
            np.testing.assert_allclose(member.last_actions[rows], physical, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(game.members[k].last_actions[:4], game.model.populations[k].action_bound * 0.25)


@pytest.mark.parametrize("mode", MODES)
def test_training_is_reproducible_and_a_callback_can_stop_it(mode):
    first = tiny_trainer(MFSAC, mode).learn(48)  # SB3 seeds the global generators when it builds a model
    second = tiny_trainer(MFSAC, mode).learn(48)
    for a, b in zip(first.models, second.models):
        for p, q in zip(a.policy.parameters(), b.policy.parameters()):
            assert th.equal(p, q)
    stopped = tiny_trainer(MFSAC, mode).learn(48, callback=StopAfter(7))
    assert stopped.num_env_steps == 7


def test_alternating_turns_keep_the_schedules_on_the_whole_budget():
    trainer = tiny_trainer(MFTD3, learning_rate=lambda progress: progress)
    trainer.learn(48)
    for model in trainer.models:
        assert model._total_timesteps == 48
        assert model._current_progress_remaining == pytest.approx(0.0)


class RecordBarriers(BaseCallback):
    """Every model's progress and critic barrier at every env step of the game."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[float, float, float]]] = []

    def _on_step(self) -> bool:
        self.rows.append(
            [
                (1.0 - m._current_progress_remaining, m.critic.action_barrier, m.critic.action_l2)
                for m in self.model.models
            ]
        )
        return True


@pytest.mark.parametrize("mode", MODES)
def test_action_barrier_schedule_follows_each_population_progress(mode):
    """Every population's model decays its own barrier on its own progress (in alternating turns they differ)."""
    policy = {**SMALL_POLICY, "action_barrier": 0.2}
    trainer = tiny_trainer(MFTD3, mode, policy_kwargs=policy)
    trainer.set_logger(Logger(None, []))
    record = RecordBarriers()
    trainer.learn(48, callback=[ActionBarrierSchedule(final_barrier=0.02, final_action_l2=0.1), record])
    progress, barrier, kappa = np.array(record.rows).transpose(2, 0, 1)  # (quantity, env step, population)
    np.testing.assert_allclose(barrier, 0.2 - 0.18 * progress, rtol=1e-12)
    np.testing.assert_allclose(kappa, 0.1 * progress, rtol=1e-12)
    assert progress[-1].min() > 0.9 and barrier[-1].max() < 0.04
    if mode == "alternating":  # red's turn first: red has progressed, blue not yet
        assert progress[2, 0] > 0 and progress[2, 1] == 0
    for key, values in (("action_barrier", barrier), ("action_l2", kappa)):
        logged = [trainer.logger.name_to_value[f"train/{key}/{name}"] for name in trainer.names]
        np.testing.assert_allclose(logged, values[-1])


class RecordActors(BaseCallback):
    """Every population's actor weights at the first env step of the game and after the last update."""

    def __init__(self) -> None:
        super().__init__()
        self.first: list[dict[str, th.Tensor]] = []
        self.last: list[dict[str, th.Tensor]] = []

    def weights(self) -> list[dict[str, th.Tensor]]:
        return [{k: v.clone() for k, v in model.actor.state_dict().items()} for model in self.model.models]

    def _on_step(self) -> bool:
        self.first = self.first or self.weights()
        return True

    def _on_training_end(self) -> None:
        self.last = self.weights()


@pytest.mark.parametrize("mode", MODES)
def test_policy_averaging_averages_each_population_actor(mode):
    """With ``start=0`` and ``every`` beyond the run, each population averages two iterates: the first (sampled at
    the first env step of the game, whether or not it is that population's turn) and its last."""
    trainer = tiny_trainer(MFTD3, mode)
    trainer.set_logger(Logger(None, []))
    record = RecordActors()
    averaging = PolicyAveraging(start=0.0, every=10**6)
    trainer.learn(48, callback=[record, averaging])
    for model, first, last in zip(trainer.models, record.first, record.last, strict=True):
        assert any(not th.equal(first[name], last[name]) for name in first)
        for weights in (model.actor.state_dict(), model.actor_target.state_dict()):
            for name, value in weights.items():
                th.testing.assert_close(value, (first[name] + last[name]) / 2)
    assert averaging.counts == {f"/{name}": 2 for name in trainer.names}


def test_crowd_multi_actors_saturate_without_the_shipped_barrier(tmp_path):
    """As on the one-population crowd: in the first 200 env steps of each population's turns, plain TD3 drives a
    population's actor to the action bound on every initial state (the other's too on one machine, half-way on
    another: the floating-point order of a CPU changes so short a run); the shipped barrier schedule keeps both off
    it. With the histogram and the networks of then (no offsets, critics of 64-64), where the failure was found (the
    shipped networks observe the moments and the offsets from each crowd since 2026-12-05)."""
    cohort = Game(tiny_game(env_id=CROWD_MULTI).model, 500)
    cohort.reset(population_rngs(0, 2))
    saturation = {}
    for barrier in (0.0, None):
        config = resolve_config(parse_args(["--algo", "td3", "--env", CROWD_MULTI, "-f", str(tmp_path)]))
        config["env_kwargs"]["population_representation"] = "histogram"
        config["algo_kwargs"]["policy_kwargs"] = {**CONCAT_POLICY_KWARGS, "action_barrier": ACTION_BARRIER}
        if barrier is not None:  # plain TD3: no barrier and no schedule
            config["algo_kwargs"]["policy_kwargs"]["action_barrier"] = barrier
            config["callback"] = []
        trainer, callbacks = build_trainer(config)
        shipped = [NashGapCallback, PolicyAveraging, ActionBarrierSchedule]  # in 200 steps: no dp check, no average
        assert [type(c) for c in callbacks] == ([] if barrier is not None else shipped)
        trainer.learn(config["n_timesteps"], callback=[*callbacks, StopAfter(400)])
        assert [model.num_timesteps for model in trainer.models] == [200 * 64] * 2
        actions = [ModelPolicy(model)(cohort.observation(k)) for k, model in enumerate(trainer.models)]
        saturation[barrier] = [float((np.abs(a) > 0.98).mean()) for a in actions]
    assert max(saturation[0.0]) > 0.9 and max(saturation[None]) < 0.05, saturation


# --------------------------------------------------------------------------- Nash gaps
@pytest.fixture(scope="module")
def lq_env():
    return gym.make(LQM)


def test_exact_multi_gap_of_the_equilibrium_is_zero_and_of_the_neutral_policy_relative_one(lq_env):
    equilibrium = lq_env.unwrapped.game.model.solve_equilibrium()
    result = nash_gap(dict(zip(equilibrium.names, equilibrium.policies)), lq_env, n_particles=2000)
    for gap in result.gaps.values():
        assert abs(gap.gap) < 4 * gap.standard_error + 1e-3
    assert result.gap == max(gap.gap for gap in result.gaps.values())
    neutral = [ConstantPolicy(np.zeros(1))] * 2
    relative = nash_gap(neutral, lq_env, n_particles=2000)
    for gap in relative.gaps.values():  # the scale is the first replicate's neutral gap, the gap the mean of 4
        assert gap.relative_gap == pytest.approx(1.0, abs=0.05) and gap.gap > 0.1
    single = nash_gap(neutral, lq_env, n_particles=2000, n_replicates=2, relative=False)
    direct = exact_nash_gap(neutral, lq_env, 2000, 0, relative=False, n_replicates=2)
    assert [gap.gap for gap in single.gaps.values()] == [gap.gap for gap in direct.gaps.values()]


def test_rl_multi_gap_is_a_lower_bound_of_the_exact_gap():
    game = tiny_game(n_particles=200)
    neutral = [ConstantPolicy(np.zeros(1))] * 2
    exact = nash_gap(neutral, game, n_particles=400, relative=False)
    template = MFTD3("MeanFieldPolicy", PopulationVecEnv(game, 0, 4), **tiny())
    rl_kwargs = {"n_learners": 8, "learning_starts": 16, "batch_size": 16}
    rl = nash_gap(neutral, game, "rl", 400, relative=False, rl_timesteps=160, rl_kwargs=rl_kwargs, rl_template=template)
    for name, gap in rl.gaps.items():
        bound = exact.gaps[name]
        assert np.isfinite(gap.gap) and gap.standard_error > 0
        assert gap.gap <= bound.gap + 4 * (gap.standard_error + bound.standard_error)
    with pytest.raises(ValueError, match="rl_template"):
        nash_gap(neutral, game, "rl")


def test_callback_logs_every_population_and_the_max_and_they_change():
    trainer = tiny_trainer(MFTD3)
    recorder = Recorder()
    trainer.set_logger(Logger(None, [recorder]))
    callback = NashGapCallback(eval_freq=6, n_particles=200, n_replicates=2)
    trainer.learn(48, callback=callback)
    assert [step for step, _ in recorder.dumps] == [24, 48, 72, 96]  # every 6 env steps, transitions of both
    for _, values in recorder.dumps:
        gaps = [values[f"mfg/nash_gap/{name}"] for name in ("red", "blue")]
        relative = [values[f"mfg/relative_nash_gap/{name}"] for name in ("red", "blue")]
        assert values["mfg/nash_gap"] == max(gaps) and values["mfg/relative_nash_gap"] == max(relative)
    for key in ("mfg/nash_gap/red", "mfg/nash_gap/blue", "mfg/nash_gap"):
        assert len({values[key] for _, values in recorder.dumps}) > 1  # never a constant
    assert len(callback.history) == 4
    with pytest.raises(ValueError, match="eval_freq"):
        NashGapCallback(eval_freq=0)


def test_callback_on_one_model_uses_the_others_population_policies():
    game = tiny_game()
    venv = PopulationVecEnv(game, "blue", 4)
    model = MFSAC("MeanFieldPolicy", venv, **tiny(learning_starts=1000))  # no update: the last check is comparable
    game.set_policy("blue", ModelPolicy(model))
    model.set_logger(Logger(None, []))
    callback = NashGapCallback(eval_freq=5, n_particles=200, n_replicates=2)
    model.learn(40, callback=callback)
    expected = nash_gap([ConstantPolicy(np.zeros(1)), model], game, n_particles=200, n_replicates=2)
    assert callback.history[-1][1] == expected


# --------------------------------------------------------------------------- command line and configs
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_algorithm_ships_hyperparameters_for_every_multi_id(algo):
    config = importlib.import_module(f"sb3_meanfield.hyperparams.{algo}")
    for env_id in mfg_envs.MULTI_ENV_IDS:
        assert env_id in config.hyperparams and env_id in config.self_play
        resolved = resolve_config(parse_args(["--algo", algo, "--env", env_id]))
        assert (resolved["n_learners"], resolved["n_particles"]) == (64, 1000)
        names = [next(iter(entry)) for entry in resolved["callback"]]
        gap = ["sb3_meanfield.NashGapCallback"]  # exact on LQM, dp on the crowd
        if env_id == LQM:
            assert names == gap
        else:  # the averaging of the last iterates and the deterministic actors' barrier, as on the single crowd
            barrier = [] if algo == "sac" else ["sb3_meanfield.common.callbacks.ActionBarrierSchedule"]
            assert names == [*gap, "sb3_meanfield.common.callbacks.PolicyAveraging", *barrier]


BAD_ARGUMENTS = {
    "single-population id": (["--env", "MFGLinearQuadratic-v0"], "unknown multi-population env id"),
    "unknown algo": (["--algo", "ppo"], "argument --algo: invalid choice"),
    "unknown mode": (["--mode", "both"], "argument --mode: invalid choice"),
    "zero steps": (["-n", "0"], "expected an integer >= 1"),
    "unknown hyperparameter": (["--hyperparams", "learning_rat:0.1"], "unknown hyperparameter(s) ['learning_rat']"),
    "more learners than particles": (["--n-particles", "4", "--n-learners", "8"], "n_learners must be in [1, 4]"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_usage_errors_are_one_line_with_exit_code_2(case, capsys, tmp_path):
    argv, message = BAD_ARGUMENTS[case]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "-f", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()


def tiny_argv(tmp_path, *extra):
    callback = "[{'sb3_meanfield.NashGapCallback': dict(eval_freq=5, n_particles=200, n_replicates=2)}]"
    return [
        *[
            "--env",
            LQM,
            "-n",
            "48",
            "--n-particles",
            "8",
            "--n-learners",
            "4",
            "--eval-particles",
            "200",
            "--no-progress",
        ],
        *["-f", str(tmp_path), "--hyperparams", "learning_starts:8", "batch_size:8", "env_kwargs:dict(n_steps=5)"],
        *[f"policy_kwargs:{SMALL_POLICY!r}", f"callback:{callback}", *extra],
    ]


#: The one command line with its schedule flag, and its alias with its former flag.
COMMANDS = {"train": (train_main, "--schedule"), "train_multi": (main, "--mode")}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("mode", MODES)
def test_tiny_command_line_run_writes_the_run_folder(tmp_path, capsys, mode, command):
    run_main, schedule_flag = COMMANDS[command]
    run_main(tiny_argv(tmp_path, schedule_flag, mode))
    out = capsys.readouterr().out
    (run_dir,) = Path(tmp_path).iterdir()
    names = {"config.yaml", "metrics.csv", "metrics.json", "model_red.zip", "model_blue.zip", "progress_red.csv"}
    assert names <= {path.name for path in run_dir.iterdir()}
    assert out.startswith(f"{LQM} td3 {mode}: 48 steps per population in ")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (config["mode"], config["schedule"], config["populations"]) == ("self-play", mode, ["red", "blue"])
    assert config["switch_freq"] == 5  # built: one episode
    summary = json.loads((run_dir / "metrics.json").read_text())
    evaluation = summary["evaluation"]
    assert set(evaluation["gaps"]) == {"red", "blue"}
    assert evaluation["max_gap"] == max(gap["gap"] for gap in evaluation["gaps"].values())
    assert f"max Nash gap {evaluation['max_gap']:.4g}" in out and "red: exact Nash gap" in out
    assert [row["mfg/nash_gap"] is not None for row in summary["progress"]] == [True] * len(summary["progress"])
    assert len(summary["progress"]) == (24 if mode == "alternating" else 12) // 5
    loaded = MFTD3.load(run_dir / "model_blue.zip")
    assert loaded.num_timesteps == 48
    for name, critic in evaluation["critic"].items():  # each critic against its own population's realized return
        assert critic["q_overestimation"] == pytest.approx(critic["critic_value"] - critic["realized_return"])
        assert critic["realized_return"] == pytest.approx(evaluation["gaps"][name]["policy_return"], abs=0.5)


@pytest.mark.skipif(CROWD_MULTI not in mfg_envs.MULTI_ENV_IDS, reason="no multi-population crowd")
def test_tiny_crowd_run_reports_mean_returns(tmp_path, capsys):
    """Without the final Nash gap (``--no-eval-gap``): the run ends with each population's mean return."""
    main([*tiny_argv(tmp_path, "--algo", "sac", "--env", CROWD_MULTI), "--hyperparams", "callback:[]", "--no-eval-gap"])
    out = capsys.readouterr().out
    assert "red: mean evaluation return" in out and "no Nash gap evaluated" in out


def test_n_step_returns_read_consecutive_steps_of_each_population():
    """With n-step returns and alternating turns of whole episodes (the default turn), every row of a model's replay
    that does not end an episode is followed by its own next step, so no return window spans two turns; a turn
    that would end inside an episode is refused."""
    trainer = MultiPopulationTrainer.make(tiny_game(), MFTD3, n_learners=4, **tiny(n_steps=3))
    trainer.learn(4 * 5 * 3)  # three turns (episodes of 5 steps, 4 learners) of each population
    for model in trainer.models:
        buffer = model.replay_buffer
        assert buffer.n_steps == 3 and buffer.pos == 15
        times, next_times = buffer.observations["time"][:15], buffer.next_observations["time"][:15]
        inside = buffer.dones[:14] == 0
        assert inside.sum() == 12 * 4  # the episode of each turn ends at its 5th row
        np.testing.assert_array_equal(next_times[:14][inside], times[1:15][inside])
    with pytest.raises(ValueError, match="multiple of the episode length 5, got 3"):
        tiny_trainer(n_steps=2)
    assert tiny_trainer(mode="simultaneous", n_steps=2).mode == "simultaneous"
