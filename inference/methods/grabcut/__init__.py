"""``opencv-grabcut``: OpenCV's GrabCut seeded by clicks, a baseline with no model at all."""

from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="opencv-grabcut",
        label="GrabCut (baseline)",
        prompts=("click", "scribble", "extreme_points", "mask"),  # "mask": refines a prior
        summary="Classical colour-model graph cut; no weights, CPU only.",
    ),
    builder="inference.methods.grabcut.predictor:build_opencv_grabcut",
)

_EXPORTS = {"GrabCutPredictor": ".predictor", "build_opencv_grabcut": ".predictor"}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
