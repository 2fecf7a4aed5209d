from sb3_meanfield.ddpg.ddpg import MFDDPG
from sb3_meanfield.td3.policies import MeanFieldTD3Policy

__all__ = ["MFDDPG", "MeanFieldTD3Policy"]
