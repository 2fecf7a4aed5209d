from sb3_meanfield.sac.policies import MeanFieldSACPolicy
from sb3_meanfield.sac.sac import MFSAC

__all__ = ["MFSAC", "MeanFieldSACPolicy"]
