"""What a walled-crowd run's critic says an action is worth, against Monte Carlo and the dp best response.

    OMP_NUM_THREADS=1 python scripts/critic_slope.py RUN_DIR [--steps 8 20 32] [--agents 400] [--paths 48]

``RUN_DIR`` is a finished ``python -m sb3_meanfield.train --env MFGCrowd-v0`` run. One episode of ``--n-particles``
particles following the run's policy makes the flow (seed ``--seed``); the policy then plays ``--n-particles``
agents against that frozen flow (seed ``--seed + 1``). At each step of ``--steps``, on the first ``--agents`` of
those agents that move (speed above 0.1), along each one's braking direction ``b = -v / ||v||``, for
``alpha = 0, 0.1, ..., 1`` (normalized actions; 1 is the bound's norm), it prints the mean over the agents of
``Q(s, alpha b) - Q(s, 0)`` by three methods:

- ``critic``: the run's critic ``Q_1`` (its known terms included), what the actor follows;
- ``Monte Carlo``: the action ``alpha b`` at that step, then the run's policy to the end against the frozen flow,
  averaged over ``--paths`` noise paths per agent (the same paths for every ``alpha``): the policy's own ``Q``,
  which the critic estimates;
- ``dp``: ``g(u) + U_{n+1}(p, v + dt u)`` of the dp best response to the flow (default grid): ``Q`` when the best
  response plays on.

and the mean of each row's best ``alpha``, beside the policy's own braking ``mu(s) . b``. The critic's mean value
``Q_1(s, 0)`` is printed beside the Monte Carlo one. At the last step every row is the reward's effort term,
``-l1 a_max alpha``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch as th  # imported after the thread setting above
from crowd_gap_by_step import load_crowd_run, play_against
from stable_baselines3.common.base_class import BaseAlgorithm

from mfg_envs.core import PopulationFlow, PopulationPolicy
from mfg_envs.crowd import CrowdModel
from mfg_envs.crowd_dp import DEFAULT_RESOLUTION, DPPolicy, dp_best_response
from mfg_envs.game import Game, population_rngs, rollout
from sb3_meanfield import ModelPolicy
from sb3_meanfield.evaluation import fit_resolution

#: Braking strengths ``alpha`` of the curves (normalized actions).
ALPHAS = np.linspace(0.0, 1.0, 11)
#: Agents slower than this have no braking direction.
MOVING = 0.1


def monte_carlo_q(
    model: CrowdModel,
    flow: PopulationFlow,
    policy: PopulationPolicy,
    step: int,
    states: np.ndarray,
    first_actions: np.ndarray,
    paths: int,
    seed: int,
) -> np.ndarray:
    """``(len(first_actions), len(states))``: for each set of normalized actions ``first_actions[j]`` (one row per
    state) played at ``step``, the mean over ``paths`` noise paths of the rewards from ``step`` to the end, the
    policy playing after it against the frozen ``flow`` (the same paths for every ``j``)."""
    starts = np.repeat(states, paths, axis=0)
    rng = np.random.default_rng(seed)
    noises = [model.noise(len(starts), rng) for _ in range(step, model.n_steps)]
    values = []
    for actions in first_actions:
        current, total = np.asfortranarray(starts.copy()), np.zeros(len(starts))
        for k, noise in zip(range(step, model.n_steps), noises):  # a loop over time steps
            if k == step:
                normalized = np.repeat(actions, paths, axis=0)
            else:
                rows = len(current)
                observation = {
                    "state": current.astype(np.float32),
                    "population": np.repeat(flow.population[k][None], rows, axis=0).astype(np.float32),
                    "time": np.full((rows, 1), k / model.n_steps, dtype=np.float32),
                }
                normalized = policy(observation)
            physical = model.physical_action(current, normalized)
            total += model.reward(current, physical, flow.mean_fields[k], k)
            current = model.transition(current, physical, flow.mean_fields[k], k, noise)
        values.append(total.reshape(len(states), paths).mean(axis=1))
    return np.array(values)


def dp_q(best_response: DPPolicy, step: int, states: np.ndarray, first_actions: np.ndarray) -> np.ndarray:
    """``(len(first_actions), len(states))``: ``g(u) + U_{n+1}(p, v + dt u)`` of the dp best response at the physical
    accelerations of the normalized ``first_actions[j]``."""
    grid, model = best_response.grid, best_response.model
    table = best_response.smooth_table(step, states)
    spacing = grid.accelerations[1] - grid.accelerations[0]
    values = []
    for actions in first_actions:
        physical = model.physical_action(states, actions)
        # fractional indices of the solver's accelerations (q_values adds the table's own offsets)
        along = [(physical[:, axis, None] - grid.accelerations[0]) / spacing for axis in (0, 1)]
        values.append(best_response.q_values(step, states, table, *along)[:, 0, 0])
    return np.array(values)


def critic_q(agent: BaseAlgorithm, observation: dict[str, np.ndarray], first_actions: np.ndarray) -> np.ndarray:
    """``(len(first_actions), len(states))``: the critic's ``Q_1(s, a_j)``."""
    critic = agent.critic  # type: ignore[attr-defined]  # the off-policy actor-critics' critic
    tensors = {key: th.as_tensor(value, dtype=th.float32) for key, value in observation.items()}
    with th.no_grad():
        return np.array([critic(tensors, th.as_tensor(a, dtype=th.float32))[0][:, 0].numpy() for a in first_actions])


def slope_rows(
    game: Game, agent: BaseAlgorithm, steps: tuple[int, ...], n_particles: int, n_agents: int, paths: int, seed: int
) -> list[str]:
    """Markdown rows of the module docstring's tables, one table per step of ``steps``."""
    model = game.model.populations[0]
    if len(game.names) != 1 or not isinstance(model, CrowdModel):
        raise ValueError(f"the run must be of the walled crowd MFGCrowd-v0, got a game of {game.names}: {model!r}")
    if any(not 0 <= step < model.n_steps for step in steps):
        raise ValueError(f"steps must be in [0, {model.n_steps - 1}], got {list(steps)}")
    policy = ModelPolicy(agent)
    flows, _ = rollout(game.clone(n_particles), policy, seed)
    initial = model.initial_states(n_particles, population_rngs(seed + 1, 1)[0])
    best_response = dp_best_response(model, flows[0].mean_fields, initial, fit_resolution(DEFAULT_RESOLUTION, model))
    seen: dict[int, tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = {}

    def keep(step: int, states: np.ndarray, observation: dict[str, np.ndarray], actions: np.ndarray) -> None:
        if step in steps:
            seen[step] = (states.copy(), {key: value.copy() for key, value in observation.items()}, actions.copy())

    play_against(game, flows[0], policy, n_particles, seed + 1, keep)
    rows = []
    for step in steps:
        states, observation, actions = seen[step]
        speed = np.linalg.norm(states[:, 2:], axis=1)
        chosen = np.flatnonzero(speed > MOVING)[:n_agents]
        states, actions = states[chosen], actions[chosen]
        observation = {key: value[chosen] for key, value in observation.items()}
        braking = -states[:, 2:] / speed[chosen, None]
        first_actions = ALPHAS[:, None, None] * braking[None]
        curves = {
            "critic": critic_q(agent, observation, first_actions),
            "Monte Carlo": monte_carlo_q(model, flows[0], policy, step, states, first_actions, paths, seed + 2),
            "dp": dp_q(best_response, step, states, first_actions),
        }
        own = (actions * braking).sum(axis=1).mean()
        levels = {name: values[0].mean() for name, values in curves.items()}
        rows += [
            f"step {step}: {len(chosen)} agents, mean speed {speed[chosen].mean():.2f}, the policy's braking "
            f"{own:.2f}; mean Q(s, 0): critic {levels['critic']:.3f}, Monte Carlo {levels['Monte Carlo']:.3f}",
            "",
            "| alpha | " + " | ".join(f"{alpha:.1f}" for alpha in ALPHAS) + " | mean best alpha |",
            "|---" * (len(ALPHAS) + 2) + "|",
        ]
        for name, values in curves.items():
            gains = " | ".join(f"{gain:+.3f}" for gain in (values - values[0]).mean(axis=1))
            rows.append(f"| {name} | {gains} | {ALPHAS[values.argmax(axis=0)].mean():.2f} |")
        rows.append("")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished MFGCrowd-v0 run folder")
    parser.add_argument("--steps", nargs="+", type=int, default=[8, 20, 32], help="steps to compare the curves at")
    parser.add_argument("--n-particles", type=int, default=3000, help="particles of the flow and of the agents")
    parser.add_argument("--agents", type=int, default=400, help="moving agents per step")
    parser.add_argument("--paths", type=int, default=48, help="Monte Carlo noise paths per agent")
    parser.add_argument("--seed", type=int, default=0, help="seed of the flow (the agents: seed + 1, the paths: + 2)")
    args = parser.parse_args(argv)
    agent, game = load_crowd_run(parser, args, ("n_particles", "agents", "paths"))
    try:
        rows = slope_rows(game, agent, tuple(args.steps), args.n_particles, args.agents, args.paths, args.seed)
    except ValueError as error:
        parser.error(str(error))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
