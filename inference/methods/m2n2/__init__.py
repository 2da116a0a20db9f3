"""M2N2: training-free interactive segmentation from attention as a Markov chain."""
from .predictor import M2N2Predictor, build_m2n2

__all__ = ["M2N2Predictor", "build_m2n2"]
