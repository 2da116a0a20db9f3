"""MIS: unsupervised multi-granularity region proposals from a Ward merge tree of patch features."""

from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="mis",
        label="MIS proposals",
        prompts=("click", "scribble", "extreme_points"),
        backbones=("effnet-lite0", "sd2", "dino-vits8", "dinov2-vitb14", "mae-vitb16"),
        summary="Unsupervised: clicks pick regions of a merge tree of patch features.",
    ),
    builder="inference.methods.mis.predictor:build_mis",
)

_EXPORTS = {
    "MISPredictor": ".predictor",
    "build_mis": ".predictor",
    "build_tree": ".predictor",
    "MergeTree": ".tree",
    "grid_edges": ".ward",
    "ward_tree": ".ward",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
