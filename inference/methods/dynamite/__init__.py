"""DynaMITe: multi-instance interactive segmentation, clicks as transformer queries (spec A)."""

from ...registry import MethodInfo, TrainedWeights, register_method
from .._lazy import lazy_exports

register_method(
    MethodInfo(
        name="dynamite",
        label="DynaMITe",
        prompts=("click", "scribble", "extreme_points"),
        multi_object=True,
        backbones=("effnet-lite0", "resnet50", "swin_tiny"),
        trained=TrainedWeights(
            description="a DynaMITe checkpoint (.safetensors, or the official .pth)",
            suffixes=(".safetensors", ".pth", ".pt", ".pkl", ".bin"),
            load="inference.methods.dynamite.trained:load_trained",
            convert="inference.methods.dynamite.trained:convert_trained",
            backbones=("swin_tiny", "resnet50", "effnet-lite0"),
        ),
        summary="Trained: every object's clicks at once, as transformer queries; disjoint masks.",
    ),
    builder="inference.methods.dynamite.predictor:build_dynamite",
)

_EXPORTS = {
    "convert_to_safetensors": ".checkpoint",
    "load_model": ".checkpoint",
    "save_model": ".checkpoint",
    "ClickSet": ".model",
    "DecodeOutput": ".model",
    "DynaMITe": ".model",
    "DynamiteConfig": ".model",
    "ImageFeatures": ".model",
    "Resize": ".model",
    "normalise_batch": ".model",
    "object_logits": ".model",
    "preprocess": ".model",
    "DynamitePredictor": ".predictor",
    "build_dynamite": ".predictor",
    "label_map": ".predictor",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
