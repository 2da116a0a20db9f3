"""M2N2: training-free interactive segmentation from attention as a Markov chain."""

from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="m2n2",
        label="M2N2 (clicks)",
        prompts=("click", "scribble", "extreme_points", "mask"),  # "mask": refines a prior
        backbones=("effnet-lite0", "sd2", "dino-vits8", "dinov2-vitb14", "mae-vitb16"),
        summary="Training-free: clicks walk a Markov chain over the backbone's attention.",
    ),
    builder="inference.methods.m2n2.predictor:build_m2n2",
)

_EXPORTS = {"M2N2Predictor": ".predictor", "build_m2n2": ".predictor"}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
