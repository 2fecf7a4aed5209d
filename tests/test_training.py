"""Self-consistent training: the self-play VecEnv, population updates, convergence monitors, learn() for every
algorithm x env id x mode (tiny budgets)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from helpers import StopAfter, rollout_population
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from torch import nn

import mfg_envs
from mfg_envs.core import ConstantPolicy, Population
from sb3_meanfield import ModelPolicy, nash_gap
from sb3_meanfield.common.callbacks import (
    ActionBarrierSchedule,
    MeanFieldMonitor,
    MixturePolicy,
    PolicyAveraging,
    PopulationSyncCallback,
    particle_samples,
    population_change,
    population_distance,
    probe_observations,
)
from sb3_meanfield.common.vec_env import PopulationVecEnv
from sb3_meanfield.config import build, build_trainer, resolve_config
from sb3_meanfield.ddpg import MFDDPG
from sb3_meanfield.flags import UsageError
from sb3_meanfield.hyperparams import ACTION_BARRIER, CONCAT_POLICY_KWARGS, FINAL_ACTION_BARRIER
from sb3_meanfield.sac import MFSAC
from sb3_meanfield.td3 import MFTD3
from sb3_meanfield.train import parse_args, train

th.set_num_threads(1)

LQ = "MFGLinearQuadratic-v0"
ALGORITHMS = {"ddpg": MFDDPG, "td3": MFTD3, "sac": MFSAC}
POLICY_AVERAGING_KEY = "sb3_meanfield.common.callbacks.PolicyAveraging"
SMALL_POLICY = {
    "net_arch": {"pi": [8], "qf": [8]},
    "actor_extractor_kwargs": {"state_arch": [8], "population_arch": [8]},
    "critic_extractor_kwargs": {"state_arch": [8], "population_arch": [8]},
}


def small_model(env, algo=MFTD3, **kwargs):
    model = algo(
        "MeanFieldPolicy", env, policy_kwargs=SMALL_POLICY, learning_starts=10, batch_size=16, seed=0, **kwargs
    )
    model.set_logger(Logger(None, []))  # callbacks initialised by hand need one before learn()
    return model


def last_linear(module: nn.Module) -> nn.Linear:
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)][-1]


def make_constant(linear: nn.Module, value: float) -> None:
    """Make ``linear`` output ``value`` whatever its input."""
    with th.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(value)


# --------------------------------------------------------------------------- PopulationVecEnv
@pytest.mark.parametrize("env_id", mfg_envs.ENV_IDS)
@pytest.mark.parametrize("population_action", [None, 0.3])
def test_self_play_env_is_the_batched_env_with_the_population_policy(env_id, population_action):
    """Learners' actions plus the population policy's, fed to the batched env by hand, give the same trajectory."""
    n_particles, n_learners = 6, 4
    env = PopulationVecEnv.from_id(env_id, n_particles, n_learners)
    action_dim = env.action_space.shape[0]
    if population_action is not None:
        env.set_population_policy(ConstantPolicy(np.full(action_dim, population_action)))
    reference = gym.make_vec(env_id, num_envs=n_particles, autoreset_mode="same_step")
    env.seed(3)
    obs = env.reset()
    expected_obs, _ = reference.reset(seed=3)
    rng = np.random.default_rng(0)
    others = np.full((n_particles - n_learners, action_dim), population_action or 0.0)
    for step in range(reference.model.n_steps):
        for key, value in obs.items():
            assert value.flags.writeable
            np.testing.assert_array_equal(value, expected_obs[key][:n_learners])
        actions = rng.uniform(-1, 1, (n_learners, action_dim))
        obs, rewards, dones, infos = env.step(actions)
        expected_obs, expected_rewards, terminated, _, info = reference.step(np.concatenate([actions, others]))
        np.testing.assert_allclose(rewards, expected_rewards[:n_learners], rtol=1e-6)
        last = step == reference.model.n_steps - 1
        assert dones.tolist() == [last] * n_learners == terminated[:n_learners].tolist()
    for i, info_i in enumerate(infos):
        for key, value in info_i["terminal_observation"].items():
            np.testing.assert_array_equal(value, info["final_obs"][key][i])
        assert info_i["terminal_observation"]["time"][0] == 1.0
    assert obs["time"][0, 0] == 0.0  # the step that ends the episode returns the next episode's first observation


def test_self_play_env_forwards_the_population_api():
    env = PopulationVecEnv.from_id(LQ, n_particles=5, n_learners=3)
    populations = env.get_attr("population")
    assert len(populations) == 3 and populations[0] is env.population is env.game.members[0]
    assert env.env_method("set_population_policy", None, indices=[0]) == [None]
    assert env.env_is_wrapped(gym.Wrapper) == [False] * 3
    env.seed(7)
    first = env.reset()
    env.seed(7)
    np.testing.assert_array_equal(env.reset()["state"], first["state"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_particles": 4, "n_learners": 5}, "n_learners must be in"),
        ({"n_particles": 4, "n_learners": 0}, "n_learners"),
        ({"n_particles": 0}, "n_particles"),
        ({"n_particles": 4, "sigma": -1.0}, "sigma"),
    ],
)
def test_self_play_env_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PopulationVecEnv.from_id(LQ, **kwargs)


def test_self_play_env_rejects_bad_actions_and_policies():
    env = PopulationVecEnv.from_id(LQ, n_particles=4, n_learners=2)
    env.reset()
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="policy must be a callable"):
        env.set_population_policy(0.5)
    env.set_population_policy(lambda obs: np.zeros((1, 1)))  # wrong number of rows for the 2 other particles
    with pytest.raises(ValueError, match="population policy output"):
        env.step(np.zeros((2, 1)))


# --------------------------------------------------------------------------- population updates
def test_mixture_policy_assigns_rows_round_robin():
    policies = tuple(ConstantPolicy(np.array([value])) for value in (-0.5, 0.5, 0.1))
    obs = {"state": np.zeros((7, 1)), "time": np.zeros((7, 1))}
    np.testing.assert_array_equal(MixturePolicy(policies)(obs)[:, 0], [-0.5, 0.5, 0.1, -0.5, 0.5, 0.1, -0.5])
    two_rows = {key: value[:2] for key, value in obs.items()}
    np.testing.assert_array_equal(MixturePolicy(policies)(two_rows)[:, 0], [-0.5, 0.5])


def test_fixed_point_sync_pushes_a_frozen_copy_of_the_actor():
    env = make_vec_env(LQ, n_envs=1, env_kwargs={"n_particles": 50})
    model = small_model(env)
    callback = PopulationSyncCallback(sync_freq=5)
    model.learn(30, callback=callback)
    assert callback.n_updates == 1 + 30 // 5
    callback.sync()
    game = env.envs[0].unwrapped
    synced = game.record_population_flow(seed=1)
    expected, _ = rollout_population(Population(game.model, 50), ModelPolicy(model), 1)
    np.testing.assert_array_equal(synced.population, expected.population)
    make_constant(last_linear(model.actor), 0.7)  # training goes on: the population must not follow
    np.testing.assert_array_equal(game.record_population_flow(seed=1).population, synced.population)
    moved, _ = rollout_population(Population(game.model, 50), ModelPolicy(model), 1)
    assert not np.array_equal(moved.population, synced.population)


class PolicyRecorder:
    """Stands in for the training env: keeps what the callback pushes."""

    def env_method(self, name, policy):
        assert name == "set_population_policy"
        self.policy = policy


def test_fictitious_play_population_is_the_mixture_of_all_iterates(monkeypatch):
    env = make_vec_env(LQ, n_envs=1, env_kwargs={"n_particles": 20})
    model = small_model(env)
    callback = PopulationSyncCallback(sync_freq=1000, mode="fictitious_play")
    callback.init_callback(model)
    recorder = PolicyRecorder()
    monkeypatch.setattr(model, "get_env", lambda: recorder)
    obs = env.reset()
    iterate_actions = []
    for bias in (-0.4, 0.2, 0.9):
        make_constant(last_linear(model.actor), bias)
        iterate_actions.append(np.tanh(bias))
        callback.sync()
    actions = recorder.policy(obs)[:, 0]
    for j, expected in enumerate(iterate_actions):
        np.testing.assert_allclose(actions[j::3], expected, rtol=1e-6)
    assert len(callback.iterates) == 3


@pytest.mark.parametrize(("kwargs", "match"), [({"sync_freq": 0}, "sync_freq"), ({"mode": "average"}, "mode")])
def test_sync_callback_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PopulationSyncCallback(**kwargs)


# --------------------------------------------------------------------------- convergence monitors
def test_probe_set_is_reproducible_and_spans_the_episode():
    population = gym.make(LQ).unwrapped.population
    first = probe_observations(population, 300, np.random.default_rng(0))
    second = probe_observations(population, 300, np.random.default_rng(0))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    times = np.unique(first["time"])
    assert first["state"].shape == (300, 1) and times.min() == 0.0 and times.max() < 1.0 and times.size > 20
    np.testing.assert_allclose(first["population"].sum(axis=1), 1.0, rtol=1e-5)


def test_monitor_measures_policy_q_and_population_changes():
    env = make_vec_env(LQ, n_envs=1, env_kwargs={"n_particles": 50})
    model = small_model(env)
    monitor = MeanFieldMonitor(check_freq=1000, n_probe=64, flow_particles=200)
    monitor.init_callback(model)
    monitor.on_training_start({}, {})
    actor_out, critic_out = last_linear(model.actor), model.critic.q_networks.q_head[-1]  # every critic's
    make_constant(actor_out, 0.1)
    make_constant(critic_out, -2.0)
    first = monitor.check()
    assert set(first) == {"mfg/population_return"}
    unchanged = monitor.check()
    assert unchanged["mfg/policy_change"] == unchanged["mfg/q_change"] == unchanged["mfg/population_change"] == 0
    make_constant(actor_out, 0.5)
    make_constant(critic_out, -1.25)
    changed = monitor.check()
    assert changed["mfg/policy_change"] == pytest.approx(np.tanh(0.5) - np.tanh(0.1), rel=1e-5)
    assert changed["mfg/q_change"] == pytest.approx(0.75, rel=1e-5)
    # W1 of the states' law, in units of the histogram range: the action moved by tanh(0.5) - tanh(0.1) ~ 0.36
    assert 0.01 < changed["mfg/population_change"] < 1.0
    assert [row["timesteps"] for row in monitor.history] == [0, 0, 0]


@pytest.mark.parametrize("env_id", mfg_envs.ENV_IDS)
def test_population_change_grows_with_the_shift_of_the_policy_on_every_model(env_id):
    """The monitor's distance between flows does not saturate: a small shift of every action gives a small change,
    a bigger shift a bigger one (the L1 distance of histograms jumped to 2 on MFGPrice-v0's narrow price law)."""
    population = gym.make(env_id).unwrapped.population
    bounds, action_dim = population.model.histogram_bounds, population.model.action_dim
    flows = {
        shift: particle_samples(population, ConstantPolicy(np.full(action_dim, shift)), 300, seed=4)[0]
        for shift in (0.0, 0.01, 0.1)
    }
    assert len(flows[0.0]) == population.model.n_steps + 1
    assert population_change(flows[0.0], flows[0.0], bounds) == 0.0
    small, big = (population_change(flows[0.0], flows[shift], bounds) for shift in (0.01, 0.1))
    assert 0 < small < 0.1 and big > 3 * small


def test_population_distance_is_the_w1_distance_of_the_marginals_in_units_of_the_range():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(1000, 2))
    bounds = np.array([[-2.0, 2.0], [0.0, 1.0]])
    shifted = values + np.array([0.4, 0.1])  # W1 = 0.4 / 4 and 0.1 / 1 on the two axes
    assert population_distance(values, shifted, bounds) == pytest.approx(0.1)
    assert population_distance(values, values[::-1], bounds) == 0.0  # the order of the particles does not matter
    assert population_distance(values, 100 * values, bounds) > 2  # no saturation
    with pytest.raises(ValueError, match="same shape"):
        population_distance(values, values[:10], bounds)


# --------------------------------------------------------------------------- a model on the wrong env
@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [("MFGPrice-v0", {}), (LQ, {"n_bins": 12}), ("MFGLinearQuadraticMulti-v0", {})],
)
def test_nash_gap_of_a_model_on_another_env_names_the_spaces(env_id, env_kwargs):
    """A model trained on the LQ game, scored on another model (or with other histogram sizes), fails with the spaces
    of both before any evaluation, not with torch's shape error."""
    model = small_model(PopulationVecEnv.from_id(LQ, n_particles=8, n_learners=4))
    with pytest.raises(ValueError, match=r"the model's observation/action spaces do not match the env's") as error:
        nash_gap(
            [model] * len(mfg_envs.game_of(gym.make(env_id)).names), gym.make(env_id, **env_kwargs), n_particles=50
        )
    assert "the model observes population (40,), state (1,), time (1,), acts (1,)" in str(error.value)
    assert nash_gap(model, gym.make(LQ), n_particles=50, n_replicates=2).gap >= -1  # the right env is scored


# --------------------------------------------------------------------------- learn() through the launcher
def tiny_argv(tmp_path, algo, env_id, mode, *extra):
    n_steps = {"self-play": 8 * 30, "representative": 60}[mode]
    argv = ["--algo", algo, "--env", env_id, "--mode", mode, "-n", str(n_steps), "-f", str(tmp_path)]
    argv += ["--n-particles", "32", "--eval-particles", "300", "--no-progress", *extra]
    argv += ["--n-learners", "8"] if mode == "self-play" else []  # a self-play flag
    return [*argv, "--hyperparams", "learning_starts:16", "batch_size:16", f"policy_kwargs:{SMALL_POLICY!r}"]


@pytest.mark.parametrize("mode", ["self-play", "representative"])
@pytest.mark.parametrize("env_id", mfg_envs.ENV_IDS)
@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_learn_for_every_algorithm_env_and_mode(tmp_path, algo, env_id, mode):
    """The shipped config of every (algorithm, env id) builds and trains in both modes."""
    config = resolve_config(parse_args(tiny_argv(tmp_path, algo, env_id, mode)))
    env, model, callbacks = build(config)
    assert isinstance(model, ALGORITHMS[algo]) and env.num_envs == (8 if mode == "self-play" else 1)
    initial = [parameter.clone() for parameter in model.actor.parameters()]
    model.learn(config["n_timesteps"], callback=callbacks)
    assert model.num_timesteps == config["n_timesteps"]
    assert model.replay_buffer.size() * env.num_envs == config["n_timesteps"]
    assert any(not th.equal(before, after) for before, after in zip(initial, model.actor.parameters()))
    if mode == "representative":
        assert any(isinstance(callback, PopulationSyncCallback) for callback in callbacks)


def test_self_play_population_plays_the_live_shared_policy(tmp_path):
    """With 8 learners among 32 particles, learners acting deterministically reproduce everyone playing the policy."""
    config = resolve_config(parse_args(tiny_argv(tmp_path, "td3", LQ, "self-play")))
    env, model, _ = build(config)
    make_constant(last_linear(model.actor), 0.3)  # the population must see later changes of the live policy
    env.seed(5)
    obs = env.reset()
    populations = []
    for _ in range(game_steps(LQ)):
        populations.append(obs["population"][0])
        obs, _, _, infos = env.step(model.predict(obs, deterministic=True)[0])
    populations.append(infos[0]["terminal_observation"]["population"])
    reference = Population(env.get_attr("population")[0].model, 32)
    flow, _ = rollout_population(reference, ModelPolicy(model), 5)
    np.testing.assert_array_equal(np.stack(populations), flow.population)
    learners = np.stack([info["terminal_observation"]["state"] for info in infos])
    np.testing.assert_allclose(learners, reference.states[:8], rtol=1e-5)


def test_launcher_writes_metrics_monitors_and_plot(tmp_path, capsys):
    extra = ("--sync-freq", "20", "--sync-mode", "fictitious_play")
    run_dir = train(parse_args(tiny_argv(tmp_path, "td3", LQ, "representative", *extra)))
    assert run_dir.name.startswith(f"{LQ}_td3_0_")
    assert {"model.zip", "config.yaml", "metrics.csv", "metrics.json", "figures"} <= {
        path.name for path in run_dir.iterdir()
    }
    figures = {path.name for path in (run_dir / "figures").iterdir()}
    assert {"learning_curves.png", "policy.png", "moment_flows.png"} <= figures
    assert MFTD3.load(run_dir / "model.zip").num_timesteps == 60
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    sync = [entry for entry in config["callback"] if "PopulationSyncCallback" in next(iter(entry))]
    assert list(sync[0].values()) == [{"sync_freq": 20, "mode": "fictitious_play"}]
    result = json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    assert result["gap"] >= -4 * result["standard_error"]  # a best response cannot lose to the policy
    assert result["method"] == "exact"
    assert f"exact Nash gap {result['gap']:.4g}" in capsys.readouterr().out


def test_launcher_logs_the_monitors_over_time(tmp_path):
    callback = "callback:[{'sb3_meanfield.common.callbacks.MeanFieldMonitor': {'check_freq': 10, 'n_probe': 32}}]"
    run_dir = train(parse_args(tiny_argv(tmp_path, "td3", LQ, "self-play", "--hyperparams", callback)))
    rows = json.loads((run_dir / "metrics.json").read_text())["progress"]
    checks = [row for row in rows if row.get("mfg/policy_change") is not None]
    assert [row["time/total_timesteps"] for row in checks] == [160, 240]  # the first check is the reference
    assert all(row["mfg/q_change"] >= 0 and 0 <= row["mfg/population_change"] <= 2 for row in checks)
    episodes = [row for row in rows if row.get("rollout/ep_rew_mean") is not None]
    assert len(episodes) == 240 // (8 * game_steps(LQ))  # one row per episode of the 8 learners


def game_steps(env_id: str) -> int:
    return gym.make(env_id).unwrapped.model.n_steps


def test_tensorboard_gets_scalars_and_a_population_histogram(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = train(parse_args([*tiny_argv(tmp_path, "td3", LQ, "self-play"), "--tensorboard", "--no-figures"]))
    tags = {"scalars": set(), "histograms": set()}
    for events in (run_dir / "tensorboard").iterdir():
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for kind in tags:
            tags[kind] |= set(accumulator.Tags()[kind])
    assert "train/critic_loss" in tags["scalars"]
    assert "mfg/population" in tags["histograms"]


# ------------------------------------------------------------------ the deterministic actors stay off the bound
def saturation_at_start(model, population: Population) -> float:
    """Fraction of the initial states' deterministic actions within 0.02 of the action bound."""
    cohort = population.clone(500)
    cohort.reset(np.random.default_rng(0))
    return float((np.abs(ModelPolicy(model)(cohort.observation())) > 0.98).mean())


@pytest.mark.parametrize(
    ("algo", "env_id"), [("td3", "MFGCrowdLQ-v0"), ("ddpg", "MFGCrowdLQ-v0"), ("td3", "MFGCrowd-v0")]
)
@pytest.mark.parametrize("barrier", [0.0, None])
def test_crowd_actor_saturates_without_the_shipped_barrier(tmp_path, algo, env_id, barrier):
    """The shipped crowd configs of TD3/DDPG carry the actor's log barrier; without it the actor's first updates
    drive every initial action to the bound (the failure of the crowd benchmark runs), with it none is there.
    The crowd-LQ equilibrium's initial actions lie near 0.5 (``|a| <= 0.58``). The walled crowd's actors observe the
    population's moments, its offsets from the crowd and bigger critics since 2026-12-05; the failure was found, and is
    checked here, with the histogram and the networks of then."""
    config = resolve_config(parse_args(["--algo", algo, "--env", env_id, "-f", str(tmp_path)]))
    config["env_kwargs"]["population_representation"] = "histogram"
    if env_id == "MFGCrowd-v0":  # its networks then: no offsets from the crowd, critics of 64-64
        config["algo_kwargs"]["policy_kwargs"] = {**CONCAT_POLICY_KWARGS, "action_barrier": ACTION_BARRIER}
    if barrier is not None:  # plain TD3/DDPG: no barrier and no schedule
        config["algo_kwargs"]["policy_kwargs"]["action_barrier"] = barrier
        config["callback"] = [entry for entry in config["callback"] if "ActionBarrierSchedule" not in str(entry)]
    env, model, callbacks = build(config)
    assert any(isinstance(callback, ActionBarrierSchedule) for callback in callbacks) == (barrier is None)
    assert model.critic.action_barrier == (ACTION_BARRIER if barrier is None else barrier)
    # the first 200 of the run's 12,500 env steps (learning rate and noise on their full-run schedules)
    model.learn(config["n_timesteps"], callback=[*callbacks, StopAfter(200)])
    assert model.num_timesteps == 200 * env.num_envs
    saturated = saturation_at_start(model, env.get_attr("population", indices=[0])[0])
    assert saturated < 0.05 if barrier is None else saturated > 0.9


@pytest.mark.parametrize("algo", ["td3", "ddpg"])
@pytest.mark.parametrize("env_id", ["MFGCrowd-v0", "MFGCrowdMulti-v0"])
def test_crowd_barrier_gives_way_to_a_quadratic_of_the_same_curvature(algo, env_id):
    """On the walled crowds the deterministic actors' schedule ends at a small barrier plus a quadratic whose
    curvatures at 0 add up to the final barrier of the other ids (``lambda log(1 - a^2) = -lambda a^2 + O(a^4)``);
    MF-TD3's critics there read the post-decision state, MF-DDPG's the action."""
    config = resolve_config(parse_args(["--algo", algo, "--env", env_id]))
    (entry,) = [entry for entry in config["callback"] if "ActionBarrierSchedule" in next(iter(entry))]
    schedule = ActionBarrierSchedule(**next(iter(entry.values())))
    assert 0.0 < schedule.final_barrier < FINAL_ACTION_BARRIER
    assert schedule.final_barrier + schedule.final_action_l2 == pytest.approx(FINAL_ACTION_BARRIER)
    policy_kwargs = config["algo_kwargs"]["policy_kwargs"]
    assert policy_kwargs["action_barrier"] == ACTION_BARRIER and "action_l2" not in policy_kwargs  # kappa from 0
    assert policy_kwargs.get("post_decision", False) == (algo == "td3")
    crowd_lq = resolve_config(parse_args(["--algo", algo, "--env", "MFGCrowdLQ-v0"]))
    (entry,) = [entry for entry in crowd_lq["callback"] if "ActionBarrierSchedule" in next(iter(entry))]
    assert next(iter(entry.values())) == {"final_barrier": FINAL_ACTION_BARRIER}
    assert "post_decision" not in crowd_lq["algo_kwargs"]["policy_kwargs"]


class RecordBarrier(BaseCallback):
    """The critic's barrier at every env step, with SB3's progress."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[float, float, float]] = []

    def _on_step(self) -> bool:
        critic = self.model.critic
        self.rows.append((1.0 - self.model._current_progress_remaining, critic.action_barrier, critic.action_l2))
        return True


def test_action_barrier_schedule_decays_linearly_with_the_progress():
    env = mfg_envs.LinearQuadraticEnv(n_particles=20, n_steps=10)
    model = MFTD3(
        "MeanFieldPolicy", env, policy_kwargs={**SMALL_POLICY, "action_barrier": 0.2}, learning_starts=10, seed=0
    )
    record = RecordBarrier()
    model.learn(100, callback=[ActionBarrierSchedule(final_barrier=0.02), record])
    progress, barrier, kappa = np.array(record.rows).T
    np.testing.assert_allclose(progress, np.arange(100) / 100)  # SB3 updates the progress after the callbacks
    np.testing.assert_allclose(barrier, 0.2 - 0.18 * progress, rtol=1e-12)
    assert model.policy.action_barrier == 0.2  # the configured start, saved with the model
    assert np.all(kappa == 0.0)  # no final_action_l2: the policy's quadratic, none here


def test_action_barrier_schedule_moves_the_quadratic_as_the_barrier_fades():
    env = mfg_envs.LinearQuadraticEnv(n_particles=20, n_steps=10)
    policy = {**SMALL_POLICY, "action_barrier": 0.2, "action_l2": 0.01}
    model = MFDDPG("MeanFieldPolicy", env, policy_kwargs=policy, learning_starts=10, seed=0)
    record = RecordBarrier()
    model.learn(100, callback=[ActionBarrierSchedule(final_barrier=0.01, final_action_l2=0.09), record])
    progress, barrier, kappa = np.array(record.rows).T
    np.testing.assert_allclose(barrier, 0.2 - 0.19 * progress, rtol=1e-12)
    np.testing.assert_allclose(kappa, 0.01 + 0.08 * progress, rtol=1e-12)
    np.testing.assert_allclose(model.logger.name_to_value["train/action_l2"], kappa[-1])
    assert (model.policy.action_barrier, model.policy.action_l2) == (0.2, 0.01)


def test_action_barrier_schedule_needs_a_barrier_policy():
    with pytest.raises(ValueError, match="final_barrier"):
        ActionBarrierSchedule(final_barrier=-1.0)
    with pytest.raises(ValueError, match="final_action_l2"):
        ActionBarrierSchedule(final_barrier=0.0, final_action_l2=-0.1)
    model = MFSAC("MeanFieldPolicy", mfg_envs.LinearQuadraticEnv(n_particles=20, n_steps=10), learning_starts=10)
    with pytest.raises(ValueError, match="MeanFieldTD3Policy"):
        model.learn(20, callback=ActionBarrierSchedule(final_barrier=0.0))


class RecordActor(BaseCallback):
    """The actor's weights at every env step, by the model's transition count, and after the last update ("end")."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: dict[int | str, dict[str, th.Tensor]] = {}

    def _on_step(self) -> bool:
        self.record(self.model.num_timesteps)
        return True

    def _on_training_end(self) -> None:
        self.record("end")

    def record(self, key: int | str) -> None:
        self.weights[key] = {name: value.clone() for name, value in self.model.actor.state_dict().items()}


@pytest.mark.parametrize("algo", [MFTD3, MFSAC])
def test_policy_averaging_loads_the_mean_of_the_sampled_iterates(algo):
    """``start=0.5, every=10`` over 100 transitions of one agent: SB3's progress at the callback of transition ``t``
    is ``(t - 1) / 100``, so the samples are the iterates at transitions 51, 61, 71, 81, 91 and the last one, after
    the final update."""
    env = mfg_envs.LinearQuadraticEnv(n_particles=20, n_steps=10)
    model = algo("MeanFieldPolicy", env, policy_kwargs=SMALL_POLICY, learning_starts=10, seed=0)
    record = RecordActor()
    averaging = PolicyAveraging(start=0.5, every=10)
    model.learn(100, callback=[record, averaging])
    samples = [record.weights[t] for t in (51, 61, 71, 81, 91, "end")]
    assert any(not th.equal(samples[0][name], samples[-1][name]) for name in samples[0])  # the actor did learn
    averaged = model.actor.state_dict()
    for name, value in averaged.items():
        th.testing.assert_close(value, sum(sample[name] for sample in samples) / len(samples))
    if algo is MFTD3:
        for name, value in model.actor_target.state_dict().items():
            th.testing.assert_close(value, averaged[name])
    assert averaging.counts == {"": 6}


@pytest.mark.parametrize(("keyword", "value"), [("start", 1.0), ("start", -0.1), ("every", 0)])
def test_policy_averaging_rejects_bad_settings(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        PolicyAveraging(**{keyword: value})


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_walled_crowd_configs_average_the_second_half_of_the_run(algo):
    """Every algorithm's walled-crowd entries (one population and two) end on the average of the actor's iterates
    over the second half of the run; the other entries keep the last iterate."""
    averaged = {"MFGCrowd-v0", "MFGCrowdMulti-v0"}
    for env_id in (*mfg_envs.ENV_IDS, *mfg_envs.MULTI_ENV_IDS):
        config = resolve_config(parse_args(["--algo", algo, "--env", env_id]))
        averaging = [entry for entry in config["callback"] if "PolicyAveraging" in next(iter(entry))]
        assert averaging == ([{POLICY_AVERAGING_KEY: {"start": 0.5, "every": 25_000}}] if env_id in averaged else [])


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_walled_crowd_critics_take_the_envs_own_effort_cost(algo):
    """Every algorithm's walled-crowd critics (one population and two) take the known effort cost, the default env's
    ``effort_rate`` (``l1 a_max``); the shipped configs build; every other entry has none; other env keywords need
    their own."""
    rate = gym.make("MFGCrowd-v0").unwrapped.population.model.effort_rate
    known = {"MFGCrowd-v0", "MFGCrowdMulti-v0"}
    for env_id in (*mfg_envs.ENV_IDS, *mfg_envs.MULTI_ENV_IDS):
        config = resolve_config(parse_args(["--algo", algo, "--env", env_id]))
        expected = rate if env_id in known else None
        assert config["algo_kwargs"]["policy_kwargs"].get("action_cost") == expected
    small = ["--algo", algo, "--env", "MFGCrowd-v0", "--n-particles", "40", "--n-learners", "4"]
    assert build(resolve_config(parse_args(small)))[1].critic.action_cost == rate
    two_crowds = resolve_config(parse_args([*small[:2], "--env", "MFGCrowdMulti-v0", *small[4:]]))
    assert [model.critic.action_cost for model in build_trainer(two_crowds)[0].models] == [rate, rate]
    stronger = "env_kwargs:dict(population_representation='moments', action_bound=3.0)"
    with pytest.raises(UsageError, match=r"action_cost must be 0 or 0.3"):
        build(resolve_config(parse_args([*small, "--hyperparams", stronger])))
