"""Helpers shared by the training tests."""

from stable_baselines3.common.callbacks import BaseCallback


class StopAfter(BaseCallback):
    """Ends training after ``n_calls`` env steps (of the env, or of the game for a multi-population trainer)."""

    def __init__(self, n_calls: int) -> None:
        super().__init__()
        self.stop_at = n_calls

    def _on_step(self) -> bool:
        return self.n_calls < self.stop_at
