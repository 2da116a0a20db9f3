"""EXITS (Lee et al., CVPR 2024): pseudo masks from four extreme points per object.

Stage 1 only (spec B1–B5): a similarity extractor propagates the extreme points to pseudo
foreground/background points, which with MIL, point and CRF losses train a pseudo-label
generator; the generator then labels every object (:func:`run_exits`, COCO json out). The
``exits`` interactive method turns extreme points (or a box) into a mask.
"""

from ...registry import MethodInfo, TrainedWeights, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="exits",
        label="EXITS (extreme points)",
        prompts=("extreme_points", "box"),
        trained=TrainedWeights(
            description="an EXITS generator (the generator.safetensors an EXITS run wrote)",
            suffixes=(".safetensors",),
            load="inference.methods.exits.trained:load_trained",
            convert="inference.methods.exits.trained:convert_trained",
        ),
        summary="Trained: four extreme points (or a box) per object → its mask.",
    ),
    builder="inference.methods.exits.predictor:build_exits",
)

_EXPORTS = {
    "records_from_coco": ".batch",
    "run_exits": ".batch",
    "PseudoLabelGenerator": ".generator",
    "build_generator": ".generator",
    "load_generator": ".generator",
    "save_generator": ".generator",
    "extreme_points_from_mask": ".points",
    "ExitsPredictor": ".predictor",
    "build_exits": ".predictor",
    "ExitsConfig": ".train",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
