"""The walled crowds' numerical reference equilibrium (``mfg_envs.crowd_equilibrium``): its dp gap, its cache, its
routes (``solve_equilibrium``, the renderer, the figures). Small models on a coarse grid: seconds, not minutes."""

import gymnasium as gym
import numpy as np
import pytest

import mfg_envs
from mfg_envs import ConstantPolicy, Population, exactly_solvable, solve_equilibrium
from mfg_envs import crowd_equilibrium as reference_module
from mfg_envs.core import histogram_moments
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DPResolution
from mfg_envs.crowd_equilibrium import (
    DEFAULT_SETTINGS,
    NumericalEquilibrium,
    NumericalGameEquilibrium,
    ReferenceSettings,
    cache_key,
    cached_reference,
    cached_reference_flows,
    has_reference,
    load_solution,
    reference_game,
    save_solution,
    solve_reference,
)
from mfg_envs.crowd_multi import CrowdMultiModel
from mfg_envs.game import Game, rollout
from mfg_envs.plotting import reference_equilibrium, write_population_figures
from mfg_envs.rendering import SIGNAL
from sb3_meanfield import nash_gap

SMALL = {"horizon": 1.0, "n_steps": 10, "n_bins": 10}
COARSE = DPResolution(nodes_per_cell=1, velocity_step=0.2, velocity_range=1.6, actions_per_axis=5)
SETTINGS = ReferenceSettings(resolution=COARSE, n_particles=1000, n_replicates=2)


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """The small crowd's reference, solved once into a cache folder of its own: ``(folder, reference)``."""
    folder = tmp_path_factory.mktemp("reference_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MFG_ENVS_CACHE", str(folder))
        return folder, solve_reference(CrowdModel(**SMALL), SETTINGS)


@pytest.fixture
def default_entry(solved, monkeypatch, tmp_path):
    """A cache holding the small crowd's solution under the key of the default settings (what ``solve_equilibrium``,
    the renderer and the figures read), loads refused: the path of the entry."""
    folder, _ = solved
    game_model = reference_game(CrowdModel(**SMALL))
    monkeypatch.setenv("MFG_ENVS_CACHE", str(folder))
    solution = load_solution(game_model, SETTINGS)
    monkeypatch.setenv("MFG_ENVS_CACHE", str(tmp_path))
    monkeypatch.setattr(reference_module, "solve", no_solve)
    return save_solution(game_model, DEFAULT_SETTINGS, solution)


def no_solve(*args):
    raise AssertionError("solved instead of loading the cache")


def test_the_reference_gap_is_within_its_bound_and_far_below_the_neutral_gap(solved):
    reference = solved[1]
    assert isinstance(reference, NumericalEquilibrium) and reference.numerical
    report = reference.report
    assert report.converged and max(report.history[-1]) <= SETTINGS.tolerance
    assert report.iterations == len(report.history) <= SETTINGS.max_iterations
    gap = report.gap.gaps["population"]  # measured as nash_gap(policy, env, method="dp") measures it
    assert report.gap.method == "dp" and report.gap.n_replicates == 2
    assert abs(gap.relative_gap) < 2 * SETTINGS.tolerance
    assert abs(gap.gap) < 0.02 * report.neutral_gaps["population"]  # the neutral policy's gap: > 50 times larger
    # the flow: the policy's own (its particles, seeded as in the solve), cell masses and densities step by step
    flows, returns = rollout(Game(CrowdModel(**SMALL), SETTINGS.n_particles), reference.policy, SETTINGS.seed)
    np.testing.assert_array_equal(flows[0].population, reference.histograms)
    assert returns[0].mean() == reference.expected_return
    assert reference.histograms.shape == (11, 100)
    np.testing.assert_allclose(reference.histograms.sum(axis=1), 1.0)
    np.testing.assert_allclose(reference.mean_fields[3]["density"], reference.histograms[3] / 0.4**2)
    assert np.isfinite(reference.expected_return) and 0 < reference.standard_error < 0.1


def test_the_reported_gap_is_what_the_dp_nash_gap_measures(solved):
    reference = solved[1]
    env = gym.make("MFGCrowd-v0", **SMALL)
    measured = nash_gap(reference.policy, env, "dp", SETTINGS.n_particles, n_replicates=2, dp_resolution=COARSE)
    assert measured.gaps == reference.report.gap.gaps


def test_the_reference_policy_is_a_population_policy(solved):
    obs = {
        "state": np.array([[-1.0, 0.5, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]], np.float32),
        "population": np.zeros((2, 100), np.float32),
        "time": np.zeros((2, 1), np.float32),
    }
    actions = solved[1].policy(obs)
    assert actions.shape == (2, 2) and np.abs(actions).max() <= 1.0
    assert actions[0, 0] > 0.5  # the agent far from the goal (1, 0) accelerates toward it


def test_the_cache_round_trips_without_solving_again(solved, monkeypatch):
    folder, reference = solved
    monkeypatch.setenv("MFG_ENVS_CACHE", str(folder))
    monkeypatch.setattr(reference_module, "solve", no_solve)
    loaded = solve_reference(gym.make("MFGCrowd-v0", **SMALL), SETTINGS)  # the env's model: same parameters
    np.testing.assert_array_equal(loaded.histograms, reference.histograms)
    assert loaded.report == reference.report and loaded.expected_return == reference.expected_return
    obs = {"state": np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)}
    obs |= {"population": np.zeros((50, 100), np.float32), "time": np.full((50, 1), 0.3, np.float32)}
    np.testing.assert_array_equal(loaded.policy(obs), reference.policy(obs))  # one deterministic dp solve
    flows = cached_reference_flows(CrowdModel(**SMALL), SETTINGS)
    np.testing.assert_array_equal(flows[0].population, reference.flow.population)
    # other parameters or other settings are other entries
    assert cached_reference(CrowdModel(**SMALL, crowd_aversion=0.2), SETTINGS) is None
    assert cached_reference(CrowdModel(**SMALL), ReferenceSettings(resolution=COARSE, n_particles=999)) is None


def test_an_unreadable_cache_entry_is_a_miss(default_entry):
    game_model = reference_game(CrowdModel(**SMALL))
    assert load_solution(game_model, DEFAULT_SETTINGS) is not None
    default_entry.write_bytes(b"not an npz file")
    assert load_solution(game_model, DEFAULT_SETTINGS) is None


def test_solve_equilibrium_returns_the_reference_of_the_crowd(solved, default_entry):
    """``solve_equilibrium(env)`` reads the entry of the default settings: loaded, not solved."""
    env = gym.make("MFGCrowd-v0", **SMALL)
    equilibrium = solve_equilibrium(env)
    assert isinstance(equilibrium, NumericalEquilibrium) and not exactly_solvable(env)
    np.testing.assert_array_equal(equilibrium.histograms, solved[1].histograms)
    assert equilibrium.flow_for(env).population.shape == (11, 100)


def test_which_models_have_a_reference():
    assert has_reference(gym.make("MFGCrowd-v0")) and has_reference(CrowdMultiModel())
    for env_id in set(mfg_envs.ALL_ENV_IDS) - {"MFGCrowd-v0", "MFGCrowdMulti-v0"}:
        assert not has_reference(gym.make(env_id))
    group = CrowdMultiModel().populations[0]
    assert not has_reference(group)  # one population of the two crowds needs its game
    with pytest.raises(NotImplementedError, match="LinearQuadraticModel has no numerical reference equilibrium"):
        solve_reference(gym.make("MFGLinearQuadratic-v0"))
    with pytest.raises(NotImplementedError, match="CrowdGroup has no exact equilibrium"):
        solve_equilibrium(Population(group, 10))


def test_a_random_initial_mean_has_no_reference():
    """The reference is one flow of one fixed initial law: with ``init_mean_std > 0`` there is none (and the cache key
    holds the keyword, so a fixed-law entry is never read for another law)."""
    random = CrowdModel(**SMALL, init_mean_std=(0.2, 0.0, 0.0, 0.0))
    assert not has_reference(random) and has_reference(CrowdModel(**SMALL))
    with pytest.raises(NotImplementedError, match="init_mean_std = 0"):
        solve_reference(random)
    with pytest.raises(NotImplementedError, match="CrowdModel has no exact equilibrium"):
        solve_equilibrium(gym.make("MFGCrowd-v0", init_mean_std=(0.2, 0.0, 0.0, 0.0)))
    key = cache_key(reference_game(CrowdModel(**SMALL)), SETTINGS)
    assert key["populations"][0]["init_mean_std"] == [0.0, 0.0, 0.0, 0.0]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="tolerance must be a finite real in \\(0"):
        ReferenceSettings(tolerance=0.0)
    with pytest.raises(ValueError, match="n_replicates must be an integer >= 2"):
        ReferenceSettings(n_replicates=1)


def test_an_iteration_that_misses_the_tolerance_warns_and_keeps_its_best_iterate():
    settings = ReferenceSettings(resolution=COARSE, n_particles=300, tolerance=1e-9, max_iterations=2, n_replicates=2)
    with pytest.warns(RuntimeWarning, match="no fictitious-play iterate within tolerance"):
        reference = solve_reference(CrowdModel(**SMALL), settings)
    assert not reference.report.converged and reference.report.iterations == 2


def test_the_frame_draws_the_reference_once_cached(solved, monkeypatch, tmp_path):
    env = gym.make("MFGCrowd-v0", n_particles=200, render_mode="rgb_array", **SMALL)
    env.reset(seed=0)
    assert not (env.render() == np.array(SIGNAL, np.uint8)).all(axis=-1).any()  # nothing cached yet
    model = env.unwrapped.model
    assert model.reference_ellipse(4) is None
    game_model = reference_game(model)
    monkeypatch.setenv("MFG_ENVS_CACHE", str(solved[0]))
    solution = load_solution(game_model, SETTINGS)
    monkeypatch.setenv("MFG_ENVS_CACHE", str(tmp_path))
    save_solution(game_model, DEFAULT_SETTINGS, solution)  # as solve_equilibrium(env) would have
    mean, std = model.reference_ellipse(4)
    means, variances = histogram_moments(solution.histograms[0][4:5], model.histogram_bounds, 10)
    np.testing.assert_allclose(mean, means[0])
    np.testing.assert_allclose(std, np.sqrt(variances[0]))
    assert (env.render() == np.array(SIGNAL, np.uint8)).all(axis=-1).any()


def test_the_figures_compare_with_the_cached_reference(default_entry, tmp_path):
    model = CrowdModel(**SMALL)
    assert isinstance(reference_equilibrium(model), NumericalEquilibrium)
    population = Population(model, 100)
    paths = write_population_figures("MFGCrowd-v0", population, ConstantPolicy(np.zeros(2)), tmp_path, animate=False)
    assert {path.name for path in paths} == {"crowd_snapshots.png", "moment_flows.png", "policy.png"}


def test_the_two_crowds_best_respond_to_the_joint_flow():
    reference = solve_reference(CrowdMultiModel(**SMALL), SETTINGS)
    assert isinstance(reference, NumericalGameEquilibrium) and reference.names == ("red", "blue")
    assert reference.report.converged
    for name in reference.names:
        assert reference.report.gap.gaps[name].relative_gap < 2 * SETTINGS.tolerance
    assert len(reference.policies) == len(reference.flows) == len(reference.standard_errors) == 2
    flows, returns = rollout(Game(CrowdMultiModel(**SMALL), SETTINGS.n_particles), reference.policies, SETTINGS.seed)
    for flow, own in zip(flows, reference.flows):  # each population's own flow when both play their policies
        np.testing.assert_array_equal(flow.population, own.population)
    assert tuple(r.mean() for r in returns) == reference.expected_returns


@pytest.mark.slow
def test_solve_equilibrium_solves_a_small_crowd_with_the_default_settings():
    equilibrium = solve_equilibrium(gym.make("MFGCrowd-v0", **SMALL))  # 10,000 particles, default grid: a minute
    assert equilibrium.numerical and equilibrium.report.gap.relative_gap < 0.02
