from sb3_meanfield.td3.critics import MeanFieldCritic
from sb3_meanfield.td3.policies import MeanFieldTD3Policy
from sb3_meanfield.td3.td3 import MFTD3

__all__ = ["MFTD3", "MeanFieldCritic", "MeanFieldTD3Policy"]
