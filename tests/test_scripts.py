"""The benchmark scripts' bookkeeping (their results themselves are in BENCHMARKS.md, not tested here)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import mfg_envs
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DPBestResponse
from mfg_envs.game import Game, frozen_flows_returns, game_of, neutral_policies, rollout
from sb3_meanfield import MFSAC, MFTD3, ModelPolicy
from sb3_meanfield.evaluation import TRAINING_RESOLUTION, fit_resolution
from sb3_meanfield.hyperparams import ACTION_BARRIER, CROWD_POLICY_KWARGS
from sb3_meanfield.sweep import finished_run
from sb3_meanfield.train import parse_args, train
from sb3_meanfield.train import train as train_multi
from sb3_meanfield.train_multi import build_parser as build_multi_parser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from action_saturation import main as saturation_main
from action_saturation import played_actions
from barrier_floor import BarrierCrowdModel
from clone_reference import clone, observations_and_labels
from clone_reference import main as clone_main
from compare_algorithms import responder_template
from critic_slope import ALPHAS, slope_rows
from critic_slope import main as critic_slope_main
from crowd_gap_by_step import action_rows, gap_by_step
from crowd_gap_by_step import main as gap_by_step_main
from population_aware import best_time_only, exact_gap, fixed_law_time_only, time_only_policy

th.set_num_threads(1)


@pytest.mark.parametrize("algo", ["td3", "ddpg"])
def test_finished_run_is_found_only_for_the_same_configuration(tmp_path, algo):
    """``--reuse`` scores a finished run again only when the flags resolve to its saved configuration."""
    flags = ["--algo", algo, "--env", "MFGLinearQuadratic-v0", "--seed", "3", "-f", str(tmp_path), "--no-progress"]
    flags += ["-n", "160", "--n-particles", "32", "--n-learners", "8", "--eval-particles", "200", "--no-figures"]
    small = ["--hyperparams", "learning_starts:16", "batch_size:16"]
    assert finished_run(tmp_path, flags + small) is None
    run_dir = train(parse_args(flags + small))
    assert finished_run(tmp_path, flags + small) == run_dir
    assert finished_run(tmp_path, [*flags, "--hyperparams", "learning_starts:16", "batch_size:32"]) is None
    assert finished_run(tmp_path, [*flags[:5], "4", *flags[6:], *small]) is None  # another seed
    (run_dir / "metrics.json").unlink()  # an interrupted run is not finished
    assert finished_run(tmp_path, flags + small) is None


def test_finished_multi_population_run_is_found(tmp_path):
    """The same for ``train_multi``, whose saved config holds the built turn length (``switch_freq``)."""
    flags = ["--algo", "ddpg", "--env", "MFGLinearQuadraticMulti-v0", "-f", str(tmp_path), "--no-progress", "-n", "160"]
    flags += ["--n-particles", "32", "--n-learners", "8", "--eval-particles", "200"]
    small = ["--hyperparams", "learning_starts:16", "batch_size:16"]
    run_dir = train_multi(build_multi_parser().parse_args(flags + small))
    assert finished_run(tmp_path, flags + small, "sb3_meanfield.train_multi") == run_dir
    assert finished_run(tmp_path, [*flags, "--switch-freq", "3", *small], "sb3_meanfield.train_multi") is None


@pytest.mark.parametrize("env_id", ["MFGCrowd-v0", "MFGCrowdMulti-v0"])
def test_rl_responder_is_the_shipped_model_of_the_chosen_algorithm(env_id):
    """The RL lower bounds of every algorithm's runs are found by one responder: its algorithm and shipped policy."""
    sac = responder_template(env_id, "sac")
    assert type(sac) is MFSAC and sac.num_timesteps == 0
    assert sac.policy_kwargs["net_arch"] == CROWD_POLICY_KWARGS["net_arch"]
    td3 = responder_template(env_id, "td3")
    assert type(td3) is MFTD3 and td3.policy_kwargs["action_barrier"] == ACTION_BARRIER


def test_action_saturation_plays_one_episode_of_every_population(tmp_path, capsys):
    flags = ["--algo", "td3", "--env", "MFGCrowdMulti-v0", "-f", str(tmp_path), "--no-progress", "-n", "80"]
    flags += ["--n-particles", "16", "--n-learners", "8", "--eval-particles", "50", "--no-eval-gap"]
    flags += ["--hyperparams", "learning_starts:16", "batch_size:16"]
    run_dir = train_multi(build_multi_parser().parse_args(flags))
    actions = played_actions(run_dir, n_particles=30, seed=0)
    n_steps = 40  # MFGCrowdMulti-v0's default horizon
    assert actions.shape == (2 * 30 * n_steps, 2) and np.abs(actions).max() <= 1.0
    saturation_main([str(run_dir), "--n-particles", "30"])
    row = capsys.readouterr().out.splitlines()[-1].split("|")
    assert row[1].strip() == run_dir.name
    assert float(row[2]) == pytest.approx(np.abs(actions).mean(), abs=5e-4)
    assert float(row[3]) == pytest.approx((np.abs(actions) > 0.98).mean(), abs=5e-4)
    with pytest.raises(SystemExit):
        saturation_main([str(tmp_path)])  # not a finished run folder


def goal_seeking(obs):
    """``a = clip((g - p) - 1.5 v) / 2`` toward the walled crowd's default goal ``(1, 0)``."""
    states = obs["state"]
    return np.clip((np.array([1.0, 0.0]) - states[:, :2]) - 1.5 * states[:, 2:], -2.0, 2.0) / 2.0


def test_crowd_gap_by_step_adds_up_to_the_returns_of_the_frozen_flow():
    """Per-step rewards of ``scripts/crowd_gap_by_step.py`` sum to the returns that the library's own common-random-
    number evaluation (:func:`mfg_envs.game.frozen_flows_returns`) gives the policy and the dp best response; the best
    response does better; without crowd aversion no group pays a crowd cost."""
    n, seed = 300, 4
    game = game_of(gym.make("MFGCrowd-v0", n_steps=8))
    own, best, rows = gap_by_step(game, goal_seeking, n, seed, TRAINING_RESOLUTION, actions_at=(0, 7))
    flows, _ = rollout(game.clone(n), goal_seeking, seed)
    assert own.rewards.sum() == pytest.approx(frozen_flows_returns(game, flows, 0, goal_seeking, n, seed + 1).mean())
    assert best.rewards.sum() > own.rewards.sum()
    assert own.positions.shape == best.spreads.shape == (8, 2) and (own.crowd_costs > 0).all()
    # the action rows are of the requested steps and cover every agent once per step
    assert {row.split("|")[1].strip() for row in rows} == {"0", "7"}
    assert sum(int(row.split("|")[3]) for row in rows) == 2 * n
    calm, _, _ = gap_by_step(
        game_of(gym.make("MFGCrowd-v0", n_steps=8, crowd_aversion=0.0)), goal_seeking, n, seed, TRAINING_RESOLUTION
    )
    assert (calm.crowd_costs == 0).all()
    with pytest.raises(ValueError, match="MFGCrowd-v0"):
        gap_by_step(game_of(gym.make("MFGCrowdLQ-v0")), goal_seeking, n, seed)
    with pytest.raises(ValueError, match="actions_at must be steps in \\[0, 7\\]"):
        gap_by_step(game, goal_seeking, n, seed, TRAINING_RESOLUTION, actions_at=(8,))


def test_action_rows_bin_by_distance_and_measure_braking():
    """Agents 0.05 and 0.4 from the goal, moving along x: a policy braking at half the bound (normalized 0.5, so 1 in
    physical units, all of it against the velocity) and a best response at rest."""
    model = game_of(gym.make("MFGCrowd-v0")).model.populations[0]
    states = np.array([[1.05, 0.0, 0.3, 0.0], [0.6, 0.0, -0.2, 0.0], [0.6, 0.0, 0.2, 0.0]])
    braking = np.array([[-0.5, 0.0], [0.5, 0.0], [-0.5, 0.0]])
    rows = action_rows(model, 3, states, braking, np.zeros((3, 2)))
    assert rows == [
        "| 3 | [0, 0.1) | 1 | 0.30 | 1.00 / +1.00 / 0.00 | 0.00 / +0.00 / 1.00 |",
        "| 3 | [0.3, 0.5) | 2 | 0.20 | 1.00 / +1.00 / 0.00 | 0.00 / +0.00 / 1.00 |",
    ]


def test_crowd_gap_by_step_prints_a_run_folder(tmp_path, capsys):
    flags = ["--algo", "td3", "--env", "MFGCrowd-v0", "-f", str(tmp_path), "--no-progress", "-n", "80", "--no-figures"]
    flags += ["--n-particles", "16", "--n-learners", "8", "--eval-particles", "50", "--no-eval-gap"]
    flags += ["--hyperparams", "learning_starts:16", "batch_size:16", "callback:[]"]
    flags += ["env_kwargs:dict(n_steps=6, population_representation='moments')"]  # the config's observation
    run_dir = train(parse_args(flags))
    capsys.readouterr()  # the training's own lines
    gap_by_step_main([str(run_dir), "--n-particles", "100", "--every", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:-1]] == ["0", "4", "5"]
    accumulated = float(lines[-2].split("|")[5])
    policy, best = (float(part.split()[-1]) for part in lines[-1].split(","))
    assert accumulated == pytest.approx(best - policy, abs=0.01)
    gap_by_step_main([str(run_dir), "--n-particles", "100", "--every", "4", "--actions-at", "2"])
    lines = capsys.readouterr().out.splitlines()
    rows = lines[lines.index("") + 3 :]
    assert rows and {row.split("|")[1].strip() for row in rows} == {"2"}
    assert sum(int(row.split("|")[3]) for row in rows) == 100
    with pytest.raises(SystemExit):
        gap_by_step_main([str(run_dir), "--actions-at", "6"])  # the run has steps 0 to 5
    with pytest.raises(SystemExit):
        gap_by_step_main([str(tmp_path)])  # not a finished run folder


def test_critic_slope_rows_are_the_effort_cost_at_the_last_step(tmp_path, capsys):
    """``scripts/critic_slope.py``: at the last step there is no continuation, so the Monte Carlo and the dp rows are
    the reward's effort term along a unit braking direction, ``-l1 a_max alpha`` (0.2 alpha here), best at 0; the
    rows print one gain per ``alpha``."""
    run_dir = tiny_crowd_run(tmp_path)
    capsys.readouterr()
    critic_slope_main([str(run_dir), "--steps", "2", "5", "--n-particles", "60", "--agents", "20", "--paths", "3"])
    lines = capsys.readouterr().out.splitlines()
    tables = {line.split(":")[0]: index for index, line in enumerate(lines) if line.startswith("step ")}
    assert list(tables) == ["step 2", "step 5"]
    rows = {
        line.split("|")[1].strip(): line.split("|")[2:-1] for line in lines[tables["step 5"] + 4 : tables["step 5"] + 7]
    }
    assert list(rows) == ["critic", "Monte Carlo", "dp"]
    for name in ("Monte Carlo", "dp"):
        gains = np.array([float(cell) for cell in rows[name][:-1]])
        np.testing.assert_allclose(gains, -0.2 * ALPHAS, atol=1.5e-3)  # printed to 3 decimals
        assert float(rows[name][-1]) == 0.0
    assert len(rows["critic"]) == len(ALPHAS) + 1
    with pytest.raises(SystemExit):
        critic_slope_main([str(run_dir), "--steps", "6"])  # the run has steps 0 to 5
    with pytest.raises(SystemExit):
        critic_slope_main([str(run_dir), "--paths", "0"])
    with pytest.raises(ValueError, match="MFGCrowd-v0"):
        slope_rows(game_of(gym.make("MFGCrowdLQ-v0")), None, (0,), 10, 5, 2, 0)  # type: ignore[arg-type]


def test_best_time_only_policy_is_a_local_minimum_below_the_fixed_law_equilibrium():
    """``scripts/population_aware.py``: on a random initial law the best time-only affine policy found by L-BFGS has a
    smaller exact gap than the fixed law's equilibrium written as a function of time, a positive one (only a policy
    that reads the population reaches 0), and no coordinate step lowers it."""
    model = mfg_envs.LinearQuadraticEnv(n_steps=5, init_mean_std=1.0).model
    fixed = fixed_law_time_only(model)
    start = np.concatenate([fixed.gains[:, 0, 0], fixed.offsets[:, 0]])
    gap, parameters, _ = best_time_only(model, start)
    assert 0.0 < gap < exact_gap(model, fixed) - 1e-3
    assert gap == pytest.approx(exact_gap(model, time_only_policy(model, parameters)), abs=1e-12)
    for step in np.eye(parameters.size) * 1e-3:
        for sign in (1.0, -1.0):
            assert exact_gap(model, time_only_policy(model, parameters + sign * step)) >= gap - 1e-10


def test_the_scripts_sweep_changes_with_the_shipped_configuration(monkeypatch):
    """The benchmark scripts name their sweep after their settings and what the trials resolve to: the same command
    resumes its sweep on the same code, and starts another one once a shipped hyperparameter changed (it would
    otherwise return the earlier code's results)."""
    from benchmark_equilibrium import sweep_name

    from sb3_meanfield.hyperparams import td3
    from sb3_meanfield.sweep import Trial

    trials = [Trial("MFGLinearQuadratic-v0", "td3", seed) for seed in (0, 1)]
    name = sweep_name("benchmark_equilibrium", trials, True)
    assert sweep_name("benchmark_equilibrium", trials, True) == name
    assert sweep_name("benchmark_equilibrium", trials, False) != name
    monkeypatch.setitem(td3.self_play["MFGLinearQuadratic-v0"], "tau", 0.5)
    assert sweep_name("benchmark_equilibrium", trials, True) != name


def test_the_barrier_game_adds_the_barrier_to_the_reward_and_its_best_response_stays_inside():
    """``scripts/barrier_floor.py``'s model: the walled crowd's reward plus ``lambda sum_j log(1 - (a_j/a_max)^2)``
    and ``-kappa sum_j (a_j/a_max)^2`` (closed forms, and nothing at ``lambda = kappa = 0``); its dp best response
    to a frozen flow, read through the same ``action_reward``, pushes less hard than the plain game's and never to the
    bound, where the plain one does."""
    rng = np.random.default_rng(0)
    states, actions = rng.uniform(-1.5, 1.5, (50, 4)), rng.uniform(-2.0, 2.0, (50, 2))
    mean_field = {"density": rng.uniform(0.0, 3.0, 400)}
    plain, flat, barrier = CrowdModel(n_steps=8), BarrierCrowdModel(0.0, n_steps=8), BarrierCrowdModel(0.3, n_steps=8)
    reward = plain.reward(states, actions, mean_field, 0)
    expected = reward + 0.3 * np.log(1 - (actions / 2.0) ** 2).sum(axis=1)
    np.testing.assert_allclose(barrier.reward(states, actions, mean_field, 0), expected, rtol=1e-12)
    np.testing.assert_array_equal(flat.reward(states, actions, mean_field, 0), reward)
    quadratic = BarrierCrowdModel(0.0, 0.2, n_steps=8).reward(states, actions, mean_field, 0)
    np.testing.assert_allclose(quadratic, reward - 0.2 * ((actions / 2.0) ** 2).sum(axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="action_barrier must be >= 0"):
        BarrierCrowdModel(-0.1)
    with pytest.raises(ValueError, match="action_l2 must be >= 0"):
        BarrierCrowdModel(0.1, -0.2)
    n, seed = 300, 2
    flows, _ = rollout(Game(plain, n), neutral_policies(Game(plain, n).model), seed)
    responder = DPBestResponse(fit_resolution(TRAINING_RESOLUTION, plain))
    responses = [responder(Game(model, n), 0, flows, seed) for model in (plain, barrier)]
    obs = {"state": states, "time": np.full((50, 1), 0.25)}
    pushes = [np.abs(response(obs)) for response in responses]
    assert pushes[1].mean() < pushes[0].mean()
    assert pushes[0].max() == pytest.approx(1.0) and pushes[1].max() < 1.0


def tiny_crowd_run(tmp_path: Path, algo: str = "td3") -> Path:
    """A finished MFGCrowd-v0 run of 6 steps and 16 particles, with its checkpoint."""
    flags = ["--algo", algo, "--env", "MFGCrowd-v0", "-f", str(tmp_path), "--no-progress", "-n", "80", "--no-figures"]
    flags += ["--n-particles", "16", "--n-learners", "8", "--eval-particles", "50", "--no-eval-gap"]
    flags += ["--hyperparams", "learning_starts:16", "batch_size:16", "callback:[]"]
    flags += ["env_kwargs:dict(n_steps=6, population_representation='moments')"]
    return train(parse_args(flags))


def fixed_teacher(obs: dict[str, np.ndarray]) -> np.ndarray:
    """A deterministic policy of the observation, neither constant nor at the bound."""
    return 0.8 * np.tanh(obs["state"][:, :2] - 0.5 * obs["state"][:, 2:4])


def clone_error(model, game: Game, seed: int) -> float:
    """Mean squared distance between the model's and the teacher's actions on the states of one episode of the
    teacher's particles."""
    observations, labels = observations_and_labels(game, fixed_teacher, fixed_teacher, seed)
    return float(np.mean((ModelPolicy(model)(observations) - labels) ** 2))


def test_clone_fits_the_actor_and_its_target_to_the_teacher(tmp_path):
    run_dir = tiny_crowd_run(tmp_path)
    model = MFTD3.load(run_dir / "model.zip", device="cpu")
    env = gym.make("MFGCrowd-v0", n_steps=6, population_representation="moments")
    game = game_of(env).clone(64)
    before = clone_error(model, game, seed=7)
    rounds = list(clone(model, game, fixed_teacher, rounds=2, episodes=2, steps=300, lr=3e-3))
    assert [samples for samples, _ in rounds] == [2 * 64 * 6, 4 * 64 * 6]  # DAgger: the second round adds its own
    assert clone_error(model, game, seed=7) < 0.1 * before
    for target, online in zip(model.actor_target.parameters(), model.actor.parameters()):
        assert th.equal(target, online)


def test_clone_writes_a_resumable_copy_and_leaves_the_run_alone(tmp_path, monkeypatch, capsys):
    import clone_reference

    run_dir = tiny_crowd_run(tmp_path)
    capsys.readouterr()  # the training's own lines
    original = (run_dir / "checkpoint" / "training_state.pt").read_bytes()
    monkeypatch.setattr(clone_reference, "solve_equilibrium", lambda env: SimpleNamespace(policy=fixed_teacher))
    copy = tmp_path / "copy"
    flags = [str(run_dir), "--rounds", "1", "--episodes", "1", "--steps", "200", "--eval-particles", "50"]
    clone_main([*flags, "--resume-copy", str(copy)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:4]] == ["the run's actor", "0"]
    assert (run_dir / "checkpoint" / "training_state.pt").read_bytes() == original
    trained = MFTD3.load(run_dir / "model.zip", device="cpu")
    state = th.load(copy / "checkpoint" / "training_state.pt", weights_only=False)
    game = game_of(gym.make("MFGCrowd-v0", n_steps=6, population_representation="moments")).clone(64)
    assert clone_error(state["model"], game, seed=3) < clone_error(trained, game, seed=3)
    resumed = train(parse_args(["--resume", str(copy), "-n", "160", "--no-progress", "--no-figures"]))
    assert resumed == copy
    with pytest.raises(SystemExit):
        clone_main([str(tmp_path)])  # not a finished run folder
    with pytest.raises(SystemExit):
        clone_main([str(run_dir), "--rounds", "0"])
    with pytest.raises(SystemExit):
        clone_main([*flags, "--resume-copy", str(copy)])  # the copy exists
