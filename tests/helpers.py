"""Helpers shared by the tests."""

from stable_baselines3.common.callbacks import BaseCallback

from mfg_envs.game import Game, rollout


class StopAfter(BaseCallback):
    """Ends training after ``n_calls`` env steps (of the env, or of the game for a multi-population trainer)."""

    def __init__(self, n_calls: int) -> None:
        super().__init__()
        self.stop_at = n_calls

    def _on_step(self) -> bool:
        return self.n_calls < self.stop_at


def rollout_population(population, policy, seed):
    """One episode of ``population``'s own particles (the ``K = 1`` game around it): its flow and returns."""
    flows, returns = rollout(Game.of(population), policy, seed)
    return flows[0], returns[0]
