"""The dynamic-programming best response of the crowds (``method="dp"``), measured against independent truth.

    OMP_NUM_THREADS=1 python scripts/dp_best_response.py [--particles 10000] [--resolutions default reference]
        [--flows lq-equilibrium lq-neutral neutral goal-seeking]

Rows, all with common random numbers (the flow's particles and noise, seed 0):

- MFGCrowdLQ-v0 (exact best response known), the equilibrium flow and the neutral policy's flow: the dp best
  response's simulated return beside the exact best response's, and the solver's own value;
- MFGCrowd-v0, the flows of the neutral policy and of the goal-seeking feedback ``a = clip((g - p) - 1.5 v) / 2``:
  the policy's return, the solver's value, the dp best response's return, the gap, and the times (CPU seconds of
  the process, one thread: what a solve costs on one core, whatever else loads the machine).

``--resolutions`` names ``mfg_envs.crowd_dp`` settings: ``default``, ``reference``, or
``nodes_per_cell,velocity_step,velocity_range,actions_per_axis``; ``--flows`` picks the rows (all by default; the
refinement study of docs/models.md runs ``--flows goal-seeking``).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import mfg_envs
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, REFERENCE_RESOLUTION, DPResolution, dp_best_response
from mfg_envs.game import frozen_flows_returns, game_of, rollout

FLOWS = ("lq-equilibrium", "lq-neutral", "neutral", "goal-seeking")


def resolution(text: str) -> DPResolution:
    if text in ("default", "reference"):
        return DEFAULT_RESOLUTION if text == "default" else REFERENCE_RESOLUTION
    nodes, step, span, actions = text.split(",")
    return DPResolution(int(nodes), float(step), float(span), int(actions))


def goal_seeking(model):
    def policy(obs):
        states = obs["state"]
        return np.clip((model.goal - states[:, :2]) - 1.5 * states[:, 2:], -2.0, 2.0) / model.action_bound

    return policy


def measure(env_id: str, flow_name: str, flow_policy, n: int, setting: DPResolution, exact: bool) -> str:
    game = game_of(gym.make(env_id))
    model = game.model.populations[0]
    flows, own = rollout(game.clone(n), flow_policy, 0)
    started = time.process_time()
    dp = dp_best_response(model, flows[0].mean_fields, model.initial_states(n, np.random.default_rng(0)), setting)
    solved = time.process_time()
    best = frozen_flows_returns(game, flows, 0, dp, n, 0)
    evaluated = time.process_time()
    se = best.std(ddof=1) / np.sqrt(n)
    cells = [env_id, flow_name, _name(setting), f"{own[0].mean():.3f}", f"{dp.value_estimate:.3f}"]
    cells += [f"{best.mean():.3f} +- {se:.2g}", f"{(best - own[0]).mean():.3f}"]
    if exact:
        reference = frozen_flows_returns(game, flows, 0, model.best_response(flows[0]).policy, n, 0)
        cells.append(f"{reference.mean():.4f} (dp - exact {(best - reference).mean():+.4f})")
    else:
        cells.append("")
    cells += [f"{solved - started:.0f}", f"{evaluated - solved:.0f}"]
    return "| " + " | ".join(cells) + " |"


def _name(setting: DPResolution) -> str:
    return (
        f"{setting.nodes_per_cell}/cell, dv {setting.velocity_step:g}, v in +-{setting.velocity_range:g}, "
        f"{setting.actions_per_axis}^2"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=10_000)
    parser.add_argument("--resolutions", nargs="+", default=["default"])
    parser.add_argument("--flows", nargs="+", choices=FLOWS, default=list(FLOWS))
    args = parser.parse_args()
    print("| env id | flow | resolution | policy return | dp value | dp best response return | gap | exact best "
          "response return | solve (CPU s) | evaluation (CPU s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    lq = gym.make("MFGCrowdLQ-v0")
    crowd_model = game_of(gym.make("MFGCrowd-v0")).model.populations[0]
    neutral = mfg_envs.ConstantPolicy(np.zeros(2))
    for text in args.resolutions:
        setting = resolution(text)
        rows = {
            "lq-equilibrium": ("MFGCrowdLQ-v0", "equilibrium", mfg_envs.solve_equilibrium(lq).policy, True),
            "lq-neutral": ("MFGCrowdLQ-v0", "neutral", neutral, True),
            "neutral": ("MFGCrowd-v0", "neutral", neutral, False),
            "goal-seeking": ("MFGCrowd-v0", "goal-seeking", goal_seeking(crowd_model), False),
        }
        for flow in args.flows:
            env_id, flow_name, policy, exact = rows[flow]
            print(measure(env_id, flow_name, policy, args.particles, setting, exact), flush=True)


if __name__ == "__main__":
    main()
