"""SALT: scribbles of several classes → a label map, by label spreading over patch features."""

from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="salt",
        label="SALT (scribbles, all objects)",
        prompts=("click", "scribble", "extreme_points"),
        multi_object=True,
        backbones=("effnet-lite0", "sd2", "dino-vits8", "dinov2-vitb14", "mae-vitb16"),
        summary="Training-free: every object's scribbles spread over the image at once.",
    ),
    builder="inference.methods.salt.predictor:build_salt",
)

_EXPORTS = {
    "LabelMapResult": ".predictor",
    "SALTPredictor": ".predictor",
    "build_salt": ".predictor",
    "build_graph": ".spreading",
    "spread": ".spreading",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
