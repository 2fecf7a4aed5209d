"""Callbacks for self-consistent training: population updates and convergence monitors.

- :class:`PopulationSyncCallback` (representative-agent mode): every ``sync_freq`` env steps the
  population of the env follows a frozen copy of the learner's actor (fixed-point iteration) or the
  average of all copies so far (fictitious play).
- :class:`MeanFieldMonitor`: the convergence criteria of the design, logged under ``mfg/``.
- :class:`ActionBarrierSchedule`: decays the deterministic actor's log barrier over the run.
- :class:`PolicyAveraging`: the final actor as the average of its weights over the end of the run.

All need an off-policy actor-critic model with ``model.actor`` (and ``model.critic`` for the
monitor), as SB3's DDPG, TD3 and SAC and their mean field versions have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback

from mfg_envs.core import Population, PopulationPolicy, check_int, check_real
from mfg_envs.game import Game, rollout
from sb3_meanfield.common.sb3_adapter import progress_remaining
from sb3_meanfield.evaluation import ModelPolicy
from sb3_meanfield.flags import SYNC_MODES


@dataclass(frozen=True)
class MixturePolicy:
    """The uniform mixture of ``k`` policies: row ``i`` of a batch follows ``policies[i mod k]``.

    A population of ``N`` particles then holds ``N/k`` followers of each policy (up to rounding):
    its law is the average ``(1/k) sum_j m^{pi_j}`` of fictitious play rather than the law of an
    averaged action. Rows keep their policy for a whole episode because batches keep their order.
    """

    policies: tuple[PopulationPolicy, ...]

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        k = len(self.policies)
        # a loop over iterates: rows j, j + k, j + 2k, ... in one batched call each
        chosen = [policy({key: value[j::k] for key, value in obs.items()}) for j, policy in enumerate(self.policies)]
        actions = np.empty((sum(len(rows) for rows in chosen), chosen[0].shape[1]))
        for j, rows in enumerate(chosen):
            actions[j::k] = rows
        return actions


class PopulationSyncCallback(BaseCallback):
    """Representative-agent training: update the env population from the learner every ``sync_freq`` steps.

    Iteration ``k`` (at training start and then every ``sync_freq`` calls, i.e. env steps of the
    vectorized env) freezes ``pi_k = mu_theta`` and makes the population follow

    - ``fixed_point``: ``pi_k`` itself, so the learner best-responds to ``m^{pi_k}``: ``pi_{k+1} = BR(m^{pi_k})``;
    - ``fictitious_play``: the mixture of ``pi_0 .. pi_k`` (:class:`MixturePolicy`), so the learner
      best-responds to the averaged flow ``(1/(k+1)) sum_j m^{pi_j}``.

    Each frozen copy is a :class:`sb3_meanfield.ModelPolicy` (deterministic actions, no gradient, batched).

    The population policy is pushed with ``env_method("set_population_policy", fn)``, which both
    :class:`mfg_envs.MeanFieldEnv` and :class:`~sb3_meanfield.common.vec_env.PopulationVecEnv` accept.
    """

    def __init__(self, sync_freq: int = 1000, mode: str = "fixed_point", verbose: int = 0) -> None:
        super().__init__(verbose)
        self.sync_freq = check_int("sync_freq", sync_freq)
        if mode not in SYNC_MODES:
            raise ValueError(f"mode must be one of {SYNC_MODES}, got {mode!r}")
        self.mode = mode
        self.iterates: list[ModelPolicy] = []
        self.n_updates = 0

    def _on_training_start(self) -> None:
        if self.n_updates == 0:  # a resumed run's env already follows the restored iterates
            self.sync()

    def _on_step(self) -> bool:
        if self.n_calls % self.sync_freq == 0:
            self.sync()
        return True

    def sync(self) -> None:
        """Freeze the current actor and make it (or the mixture of all frozen actors) the population policy."""
        latest = ModelPolicy(self.model, frozen=True)
        if self.mode == "fixed_point":
            self.iterates = [latest]
            population_policy: PopulationPolicy = latest
        else:
            self.iterates.append(latest)
            population_policy = MixturePolicy(tuple(self.iterates))
        self.training_env.env_method("set_population_policy", population_policy)
        self.n_updates += 1
        self.logger.record("mfg/population_updates", self.n_updates)
        if self.verbose:
            print(f"step {self.num_timesteps}: population <- {self.mode} iterate {self.n_updates}")


def probe_observations(population: Population, n_probe: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n_probe`` observations of particles that all play the neutral policy, each at a random step.

    A fixed probe set makes policy and Q changes comparable between checks.
    """
    model = population.model
    cohort = population.clone(n_probe)
    game = Game.of(cohort)
    cohort.reset(rng)
    probe_step = rng.integers(0, model.n_steps, n_probe)
    probe = {key: np.array(value) for key, value in cohort.observation().items()}
    neutral = np.zeros((n_probe, model.action_dim))
    while not cohort.done:  # a loop over time steps
        game.step([neutral], [model.noise(n_probe, rng)])
        chosen = probe_step == cohort.step_index
        for key, value in cohort.observation().items():
            probe[key][chosen] = value[chosen]
    return probe


def particle_samples(
    population: Population, policy: PopulationPolicy, n_particles: int, seed: int
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """One episode of ``n_particles`` particles of ``population``'s model that all play ``policy`` (seeded with
    ``seed``: the same initial states and noise for every policy): the quantity the population histogram counts
    (``histogram_values``, ``(n_particles, d_h)``; ``None`` where it is not defined yet) at every step ``0..N``, and
    the particles' returns."""
    game = Game.of(population.clone(n_particles))
    member = game.members[0]
    samples: list[np.ndarray | None] = []

    def record(values: np.ndarray | None) -> None:
        samples.append(None if values is None else np.array(values, dtype=np.float64))

    def recording(obs: dict[str, np.ndarray]) -> np.ndarray:  # called once per step, before the step
        record(member.model.histogram_values(member.states, member.last_actions))
        return policy(obs)

    _, returns = rollout(game, recording, seed)
    record(member.model.histogram_values(member.states, member.last_actions))  # after the last step
    return samples, returns[0]


def population_distance(first: np.ndarray, second: np.ndarray, bounds: np.ndarray) -> float:
    """``(1/d) sum_j W_1(first_j, second_j) / (hi_j - lo_j)``: the 1-Wasserstein distance between the marginals of
    two samples of ``d``-dimensional values (``(N, d)`` each, the same ``N``) on every axis ``j``, in units of the
    histogram's range ``bounds[j] = (lo_j, hi_j)``, averaged over the axes.

    For samples of equal size, ``W_1 = (1/N) sum_i |x_(i) - y_(i)|`` with ``x_(i)``, ``y_(i)`` the sorted values:
    it grows with the shift of the distribution however narrow it is (moving every value by ``delta`` gives
    ``delta / (hi - lo)``), where the L1 distance of two histograms jumps to 2 as soon as the mass leaves its bins.
    """
    if first.shape != second.shape:
        raise ValueError(f"samples must have the same shape, got {first.shape} and {second.shape}")
    w1 = np.abs(np.sort(first, axis=0) - np.sort(second, axis=0)).mean(axis=0)
    return float(np.mean(w1 / (bounds[:, 1] - bounds[:, 0])))


def population_change(
    first: Sequence[np.ndarray | None], second: Sequence[np.ndarray | None], bounds: np.ndarray
) -> float:
    """``max_n`` :func:`population_distance` between two flows of samples (:func:`particle_samples`), over the steps
    where both are defined (0 if none)."""
    return max(
        (population_distance(a, b, bounds) for a, b in zip(first, second) if a is not None and b is not None),
        default=0.0,
    )


class MeanFieldMonitor(BaseCallback):
    """The "Convergence monitors" of docs/design.md, logged every ``check_freq`` env steps under ``mfg/``.

    On a fixed probe set of observations ``s`` and actions ``a`` (:func:`probe_observations`), and
    with the same seed for every flow (common random numbers), between two checks ``k-1`` and ``k``:

    - ``mfg/policy_change``: ``sqrt(mean_s |mu_k(s) - mu_{k-1}(s)|^2)`` (normalized actions);
    - ``mfg/q_change``: ``sqrt(mean_{s,a} (Q_k(s, a) - Q_{k-1}(s, a))^2)`` (first critic);
    - ``mfg/population_change``: ``max_n (1/d) sum_j W_1(m_{n,j}^k, m_{n,j}^{k-1}) / (hi_j - lo_j)``, the largest
      1-Wasserstein distance between the flows of ``flow_particles`` particles that all play the current
      deterministic policy: per step ``n`` and axis ``j`` of the histogrammed quantity (positions, prices, ...),
      between the marginals of the particles' values (:func:`population_distance`), in units of the histogram's
      range ``[lo_j, hi_j]``. Unlike the L1 distance of histograms (which jumps to 2 once the mass leaves its
      bins, as the narrow price distribution of ``MFGPrice-v0`` does at every shift), it grows with the shift;
      it does not depend on the observation's representation (histogram, KDE or moments);
    - ``mfg/population_return``: the mean return of those particles, the policy's value against its
      own mean field.

    The first check only sets the reference (and logs the return). ``history`` keeps every check as
    a dict with ``timesteps``. The Nash gap itself is :class:`sb3_meanfield.NashGapCallback`'s job.
    """

    model: TD3 | SAC  # a model with SB3's critic interface (DDPG is a TD3), as the module docstring says

    def __init__(
        self, check_freq: int = 1000, n_probe: int = 512, flow_particles: int = 1000, seed: int = 0, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        self.check_freq = check_int("check_freq", check_freq)
        self.n_probe = check_int("n_probe", n_probe)
        self.flow_particles = check_int("flow_particles", flow_particles)
        self.seed = seed
        self.history: list[dict[str, float]] = []
        self._previous: tuple[np.ndarray, np.ndarray, list[np.ndarray | None]] | None = None
        self._last_check = -1

    def _on_training_start(self) -> None:
        self.population = self.training_env.get_attr("population", indices=[0])[0]
        rng = np.random.default_rng(self.seed)
        self.probe = probe_observations(self.population, self.n_probe, rng)
        self.probe_actions = rng.uniform(-1.0, 1.0, (self.n_probe, self.population.model.action_dim))

    def _on_step(self) -> bool:
        if self.n_calls % self.check_freq == 0:
            self.check()
        return True

    def _on_training_end(self) -> None:
        if self._last_check != self.n_calls:
            self.check()

    def check(self) -> dict[str, float]:
        """Measure, log (and dump) the monitors of the current actor and critic; return them."""
        self._last_check = self.n_calls
        policy = ModelPolicy(self.model)
        actions = policy(self.probe)
        device = self.model.device
        with th.no_grad():
            q_values = self.model.critic(
                {key: th.tensor(value, device=device) for key, value in self.probe.items()},  # aligned, as ModelPolicy
                th.tensor(self.probe_actions, dtype=th.float32, device=device),
            )[0]
        q_values = q_values.cpu().numpy().ravel()
        flow, returns = particle_samples(self.population, policy, self.flow_particles, self.seed)
        values = {"mfg/population_return": float(returns.mean())}
        if self._previous is not None:
            previous_actions, previous_q, previous_flow = self._previous
            values["mfg/policy_change"] = float(np.sqrt(np.mean((actions - previous_actions) ** 2)))
            values["mfg/q_change"] = float(np.sqrt(np.mean((q_values - previous_q) ** 2)))
            if isinstance(previous_flow, list):  # a checkpoint of an older version kept a PopulationFlow
                bounds = self.population.model.histogram_bounds
                values["mfg/population_change"] = population_change(flow, previous_flow, bounds)
        self._previous = (actions, q_values, flow)
        for key, value in values.items():
            self.logger.record(key, value)
        self.logger.dump(self.num_timesteps)
        self.history.append({"timesteps": self.num_timesteps, **values})
        if self.verbose:
            print(f"step {self.num_timesteps}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        return values


def models_by_suffix(model: Any) -> dict[str, Any]:
    """The SB3 models a callback acts on, by the suffix of their logged keys: ``{"": model}``, or for a
    :class:`~sb3_meanfield.training.MultiPopulationTrainer` (which passes itself as the callbacks' model) one
    ``"/<population>"`` per population."""
    models = getattr(model, "models", None)
    if models is None:
        return {"": model}
    return {f"/{name}": member for name, member in zip(model.names, models)}


class ActionBarrierSchedule(BaseCallback):
    """Moves the regularizers of a TD3/DDPG actor's objective (``MeanFieldTD3Policy(action_barrier=lambda_0,
    action_l2=kappa_0)``) linearly to ``final_barrier`` and ``final_action_l2`` over the run:

    ``lambda = lambda_0 + (lambda_final - lambda_0) p``, ``kappa = kappa_0 + (kappa_final - kappa_0) p``,
    ``p = 1 - progress_remaining`` (SB3's fraction of ``learn``'s steps done, the one its learning-rate schedules
    use), logged as ``train/action_barrier`` and ``train/action_l2``; ``final_action_l2=None`` (default) leaves
    ``kappa`` at the policy's.

    A strong barrier early keeps the untrained critic from driving the actor to the bound; a weak one at the end
    keeps the final policy's tilt toward 0 small. A quadratic that grows as the barrier fades keeps the pull toward 0
    (which damps the self-play loop) without the barrier's ban of the bound. The values set on ``model.critic`` are
    functions of the progress alone, so a resumed run follows the same schedule. With a
    :class:`~sb3_meanfield.training.MultiPopulationTrainer` every population's model follows the schedule on its own
    progress, logged as ``train/action_barrier/<population>`` and ``train/action_l2/<population>``.
    """

    def __init__(self, final_barrier: float, final_action_l2: float | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.final_barrier = check_real("final_barrier", final_barrier, 0.0)
        self.final_action_l2 = None if final_action_l2 is None else check_real("final_action_l2", final_action_l2, 0.0)

    def _on_training_start(self) -> None:
        # TD3/DDPG models with a MeanFieldTD3Policy and its MeanFieldCritic (checked below)
        self.targets = models_by_suffix(self.model)
        if any(getattr(model.policy, "action_barrier", None) is None for model in self.targets.values()):
            raise ValueError("ActionBarrierSchedule needs MeanFieldTD3Policy models (MFTD3 or MFDDPG)")
        self._set_barriers()

    def _on_step(self) -> bool:
        self._set_barriers()
        return True

    def _set_barriers(self) -> None:
        finals = {"action_barrier": self.final_barrier, "action_l2": self.final_action_l2}
        for suffix, model in self.targets.items():
            done = 1.0 - progress_remaining(model)
            for name, final in finals.items():
                if final is None:  # no final_action_l2: the policy's kappa stays
                    continue
                initial = getattr(model.policy, name)
                setattr(model.critic, name, initial + (final - initial) * done)
                self.logger.record(f"train/{name}{suffix}", getattr(model.critic, name))


class PolicyAveraging(BaseCallback):
    """The final policy as the average of the actor's weights over the end of the run (stochastic weight averaging):

    ``theta_bar = (1 / K) sum_k theta(t_k)``,  ``t_k`` every ``every`` transitions once ``start`` of the run is done
    (SB3's progress, as the learning-rate schedules count it),

    loaded into the actor (and TD3's and DDPG's target actor) when training ends, the last iterate always among the
    ``theta(t_k)``. Late in a self-play run the actor's iterates move from one Nash-gap check to the next by more
    than their trend; averaging the iterates of one small-learning-rate stretch removes that spread and keeps their
    common drift (docs/tuning.md, "Averaging the last iterates"). Each population of a
    :class:`~sb3_meanfield.training.MultiPopulationTrainer` averages its own actor on its own progress. The sums are
    part of a checkpoint: a run resumed from its final checkpoint goes on from the averaged actor and adds its next
    iterates to the same average.

    ``counts`` holds the number of averaged iterates ``K`` of each population (key ``""`` for one model,
    ``"/<population>"`` for a trainer's).

    :param start: fraction of the run after which the weights are sampled, in ``[0, 1)``.
    :param every: transitions (of the model being averaged) between two samples, >= 1.
    """

    def __init__(self, start: float = 0.5, every: int = 25_000, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.start = check_real("start", start, 0.0, 1.0, high_open=True)
        self.every = check_int("every", every)
        self.sums: dict[str, dict[str, th.Tensor]] = {}
        self.counts: dict[str, int] = {}
        self.sampled_at: dict[str, int] = {}

    def _on_training_start(self) -> None:
        self.targets = models_by_suffix(self.model)

    def _on_step(self) -> bool:
        for key, model in self.targets.items():
            due = key not in self.sampled_at or model.num_timesteps >= self.sampled_at[key] + self.every
            if due and 1.0 - progress_remaining(model) >= self.start:
                self.add_iterate(key, model)
        return True

    def add_iterate(self, key: str, model: Any) -> None:
        """Add ``model``'s current actor weights to the sum of population ``key``."""
        weights = {name: value.detach().clone() for name, value in model.actor.state_dict().items()}
        if key in self.sums:
            for name, value in weights.items():
                self.sums[key][name] += value
        else:
            self.sums[key] = weights
        self.counts[key] = self.counts.get(key, 0) + 1
        self.sampled_at[key] = model.num_timesteps

    def _on_training_end(self) -> None:
        for key, model in self.targets.items():
            if self.sampled_at.get(key) != model.num_timesteps:  # the last iterate is always one of the averaged
                self.add_iterate(key, model)
            average = {name: total / self.counts[key] for name, total in self.sums[key].items()}
            model.actor.load_state_dict(average)
            if getattr(model, "actor_target", None) is not None:
                model.actor_target.load_state_dict(average)
