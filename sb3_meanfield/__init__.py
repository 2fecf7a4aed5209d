"""Stable-Baselines3 extension for mean field games: population encoders, mean-field training, Nash gap."""

from sb3_meanfield.evaluation import ModelPolicy, NashGapCallback, StopTrainingOnNashGap, nash_gap, rl_best_response

__all__ = ["ModelPolicy", "NashGapCallback", "StopTrainingOnNashGap", "nash_gap", "rl_best_response"]
