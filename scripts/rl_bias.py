"""How much of the true Nash gap the RL best response finds on the walled crowd: RL against dp on several flows.

    OMP_NUM_THREADS=1 python scripts/rl_bias.py [--particles 10000] [--rl-timesteps 160000] [--rl-responder sac]

For each population flow of ``MFGCrowd-v0`` (the policy every particle plays, ``--particles`` particles, seed 0),
frozen: the dynamic-programming best response (``mfg_envs.crowd_dp``, default grid) and the RL best response
(:func:`sb3_meanfield.evaluation.rl_best_response`: a fresh agent with the shipped policy of ``--rl-responder``
trained for ``--rl-timesteps`` transitions against the frozen flow, as ``method="rl"`` trains it). The policy and
both responses are then scored on the same ghost particles (seed 1: noise neither response trained on, common
random numbers), giving both gaps and the share of the dp gap that the RL gap finds. Flows:

- ``neutral``: every particle plays action 0;
- ``goal-seeking``: ``a = clip((g - p) - 1.5 v) / 2``;
- ``gentle``: ``a = clip(0.5 (g - p) - v) / 2``;
- ``constant push``: the normalized action ``(0.5, -0.25)``;
- ``dp response``: the dp best response to the goal-seeking flow, played by the whole population.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from compare_algorithms import responder_template
from dp_best_response import goal_seeking

import mfg_envs
from mfg_envs.crowd_dp import dp_best_response
from mfg_envs.game import frozen_flows_returns, game_of, rollout
from sb3_meanfield import ModelPolicy
from sb3_meanfield.evaluation import rl_best_response


def gentle(model):
    def policy(obs):
        states = obs["state"]
        return np.clip(0.5 * (model.goal - states[:, :2]) - states[:, 2:], -2.0, 2.0) / model.action_bound

    return policy


def flows_to_score(env, n: int) -> dict:
    """The named population policies (see the module docstring)."""
    game = game_of(env)
    model = game.model.populations[0]
    seeking = goal_seeking(model)
    flows, _ = rollout(game.clone(n), seeking, 0)
    response = dp_best_response(model, flows[0].mean_fields, model.initial_states(n, np.random.default_rng(0)))
    return {
        "neutral": mfg_envs.ConstantPolicy(np.zeros(2)),
        "goal-seeking": seeking,
        "gentle": gentle(model),
        "constant push": mfg_envs.ConstantPolicy(np.array([0.5, -0.25])),
        "dp response": response,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=10_000)
    parser.add_argument("--rl-timesteps", type=int, default=160_000)
    parser.add_argument("--rl-responder", default="sac", choices=("ddpg", "td3", "sac"))
    args = parser.parse_args()
    th.set_num_threads(1)
    env = gym.make("MFGCrowd-v0")
    game, n = game_of(env), args.particles
    model = game.model.populations[0]
    template = responder_template("MFGCrowd-v0", args.rl_responder)
    print("| flow | policy return | dp best response return | dp gap | RL best response return | RL gap | RL / dp |")
    print("|---|---|---|---|---|---|---|")
    for name, policy in flows_to_score(env, n).items():
        flows, _ = rollout(game.clone(n), policy, 0)
        initial = model.initial_states(n, np.random.default_rng(0))
        dp = dp_best_response(model, flows[0].mean_fields, initial)
        rl = ModelPolicy(rl_best_response(template, env, flows[0], 0, args.rl_timesteps, seed=0))
        own, dp_return, rl_return = (frozen_flows_returns(game, flows, 0, p, n, 1).mean() for p in (policy, dp, rl))
        cells = [name, f"{own:.3f}", f"{dp_return:.3f}", f"{dp_return - own:.3f}", f"{rl_return:.3f}"]
        cells += [f"{rl_return - own:.3f}", f"{(rl_return - own) / (dp_return - own):.2f}"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
