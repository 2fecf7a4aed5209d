"""Self-play: the learning particles of one population of a game are the ``n_envs`` of a Stable-Baselines3 ``VecEnv``.

:class:`PopulationVecEnv` ``(game, population, n_learners)``: the SB3 environments are the first ``n_learners``
particles of one population of ONE shared :class:`mfg_envs.game.Game` (a single-population id is the game of one
population). Every learning particle shares the same policy, so one forward pass acts for all of them and each
env step stores ``n_learners`` transitions. Every step moves the whole game: the learners act with SB3's actions,
every other particle of every population with its population's policy, in one batched call per population. The
non-learning particles of the learner's population follow the live policy of the model being trained
(:func:`bind_population`, called by the mean field algorithms when they start learning) unless a population policy
was set explicitly. Several ``PopulationVecEnv`` of one game share its clock and its random generators;
:func:`step_populations` steps the game once with the learners of several populations at once.

SB3's conventions: writable learner rows, autoreset on the same step (the last step returns the next episode's
first observation and puts the terminal one in each learner's ``info["terminal_observation"]``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

import mfg_envs
from mfg_envs.core import Population, PopulationFlow, PopulationPolicy, check_actions, check_int
from mfg_envs.env import game_observation_space
from mfg_envs.game import game_of, model_name, population_rngs
from sb3_meanfield.common.replay import MeanFieldReplayBuffer


def learner_rows(obs: dict[str, np.ndarray], n_learners: int) -> dict[str, np.ndarray]:
    """Writable copies of the first ``n_learners`` rows (the game returns read-only broadcast views)."""
    return {key: np.array(value[:n_learners]) for key, value in obs.items()}


def episode_end_infos(final_obs: dict[str, np.ndarray], n_learners: int) -> list[dict[str, Any]]:
    """SB3's infos of the step that ends an episode: each learner's own terminal observation (a termination)."""
    final = learner_rows(final_obs, n_learners)
    return [
        {"terminal_observation": {key: value[i] for key, value in final.items()}, "TimeLimit.truncated": False}
        for i in range(n_learners)
    ]


class PopulationVecEnv(VecEnv):
    """SB3 ``VecEnv`` over the first ``n_learners`` particles of population ``population`` of a shared game.

    :param game: the game (or an env whose game it is), shared with the ``PopulationVecEnv`` of the other
        populations; :meth:`from_id` builds one from a registered id.
    :param population: the learning population, by name or index (default: the first).
    :param n_learners: learning particles, ``1 <= n_learners <=`` the population's size (default: all).

    ``reset`` restarts the WHOLE game: initial states and noise come from one generator per population
    (:func:`mfg_envs.game.population_rngs` of the seed given to
    :meth:`~stable_baselines3.common.vec_env.VecEnv.seed`; without a seed the game's
    generators go on). ``get_attr``, ``set_attr`` and ``env_method`` act once on the shared game and return one
    entry per requested index: the names in :attr:`OWN_NAMES` resolve on this object (``population`` is the
    learning population's :class:`mfg_envs.Population`), every other name on the game.
    """

    render_mode: str | None = None
    #: Names ``get_attr``/``set_attr``/``env_method`` resolve on this object; every other name goes to the game.
    OWN_NAMES: ClassVar[frozenset[str]] = frozenset(
        {
            "game",
            "population",
            "population_index",
            "name",
            "n_learners",
            "n_particles",
            "set_population_policy",
            "set_population_flow",
            "follow_learner",
            "observe",
            "render_mode",
        }
    )

    def __init__(self, game: Any, population: str | int = 0, n_learners: int | None = None) -> None:
        self.game = game_of(game)
        self.population_index = k = self.game.model.index(population)
        size = self.game.n_particles[k]
        self.n_learners = size if n_learners is None else check_int("n_learners", n_learners)
        if self.n_learners > size:
            raise ValueError(f"n_learners must be in [1, {size}] (the size of population {self.name!r})")
        self._policy_set = False
        self._actions = np.zeros((self.n_learners, self.game.model.populations[k].action_dim))
        action_space = spaces.Box(-1.0, 1.0, self._actions.shape[1:], np.float32)
        super().__init__(self.n_learners, game_observation_space(self.game, k), action_space)

    @classmethod
    def from_id(
        cls, env_id: str, n_particles: int = 1000, n_learners: int | None = None, **env_kwargs: Any
    ) -> PopulationVecEnv:
        """Self-play on a registered id: ``n_learners`` of the ``n_particles`` particles of its (first) population
        learn (default: all); ``env_kwargs`` as for ``gym.make(env_id, **env_kwargs)``."""
        if env_id not in mfg_envs.ALL_ENV_IDS:
            raise ValueError(f"env_id must be one of {mfg_envs.ALL_ENV_IDS}, got {env_id!r}")
        n_particles = check_int("n_particles", n_particles)
        if n_learners is not None and not 1 <= check_int("n_learners", n_learners) <= n_particles:
            raise ValueError(f"n_learners must be in [1, n_particles={n_particles}], got {n_learners}")
        return cls(gym.make(env_id, n_particles=n_particles, **env_kwargs), 0, n_learners)

    @property
    def name(self) -> str:
        return self.game.names[self.population_index]

    @property
    def population(self) -> Population:
        """The learning population (its model, particles, policy and frozen flow)."""
        return self.game.members[self.population_index]

    @property
    def n_particles(self) -> int:
        return self.population.n_particles

    # ------------------------------------------------------------------ population API
    def set_population_policy(self, policy: PopulationPolicy | None) -> None:
        """Make this population's non-learning particles follow ``policy`` (``None``: neutral); it is kept when the
        model starts learning (see :func:`bind_population`)."""
        self.game.set_policy(self.population_index, policy)
        self._policy_set = True

    def follow_learner(self, policy: PopulationPolicy) -> None:
        """Self-play: the non-learning particles follow the learner's ``policy``, unless a population policy was set
        with :meth:`set_population_policy`."""
        if not self._policy_set:
            self.game.set_policy(self.population_index, policy)

    def set_population_flow(self, flows: PopulationFlow | Sequence[PopulationFlow] | None) -> None:
        """Freeze every population to its flow from the next reset (one population: one flow; ``None``: unfreeze)."""
        self.game.freeze((flows,) if isinstance(flows, PopulationFlow) else flows)

    def observe(self) -> dict[str, np.ndarray]:
        """The learners' current observations (writable copies), without moving the game."""
        return learner_rows(self.game.observation(self.population_index, slice(0, self.n_learners)), self.n_learners)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        seed, generators = self._seeds[0], self.game.generators
        if seed is not None or generators is None:
            generators = population_rngs(seed, len(self.game.members))
        self.game.reset(generators)
        self._reset_seeds()
        self._reset_options()
        return self.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, self._actions.shape, "actions")

    def step_wait(self) -> VecEnvStepReturn:
        return step_populations([self], [self._actions])[0]

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute (of this object or of the game), once per requested index."""
        return [getattr(self._target(attr_name), attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the attribute once (``indices`` are accepted for API compatibility: every particle shares it)."""
        setattr(self._target(attr_name), attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the method once; its result is repeated for every requested index."""
        result = getattr(self._target(method_name), method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def _target(self, name: str) -> Any:
        return self if name in self.OWN_NAMES else self.game

    def _count(self, indices: VecEnvIndices) -> int:
        if indices is None:
            return self.num_envs
        return 1 if isinstance(indices, int) else len(list(indices))


def shares_context(obs: dict[str, np.ndarray]) -> bool:
    """Whether every row of ``obs`` has the same population and time: one row, or the game's broadcast views
    (:meth:`mfg_envs.core.Population.observation`, stride 0 along the rows); a materialized batch counts as not
    shared, whatever its values."""
    entries = (np.asarray(obs[key]) for key in ("population", "time"))
    return all(entry.shape[0] == 1 or entry.strides[0] == 0 for entry in entries)


class ModelPolicy:
    """An SB3 model as a population policy: batched observation dict -> deterministic normalized actions.

    ``frozen=True`` keeps a copy of the policy network, so later training does not change it. When the rows share
    the population and the time (:func:`shares_context`) and the policy is a mean field policy, the context is
    computed once for the whole batch (``population_actions`` of :class:`~sb3_meanfield.td3.MeanFieldTD3Policy`
    and :class:`~sb3_meanfield.sac.MeanFieldSACPolicy`); the tensors live on the policy's device.
    """

    def __init__(self, model: BaseAlgorithm, frozen: bool = False) -> None:
        self.policy = copy.deepcopy(model.policy) if frozen else model.policy

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.policy.set_training_mode(False)
        device = self.policy.device
        # the mean field policies' shared-context path, for rows that share population and time
        population_actions = getattr(self.policy, "population_actions", None) if shares_context(obs) else None
        rows = slice(None) if population_actions is None else slice(None, 1)
        # th.tensor copies into torch's aligned memory: the actions do not depend on where numpy put obs (see
        # MeanFieldNetworksMixin.obs_to_tensor)
        tensors = {
            key: th.tensor(np.asarray(value[rows] if key != "state" else value, dtype=np.float32), device=device)
            for key, value in obs.items()
        }
        with th.no_grad():
            if population_actions is not None:
                actions = population_actions(tensors["state"], tensors["population"], tensors["time"])
            else:
                actions = self.policy._predict(tensors, deterministic=True)
        return actions.cpu().numpy().astype(np.float64)


def _shapes(observation_space: spaces.Space, action_space: spaces.Space) -> str:
    entries = getattr(observation_space, "spaces", {"observation": observation_space})
    observed = ", ".join(f"{key} {getattr(space, 'shape', None)}" for key, space in entries.items())
    return f"observes {observed}, acts {action_space.shape}"


def check_model_spaces(model: BaseAlgorithm, game: Any, population: int = 0) -> None:
    """``ValueError`` unless ``model`` observes and acts like an agent of ``population`` of ``game`` (an env or a
    core): same observation keys and shapes, same action shape (bounds are not compared). A model trained on
    another model, or with other histogram sizes, fails here rather than deep inside torch."""
    game = game_of(game)
    expected = game_observation_space(game, population)
    action_shape = (game.model.populations[population].action_dim,)
    entries = getattr(model.observation_space, "spaces", None)
    same = (
        isinstance(entries, dict)
        and entries.keys() == expected.spaces.keys()
        and all(entries[key].shape == space.shape for key, space in expected.spaces.items())
        and model.action_space.shape == action_shape
    )
    if not same:
        env = model_name(game.model) + (f", population {game.names[population]!r}" if len(game.names) > 1 else "")
        model_shapes = _shapes(model.observation_space, model.action_space)
        env_shapes = _shapes(expected, spaces.Box(-1.0, 1.0, action_shape))
        raise ValueError(
            f"the model's observation/action spaces do not match the env's ({env}): the model {model_shapes}; "
            f"the env {env_shapes}. Was the model trained on another env or with other env keywords?"
        )


class SelfPlayMixin:
    """Mixed into the mean field algorithms: on a :class:`PopulationVecEnv`, the population follows the model being
    trained (:func:`bind_population`) from its construction (or ``set_env``) on, with no help from the caller. The
    replay buffer of a ``Dict`` observation defaults to :class:`~sb3_meanfield.common.replay.MeanFieldReplayBuffer`
    (SB3's, sampled with fewer copies), which takes the algorithm's ``n_steps`` (n-step returns)."""

    replay_buffer_class: type[ReplayBuffer] | None
    replay_buffer_kwargs: dict[str, Any]
    observation_space: spaces.Space
    n_steps: int
    gamma: float

    def _setup_model(self) -> None:
        if self.replay_buffer_class is None and isinstance(self.observation_space, spaces.Dict):
            self.replay_buffer_class = MeanFieldReplayBuffer
        buffer_class = self.replay_buffer_class  # ours too when a saved model is loaded
        ours = isinstance(buffer_class, type) and issubclass(buffer_class, MeanFieldReplayBuffer)
        if ours and self.n_steps > 1:
            buffer_n_steps = self.replay_buffer_kwargs.get("n_steps", self.n_steps)
            if buffer_n_steps != self.n_steps:
                raise ValueError(f"n_steps={self.n_steps} but replay_buffer_kwargs has n_steps={buffer_n_steps}")
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, "n_steps": self.n_steps, "gamma": self.gamma}
        with warnings.catch_warnings():
            if ours:  # SB3 warns that a custom buffer ignores n_steps: this one takes it (a user's buffer may not)
                warnings.filterwarnings("ignore", message="`n_steps=", category=UserWarning)
            super()._setup_model()  # type: ignore[misc]
        bind_population(self)  # type: ignore[arg-type]
        check_action_cost(self)  # type: ignore[arg-type]
        configure_post_decision(self)  # type: ignore[arg-type]
        configure_horizon(self)  # type: ignore[arg-type]

    def set_env(self, *args: Any, **kwargs: Any) -> None:
        super().set_env(*args, **kwargs)  # type: ignore[misc]
        bind_population(self)  # type: ignore[arg-type]
        check_action_cost(self)  # type: ignore[arg-type]
        configure_post_decision(self)  # type: ignore[arg-type]
        configure_horizon(self)  # type: ignore[arg-type]

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._setup_learn(*args, **kwargs)  # type: ignore[misc]
        bind_population(self)  # type: ignore[arg-type]
        return result


def population_envs(game: Any, n_learners: int | None = None) -> list[PopulationVecEnv]:
    """One :class:`PopulationVecEnv` per population of ``game`` (in the order of ``names``), all on that game."""
    core = game_of(game)
    return [PopulationVecEnv(core, k, n_learners) for k in range(len(core.members))]


def bind_population(model: BaseAlgorithm) -> None:
    """Self-play binding: when ``model`` learns on a :class:`PopulationVecEnv` (wrappers included), the non-learning
    particles of its population follow the model's live deterministic policy (unless set explicitly)."""
    env = model.get_env()
    if env is not None and env.has_attr("follow_learner"):
        env.env_method("follow_learner", ModelPolicy(model), indices=[0])


def learning_population_model(model: BaseAlgorithm) -> Any | None:
    """The model (dynamics and reward) of the population ``model`` learns in, on an env of this package (a
    :class:`PopulationVecEnv` or a ``gym.make`` env, which both have a ``population``); ``None`` otherwise."""
    env = model.get_env()
    if env is None or not env.has_attr("population"):
        return None
    return env.get_attr("population", indices=[0])[0].model


def check_action_cost(model: BaseAlgorithm) -> None:
    """A critic's known effort cost (``policy_kwargs`` ``action_cost``) must be the one in the reward it learns: on an
    env of this package (:func:`learning_population_model`) the learning population's ``effort_rate`` (``l1 a_max``
    on the walled crowds)."""
    cost = getattr(getattr(model.policy, "critic", None), "action_cost", 0.0)
    population_model = learning_population_model(model)
    if cost == 0.0 or population_model is None:
        return
    rate = getattr(population_model, "effort_rate", None)
    if rate is None or not np.isclose(cost, rate, rtol=1e-9, atol=0.0):
        accepted = "0: its reward has no effort cost c ||a||" if rate is None else f"0 or {rate:.12g}, its l1 a_max"
        raise ValueError(f"policy_kwargs action_cost must be {accepted} (the known part of the reward), got {cost}")


def configure_post_decision(model: BaseAlgorithm) -> None:
    """Give a ``post_decision`` critic and its target (``policy_kwargs`` ``post_decision=True``) the learning
    population's post-decision map ``B`` and goal state (``post_decision_matrix``, ``goal_state`` of the walled
    crowds' models); ``ValueError`` on an env whose model has none, or when the critics' known effort cost
    ``action_cost`` is not the reward's (their networks read no action, so it must all be outside them). Without an
    env (a model loaded alone) the critics keep what they were saved with."""
    critics: list[Any] = [getattr(model.policy, name, None) for name in ("critic", "critic_target")]
    critics = [critic for critic in critics if getattr(critic, "post_decision", False)]
    env = model.get_env()
    if not critics or env is None:
        return
    population_model = learning_population_model(model)
    matrix = getattr(population_model, "post_decision_matrix", None)
    goal_state = getattr(population_model, "goal_state", None)
    if matrix is None or goal_state is None:
        raise ValueError(
            "policy_kwargs post_decision=True needs an env whose action moves the next state only through a "
            f"post-decision state and whose reward's state part is -||s - s_goal|| (the walled crowds), got {env}"
        )
    rate = getattr(population_model, "effort_rate", 0.0)
    for critic in critics:
        if not np.isclose(critic.action_cost, rate, rtol=1e-9, atol=0.0):
            # the network reads no action: the reward's whole action term must be the known cost outside it
            cost = critic.action_cost
            raise ValueError(f"policy_kwargs post_decision=True needs action_cost={rate:.12g}, got {cost}")
        critic.configure_post_decision(matrix, goal_state)


def configure_horizon(model: BaseAlgorithm) -> None:
    """Give a ``horizon_scaled`` critic and its target (``policy_kwargs`` ``horizon_scaled=True``) the horizon ``N``
    of the learning population's model (``n_steps``) and the algorithm's ``gamma``; ``ValueError`` on an env of no
    finite horizon. Without an env (a model loaded alone) the critics keep what they were saved with."""
    critics: list[Any] = [getattr(model.policy, name, None) for name in ("critic", "critic_target")]
    critics = [critic for critic in critics if getattr(critic, "horizon_scaled", False)]
    env = model.get_env()
    if not critics or env is None:
        return
    n_steps = getattr(learning_population_model(model), "n_steps", None)
    if n_steps is None:
        raise ValueError(f"policy_kwargs horizon_scaled=True needs an env of mfg_envs (a finite horizon), got {env}")
    for critic in critics:
        critic.configure_horizon(n_steps, float(model.gamma))  # type: ignore[attr-defined]  # an off-policy algorithm


def step_populations(venvs: Sequence[PopulationVecEnv], actions: Sequence[np.ndarray]) -> list[VecEnvStepReturn]:
    """Move the shared game of ``venvs`` by ONE step and return every venv's SB3 step ``(obs, rewards, dones, infos)``.

    ``venvs[i]``'s learners act with ``actions[i]`` (at most one venv per population); every other particle
    of every population acts with its population's policy, in one batched call per population.
    """
    game = venvs[0].game
    if any(venv.game is not game for venv in venvs):
        raise ValueError("the venvs must share one game")
    learners = {
        venv.population_index: check_actions(a, venv._actions.shape, "actions") for venv, a in zip(venvs, actions)
    }
    if len(learners) != len(venvs):
        raise ValueError("at most one PopulationVecEnv per population can act in a step")
    rngs = game.generators
    if rngs is None or not game.started:
        raise RuntimeError("call reset() before step(): the game has not started")
    batches, noises = [], []
    for k, member in enumerate(game.members):  # a loop over populations, each batched
        n_alive = member.states.shape[0]
        own = learners.get(k, np.zeros((0, member.model.action_dim)))
        if own.shape[0] < n_alive:
            own = np.concatenate([own, game.policy_actions(k, slice(own.shape[0], None))])
        batches.append(own)
        noises.append(member.model.noise(n_alive, rngs[k]))
    rewards = game.step(batches, noises)
    done = game.done
    finals = [venv.observe() for venv in venvs] if done else []
    if done:  # same-step autoreset: the generators go on
        game.reset(rngs)
    results: list[VecEnvStepReturn] = []
    for i, venv in enumerate(venvs):
        n = venv.n_learners
        infos = episode_end_infos(finals[i], n) if done else [{} for _ in range(n)]
        results.append((venv.observe(), rewards[venv.population_index][:n].astype(np.float32), np.full(n, done), infos))
    return results
