"""Master policies: a network trained on a random initial law (``init_mean_std``) plays the equilibrium from initial
means it never saw (results of the full runs: BENCHMARKS.md, "Population-aware equilibria (random initial law)")."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

import mfg_envs  # noqa: F401  (registers the ids)
from mfg_envs.core import ConstantPolicy
from mfg_envs.equilibrium import solve_equilibrium
from sb3_meanfield import ModelPolicy, nash_gap
from sb3_meanfield.config import build, resolve_config
from sb3_meanfield.train import parse_args

th.set_num_threads(1)

LQ = "MFGLinearQuadratic-v0"
#: Training law: M0 ~ N(2, 0.5^2), 250 episodes (draws of M0) in 800,000 transitions. The unseen mean lies 3 standard
#: deviations away; the test checks that no training episode started at or beyond it.
TRAINING = "env_kwargs:dict(init_mean=2.0, init_mean_std=0.5, population_representation='moments')"
#: The values shared by every id (``sb3_meanfield.hyperparams``), which MF-TD3 on this id shipped when the master
#: policies of BENCHMARKS.md were trained (it now ships ``td3.LQ_FAST``: half the budget).
SHARED_VALUES = [
    "n_timesteps:800000",
    "learning_rate:'lin_1e-3_1e-5'",
    "tau:0.005",
    "noise_std:0.2",
    "noise_final_std:0.1",
]
UNSEEN_MEAN = 3.5


class InitialMeans(BaseCallback):
    """The population mean at the start of every training episode (the first entry of the ``moments`` observation;
    in self-play every learner sees the same population)."""

    def _on_training_start(self) -> None:
        self.means = [float(self.model._last_obs["population"][0, 0])]

    def _on_step(self) -> bool:
        if self.locals["dones"][0]:  # auto-reset: new_obs is the first observation of the next episode
            self.means.append(float(self.locals["new_obs"]["population"][0, 0]))
        return True


def exact_gap(model, policy) -> float:
    return model.policy_cost(policy) + model.feedback_best_response(policy).expected_return


@pytest.mark.slow
def test_master_policy_generalizes_to_initial_means_it_never_saw(tmp_path):
    """MF-TD3 with the values shared by every id (about 100 s on one core), trained on M0 ~ N(2, 0.5^2) and scored
    at M0 = 3.5 (init_mean_std = 0): its relative gap there must stay well within the issue's 0.05 (measured: 0.0157,
    gap 0.0472), and below the gap of the policy that ignores the population, the fixed law's equilibrium written as
    a function of time (exact: 0.0686)."""
    argv = ["--algo", "td3", "--env", LQ, "--seed", "0", "-f", str(tmp_path), "--hyperparams", TRAINING, *SHARED_VALUES]
    config = resolve_config(parse_args(argv))
    model = build(config)[1]
    seen = InitialMeans()
    model.learn(config["n_timesteps"], callback=seen)
    assert len(seen.means) == 251 and max(seen.means) < UNSEEN_MEAN - 0.1  # measured: 3.31
    unseen = gym.make(LQ, init_mean=UNSEEN_MEAN, population_representation="moments")
    lq = unseen.unwrapped.model
    ignoring = exact_gap(lq, dataclasses.replace(solve_equilibrium(gym.make(LQ)).policy, model=lq))
    assert ignoring == pytest.approx(0.0686, abs=1e-3)
    gap = nash_gap(ModelPolicy(model), unseen, n_particles=5000, n_replicates=2, relative=False)
    relative = gap.gap / exact_gap(lq, ConstantPolicy(np.zeros(1)))
    print(f"M0 = {UNSEEN_MEAN}: gap {gap.gap:.4f} +- {gap.standard_error:.4f}, relative {relative:.4f}")
    assert relative < 0.03
    assert gap.gap < ignoring
