"""Plot functions write images that open; the arrays behind them agree with the simulator and the exact solvers."""

import csv

import gymnasium as gym
import numpy as np
import pytest
from helpers import rollout_population
from PIL import Image

import mfg_envs
from mfg_envs.core import ConstantPolicy, Population, histogram_moments
from mfg_envs.equilibrium import solve_equilibrium
from mfg_envs.plotting import (
    animate_crowd,
    plot_crowd_snapshots,
    plot_moment_flows,
    plot_policy_slices,
    plot_population_flow,
    policy_slices,
    record_population,
    write_population_figures,
)
from sb3_meanfield.plotting import (
    learning_curves_figure,
    load_metrics,
    plot_learning_curves,
    write_run_figures,
)


def assert_png(path, min_size=(200, 150)):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 0  # not a blank canvas


#: Short episodes (the crowd's best response needs dt small enough to be well posed).
SHORT = {env_id: {"n_steps": 4} for env_id in mfg_envs.ENV_IDS} | {"MFGCrowdLQ-v0": {"n_steps": 5, "horizon": 0.5}}


def small_population(env_id, n_particles=64, **kwargs):
    return Population(gym.make(env_id, **kwargs).unwrapped.model, n_particles)


def test_histogram_moments_match_hand_computed_values():
    bounds = np.array([[0.0, 4.0]])  # bin centres 0.5, 1.5, 2.5, 3.5
    hists = np.array([[0.5, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0]])
    means, variances = histogram_moments(hists, bounds, 4)
    np.testing.assert_allclose(means[:, 0], [2.0, 1.5])
    np.testing.assert_allclose(variances[:, 0], [2.25, 0.0])
    # 2-D, C order with x slowest: all mass in cell (x bin 1, y bin 0) and (x bin 1, y bin 1) equally
    grid = np.zeros((2, 2))
    grid[1, :] = 0.5
    means, variances = histogram_moments(grid.ravel()[None, :], np.array([[0.0, 2.0], [0.0, 2.0]]), 2)
    np.testing.assert_allclose(means[0], [1.5, 1.0])
    np.testing.assert_allclose(variances[0], [0.0, 0.25])


def test_record_population_is_the_rollout_with_every_step_kept():
    population = small_population("MFGCrowdLQ-v0", **SHORT["MFGCrowdLQ-v0"])
    policy = solve_equilibrium(population).policy
    record = record_population(population, policy, seed=7)
    flow, returns = rollout_population(Population(population.model, 64), policy, 7)
    np.testing.assert_allclose(record.returns, returns)
    np.testing.assert_allclose(record.histograms, flow.population)  # histogram representation: the same numbers
    np.testing.assert_allclose(record.states[-1][:, :2].mean(axis=0), flow.mean_fields[-1]["mean"])
    assert record.states.shape == (6, 64, 4) and record.actions.shape == (5, 64, 2) and record.features.shape[0] == 5


def test_record_population_refuses_a_frozen_population():
    population = small_population("MFGLinearQuadratic-v0")
    population.flow = solve_equilibrium(population).flow
    with pytest.raises(ValueError, match="frozen"):
        record_population(population, ConstantPolicy(np.zeros(1)))


def test_policy_slices_in_physical_units_at_the_right_step():
    population = small_population("MFGLinearQuadratic-v0")
    equilibrium = solve_equilibrium(population)
    neutral_half = ConstantPolicy(np.array([0.5]))
    record = record_population(population, equilibrium.policy, seed=0)
    steps = [0, 20, 49]
    grid, (exact, constant) = policy_slices(population, record, [equilibrium.policy, neutral_half], steps, n_points=7)
    gains, offsets = equilibrium.policy.gains[steps, 0, 0], equilibrium.policy.offsets[steps, 0]
    np.testing.assert_allclose(exact, -gains[:, None] * grid - offsets[:, None], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(constant, 0.5 * population.model.action_bound)
    # the grid spans the particles of each step
    for row, n in zip(grid, steps):
        assert row[0] < np.median(record.states[n][:, 0]) < row[-1]


def test_each_plot_function_writes_a_png_that_opens(tmp_path):
    rng = np.random.default_rng(0)
    flow = rng.dirichlet(np.ones(10), size=6)
    assert_png(plot_population_flow(flow, (0.0, 1.0), tmp_path / "flow.png", exact=flow[::-1]))
    assert_png(plot_population_flow(flow, (0.0, 1.0), tmp_path / "flow_only.png"))
    plane = rng.dirichlet(np.ones(16), size=6)
    positions = rng.uniform(-1, 1, size=(6, 30, 2))
    ellipses = [(np.zeros(2), np.ones(2) * 0.3)] * 6
    bounds = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    assert_png(plot_crowd_snapshots(plane, bounds, tmp_path / "snap.png", positions, (0.5, 0.0), 3, ellipses))
    times = np.linspace(0, 1, 6)
    moments = histogram_moments(plane, bounds, 4)
    assert_png(plot_moment_flows(times, *moments, tmp_path / "moments.png", *moments, axis_names=("x", "y")))
    assert_png(plot_moment_flows(times, moments[0][:, 0], moments[1][:, 0], tmp_path / "moments_1d.png"))
    grid = np.linspace(-1, 1, 5)
    assert_png(plot_policy_slices(grid, np.stack([grid, -grid]), tmp_path / "policy.png", [0.0, 0.5], np.zeros((2, 5))))


def test_crowd_animation_is_a_gif_with_one_frame_per_step(tmp_path):
    positions = np.cumsum(np.full((5, 20, 2), 0.1), axis=0) - 1.0
    path = animate_crowd(positions, np.array([[-1.0, 1.0], [-1.0, 1.0]]), tmp_path / "crowd.gif", (0.5, 0.5), True)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 5
        first = np.asarray(gif.convert("RGB"))
        gif.seek(4)
        assert not np.array_equal(first, np.asarray(gif.convert("RGB")))  # the particles move


@pytest.mark.parametrize("env_id", mfg_envs.ENV_IDS)
def test_population_figures_of_every_env(env_id, tmp_path):
    population = small_population(env_id, n_particles=50, **SHORT[env_id])
    model = population.model
    policy = ConstantPolicy(np.full(model.action_dim, 0.2))
    paths = write_population_figures(env_id, population, policy, tmp_path, name="constant", animate=False)
    names = {path.name for path in paths}
    expected = "crowd_snapshots.png" if model.histogram_bounds.shape[0] == 2 else "population_flow.png"
    assert names == {expected, "moment_flows.png", "policy.png"}
    for path in paths:
        assert_png(path)


def write_metrics(path, rows):
    keys = sorted({key for row in rows for key in row})
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, keys)
        writer.writeheader()
        writer.writerows(rows)


def test_learning_curves_from_a_metrics_table(tmp_path):
    rows = [
        {"time/total_timesteps": 100, "rollout/ep_rew_mean": -5.0},
        {"time/total_timesteps": 200, "mfg/nash_gap": 0.5, "mfg/nash_gap_se": 0.1, "mfg/relative_nash_gap": 0.4},
        {"time/total_timesteps": 300, "mfg/nash_gap": -0.01, "mfg/nash_gap_se": 0.02, "mfg/relative_nash_gap": -0.01},
        {"time/total_timesteps": 400, "mfg/nash_gap": 0.05, "mfg/nash_gap_se": 0.01, "mfg/policy_return": -2.1},
        {"time/total_timesteps": 400, "mfg/policy_change": 0.3, "mfg/population_change": 0.02},
    ]
    write_metrics(tmp_path / "metrics.csv", rows)
    metrics = load_metrics(tmp_path / "metrics.csv")
    assert np.isnan(metrics["mfg/nash_gap"][0]) and metrics["mfg/nash_gap"][3] == 0.05
    assert_png(plot_learning_curves(metrics, tmp_path / "curves.png", equilibrium_return=-2.05))
    assert_png(
        plot_learning_curves({"time/total_timesteps": [1, 2], "rollout/ep_rew_mean": [0, 1]}, tmp_path / "r.png")
    )


def test_write_run_figures_on_a_train_cli_run_folder(tmp_path):
    from sb3_meanfield import train

    argv = ["--env", "MFGLinearQuadratic-v0", "-n", "48", "--n-particles", "24", "--n-learners", "8"]
    argv += ["--eval-particles", "50", "--no-progress", "-f", str(tmp_path), "--hyperparams", "learning_starts:16"]
    argv += ["env_kwargs:dict(n_steps=6)"]
    run_dir = train.train(train.parse_args(argv))
    paths = write_run_figures(run_dir, n_particles=40)
    assert {path.name for path in paths} == {
        "learning_curves.png",
        "population_flow.png",
        "moment_flows.png",
        "policy.png",
    }
    for path in paths:
        assert path.parent == run_dir / "figures"
        assert_png(path)


def axis_titled(figure, title):
    (axis,) = [axis for axis in figure.axes if axis.get_title() == title]
    return axis


def test_final_evaluation_is_marked_apart_from_the_checks_and_single_points_show():
    metrics = {
        "time/total_timesteps": [100.0, 200.0, 300.0, 300.0],
        "rollout/ep_rew_mean": [-5.0, -4.0, -3.0, np.nan],
        "mfg/population_return": [np.nan, np.nan, np.nan, -2.5],  # one check: one point
        "mfg/nash_gap": [0.5, 0.3, 0.2, np.nan],
        "mfg/nash_gap_se": [0.05, 0.03, 0.02, np.nan],
    }
    final = {"gap": 0.15, "standard_error": 0.01, "relative_gap": 0.1, "policy_return": -2.2}
    figure = learning_curves_figure(
        metrics, final={**final, "timesteps": 300, "n_particles": 10_000}, check_particles=2000
    )
    gap_axis = axis_titled(figure, "Nash gap (return units)")
    labels = gap_axis.get_legend_handles_labels()[1]
    assert "exact Nash gap checks during training (2,000 particles)" in labels  # the method: final's, else exact
    assert "final evaluation (10,000 particles)" in labels
    (checks,) = [line for line in gap_axis.lines if line.get_label().startswith("exact Nash gap checks")]
    markers = [line for line in gap_axis.lines if line.get_marker() == "*"]
    assert len(markers) == 1 and list(markers[0].get_ydata()) == [0.15] and list(markers[0].get_xdata()) == [300]
    assert checks.get_marker() != "*" and list(checks.get_ydata()) == [0.5, 0.3, 0.2]
    relative = axis_titled(figure, "relative Nash gap (1 = neutral policy)")  # only the final evaluation has one
    assert [line.get_marker() for line in relative.lines] == ["*"]
    returns = axis_titled(figure, "return")
    assert "final evaluation (10,000 particles): policy return" in returns.get_legend_handles_labels()[1]
    for line in returns.lines:  # every legend entry of the return panel has something visible
        if len(line.get_xdata()) == 1:
            assert line.get_marker() not in (None, "", "None", ".") and line.get_markersize() >= 5
    (single,) = [line for line in returns.lines if line.get_label() == "population return (monitor)"]
    assert single.get_linestyle() == "None"


def test_a_short_run_gets_a_nash_gap_curve_and_its_final_evaluation_in_the_figure(tmp_path):
    """A run shorter than the configs' gap period (1000 env steps) checks the gap MIN_CHECKS times anyway."""
    from sb3_meanfield import train
    from sb3_meanfield.config import MIN_CHECKS

    argv = ["--env", "MFGLinearQuadratic-v0", "-n", str(8 * 60), "--n-particles", "24", "--n-learners", "8"]
    argv += ["--eval-particles", "500", "--no-progress", "-f", str(tmp_path), "--hyperparams", "learning_starts:16"]
    argv += ["env_kwargs:dict(n_steps=6)", "policy_kwargs:dict(net_arch=dict(pi=[8], qf=[8]))"]
    run_dir = train.train(train.parse_args(argv))
    metrics = load_metrics(run_dir / "metrics.csv")
    checked = metrics["time/total_timesteps"][np.isfinite(metrics["mfg/nash_gap"])]
    assert list(checked) == [8 * 6 * k for k in range(1, MIN_CHECKS + 1)]
    assert (run_dir / "figures" / "learning_curves.png").is_file()
