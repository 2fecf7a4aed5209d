"""Building blocks shared by the mean field algorithms: population encoders and exploration noise."""

from sb3_meanfield.common.encoders import (
    ACTOR_EXTRACTOR_DEFAULTS,
    CRITIC_EXTRACTOR_DEFAULTS,
    POPULATION_ENCODERS,
    CnnPopulationEncoder,
    DeepSetsPopulationEncoder,
    MeanFieldExtractor,
)
from sb3_meanfield.common.noise import (
    DecayingGaussianActionNoise,
    VectorizedDecayingGaussianActionNoise,
    make_action_noise,
)

__all__ = [
    "ACTOR_EXTRACTOR_DEFAULTS",
    "CRITIC_EXTRACTOR_DEFAULTS",
    "POPULATION_ENCODERS",
    "CnnPopulationEncoder",
    "DecayingGaussianActionNoise",
    "DeepSetsPopulationEncoder",
    "MeanFieldExtractor",
    "VectorizedDecayingGaussianActionNoise",
    "make_action_noise",
]
