"""Helpers shared by the tests."""

from stable_baselines3.common.callbacks import BaseCallback

from mfg_envs.game import Game, rollout

#: The Carmona-Fouque-Sun systemic-risk preset of MFGLinearQuadratic-v0.
SYSTEMIC_RISK = {
    "mean_reversion": 1.0,
    "cross_cost": 0.8,
    "kappa": 1.0,
    "kappa_terminal": 1.0,
    "init_mean": 1.0,
    "init_var": 0.5,
}


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
