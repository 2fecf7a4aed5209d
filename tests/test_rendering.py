"""Frames of every env and front end: shape and type, determinism, what they show, and "human" without a display."""

import itertools
import time
import warnings

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
from pettingzoo.test import render_test
from pettingzoo.utils.conversions import parallel_to_aec

import mfg_envs
from mfg_envs import rendering
from mfg_envs.equilibrium import solve_equilibrium
from mfg_envs.rendering import (
    BAND,
    GOAL,
    LEARNER,
    PARTICLE,
    WALL,
    HistogramScene,
    PlaneScene,
    draw_scene,
    population_masses,
)

ENV_IDS = mfg_envs.ENV_IDS
SIZES = {"MFGCrowd-v0": (400, 400), "MFGCrowdLQ-v0": (400, 400)}


def has_color(frame, color):
    return bool((frame == np.array(color, dtype=np.uint8)).all(axis=-1).any())


def state_policy(states, action_dim):
    """A deterministic state-dependent population policy, so that different seeds give different frames."""
    return 0.5 * np.tanh(np.asarray(states, dtype=float)[..., :action_dim])


def single_agent_frames(env_id, seed, n_steps=3, n_particles=300):
    env = gym.make(env_id, n_particles=n_particles, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    action_dim = env.action_space.shape[0]
    env.unwrapped.set_population_policy(lambda batch: state_policy(batch["state"], action_dim))
    frames = [env.render()]
    for _ in range(n_steps):
        obs, *_ = env.step(state_policy(obs["state"], action_dim).astype(np.float32))
        frames.append(env.render())
    return frames


def vector_frames(env_id, seed, n_steps=3, num_envs=300):
    envs = gym.make_vec(env_id, num_envs=num_envs, render_mode="rgb_array")
    obs, _ = envs.reset(seed=seed)
    frames = [envs.render()]
    for _ in range(n_steps):
        obs, *_ = envs.step(state_policy(obs["state"], envs.single_action_space.shape[0]))
        frames.append(envs.render())
    return frames


def parallel_frames(env_id, seed, n_steps=3, n_agents=50):
    env = mfg_envs.parallel_env(env_id, n_agents=n_agents, render_mode="rgb_array")
    observations, _ = env.reset(seed=seed)
    action_dim = env.action_space("agent_0").shape[0]
    frames = [env.render()]
    for _ in range(n_steps):
        actions = {agent: state_policy(obs["state"], action_dim) for agent, obs in observations.items()}
        observations, *_ = env.step(actions)
        frames.append(env.render())
    return frames


@pytest.mark.parametrize("front_end", [single_agent_frames, vector_frames, parallel_frames])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_frames_are_rgb_deterministic_and_follow_the_population(env_id, front_end):
    frames = front_end(env_id, seed=3)
    height, width = SIZES.get(env_id, (300, 400))
    for frame in frames:
        assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(frames, front_end(env_id, seed=3)))
    # the population moves at every step (states drift, or the first prices/allocations get posted); the time
    # bar at the top changes anyway, so compare the plot area below it
    plot_area = [frame[rendering.MARGIN + rendering.CLOCK_HEIGHT :] for frame in frames]
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(plot_area))
    assert any(not np.array_equal(a, b) for a, b in zip(frames[1:], front_end(env_id, seed=4)[1:]))


def test_histogram_bars_follow_the_population_histogram():
    env = gym.make("MFGLinearQuadratic-v0", n_particles=2000, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    bar = (frame == np.array(rendering.BAR, dtype=np.uint8)).all(axis=-1)
    canvas_cols = np.arange(rendering.MARGIN, frame.shape[1] - rendering.MARGIN)
    heights = bar[:, canvas_cols].sum(axis=0)
    hist = env.unwrapped.population.hist
    # the tallest bar column lies in the fullest bin; the bins are equally wide on the plot area
    tallest_bin = int(np.argmax(heights)) * hist.size // canvas_cols.size
    assert hist[tallest_bin] == hist.max()
    # empty bins draw no bar (columns fully inside an empty bin have no bar pixel)
    empty = np.flatnonzero(hist == 0)
    bin_of_column = np.arange(canvas_cols.size) * hist.size // canvas_cols.size
    assert heights[np.isin(bin_of_column, empty)].max(initial=0) <= 2  # a line may cover a bar's edge


def test_exact_reference_matches_bars_on_the_exact_flow():
    """Frozen to the exact equilibrium flow, the frame shows that flow, and the black exact line sits on the bars."""
    env = gym.make("MFGLinearQuadratic-v0", render_mode="rgb_array")
    equilibrium = solve_equilibrium(env)
    env.unwrapped.set_population_flow(equilibrium.flow)
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.zeros(1, dtype=np.float32))
    population = env.unwrapped.population
    np.testing.assert_allclose(population_masses(population), equilibrium.histograms[10], atol=1e-7)
    scene = env.unwrapped.model.render_scene(population)
    np.testing.assert_allclose(scene.reference, equilibrium.histograms[10])
    assert scene.marks[1].position == pytest.approx(equilibrium.mean_fields[10]["mean"])


def test_frozen_moments_population_counts_its_particles():
    """A best-response env frozen to a flow of moments has no histogram to show: the learner's own particle counts."""
    env = gym.make("MFGCrowdLQ-v0", population_representation="moments", render_mode="rgb_array")
    env.unwrapped.set_population_flow(env.unwrapped.record_population_flow(seed=0))
    env.reset(seed=0)
    masses = population_masses(env.unwrapped.population)
    assert masses.shape == (400,) and masses.sum() == 1.0 and masses.max() == 1.0
    assert env.render().shape == (400, 400, 3)


def test_plane_frame_draws_particles_goal_walls_and_learner():
    env = gym.make("MFGCrowd-v0", n_particles=500, render_mode="rgb_array")
    env.reset(seed=1)
    frame = env.render()
    population = env.unwrapped.population
    canvas = rendering._Canvas(rendering.PLANE_SHAPE, (-2.0, 2.0), (-2.0, 2.0))
    rows, cols = canvas.rows(population.states[1:, 1]), canvas.columns(population.states[1:, 0])
    drawn = (frame[rows, cols] == np.array(PARTICLE, dtype=np.uint8)).all(axis=-1)
    assert drawn.mean() > 0.95  # a few particles hide under the learner or the goal
    goal = env.unwrapped.model.goal
    assert tuple(frame[canvas.rows(goal[1]), canvas.columns(goal[0])]) == GOAL
    learner = population.states[0]
    assert tuple(frame[canvas.rows(learner[1]), canvas.columns(learner[0])]) == LEARNER
    assert has_color(frame, WALL)
    lq = gym.make("MFGCrowdLQ-v0", n_particles=500, render_mode="rgb_array")
    lq.reset(seed=1)
    assert not has_color(lq.render(), WALL)  # the LQ crowd lives on the unbounded plane
    assert has_color(lq.render(), rendering.SIGNAL)  # the exact equilibrium's ellipse


def test_points_off_the_canvas_or_not_finite_map_outside_it_without_warning():
    canvas = rendering._Canvas(rendering.PLANE_SHAPE, (-2.0, 2.0), (-2.0, 2.0))
    far = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cols, rows = canvas.columns(far), canvas.rows(far)
    assert ((cols < canvas.left) | (cols >= canvas.right)).all()
    assert ((rows < canvas.top) | (rows >= canvas.bottom)).all()
    assert canvas.columns(0.0) == canvas.left + (canvas.right - canvas.left) // 2  # the plane's centre, unchanged


def test_resource_frame_marks_the_capacity_range():
    env = gym.make("MFGResource-v0", n_particles=500, render_mode="rgb_array", capacity_min=1.0, capacity_max=2.0)
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))
    frame = env.render()
    canvas = rendering._Canvas(rendering.HISTOGRAM_SHAPE, (0.0, 2.0), (0.0, 1.0))
    band = (frame == np.array(BAND, dtype=np.uint8)).all(axis=-1).any(axis=0)
    assert not band[: canvas.columns(1.0) - 1].any()
    assert band[canvas.columns(1.0) + 2 : canvas.columns(2.0) - 1].all()


def test_price_frame_marks_the_static_price_of_the_signal():
    env = gym.make("MFGPrice-v0", n_particles=200, render_mode="rgb_array")
    env.reset(seed=0)
    model = env.unwrapped.model
    scene = model.render_scene(env.unwrapped.population)
    assert scene.masses.sum() == 0  # no price posted yet
    assert scene.marks[0].position == pytest.approx(model.signal(0) / (2 * model.demand_slope - model.cross_slope))
    env.step(np.zeros(1, dtype=np.float32))
    scene = model.render_scene(env.unwrapped.population)
    posted = env.unwrapped.population.last_actions[:, 0]
    assert scene.marks[1].position == pytest.approx(posted.mean())
    assert scene.masses.sum() == pytest.approx(1.0)


def test_draw_scene_is_fast_at_a_thousand_particles():
    for env_id in ("MFGCrowd-v0", "MFGLinearQuadratic-v0"):
        env = gym.make(env_id, n_particles=1000, render_mode="rgb_array")
        env.reset(seed=0)
        env.render()  # the exact equilibrium is solved (and cached) on the first frame
        started = time.perf_counter()
        for _ in range(10):
            env.render()
        assert (time.perf_counter() - started) / 10 < 0.05  # measured ~1-7 ms; generous for a loaded machine


def test_generic_scene_for_models_without_a_hook():
    hist = np.full(16, 1 / 16)
    frame = draw_scene(PlaneScene(np.array([[0.0, 1.0], [0.0, 1.0]]), hist, np.zeros((0, 2)), 0.5))
    assert frame.shape == (400, 400, 3)
    frame = draw_scene(HistogramScene((0.0, 1.0), np.array([0.25, 0.75]), 1.0))
    assert has_color(frame, rendering.BAR) and has_color(frame, rendering.CLOCK)


def test_render_before_reset_is_a_clear_error():
    for env in (
        gym.make("MFGPrice-v0", render_mode="rgb_array").unwrapped,
        gym.make_vec("MFGPrice-v0", num_envs=4, render_mode="rgb_array"),
        mfg_envs.parallel_env("MFGPrice-v0", n_agents=4, render_mode="rgb_array"),
    ):
        with pytest.raises(RuntimeError, match="reset"):
            env.render()


@pytest.mark.filterwarnings("ignore:.*render_mode='ansi'")
def test_bad_render_mode_is_rejected():
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("MFGPrice-v0", render_mode="ansi")
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec("MFGPrice-v0", num_envs=4, render_mode="ansi")
    with pytest.raises(ValueError, match="render_mode"):
        mfg_envs.parallel_env("MFGPrice-v0", n_agents=4, render_mode="ansi")


def test_human_mode_without_display_warns_and_renders_nothing(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(rendering.sys, "platform", "linux")
    assert not rendering.display_available()
    with pytest.warns(UserWarning, match="needs a display"):
        env = gym.make("MFGCrowd-v0", n_particles=50, render_mode="human")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.render() is None
    env.close()


def test_human_mode_shows_frames_in_a_window(monkeypatch):
    """With a display (faked; matplotlib's Agg backend takes the frames), reset and step draw into one figure."""
    matplotlib.use("Agg")
    monkeypatch.setattr(rendering, "display_available", lambda: True)
    envs = gym.make_vec("MFGLinearQuadratic-v0", num_envs=100, render_mode="human")
    envs.reset(seed=0)
    renderer = envs._renderer
    envs.step(np.zeros((100, 1)))
    shown = renderer._image.get_array()
    np.testing.assert_array_equal(shown, draw_scene(rendering.scene_of(envs.population)))
    assert envs.render() is None
    envs.close()
    assert renderer._figure is None


@pytest.mark.parametrize("env_id", ["MFGCrowd-v0", "MFGPrice-v0"])
def test_pettingzoo_render_test(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "human" without a display warns by design
        render_test(lambda render_mode=None: parallel_to_aec(mfg_envs.parallel_env(env_id, 5, render_mode=render_mode)))
