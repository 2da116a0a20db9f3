"""DynaMITe: multi-instance interactive segmentation, clicks as transformer queries (spec A)."""

from ...jobs import BatchJob, Param
from ...registry import MethodInfo, TrainedWeights, register_method
from .._lazy import lazy_exports

TRAIN = BatchJob(
    kind="train",
    capability="train",
    label="DynaMITe training",
    run="inference.methods.dynamite.jobs:train_job",
    params=(
        Param(
            "backbone",
            "Network",
            "choice",
            "effnet-lite0",
            choices=(
                ("effnet-lite0", "effnet-lite0 (ImageNet, offline)"),
                ("resnet50", "ResNet-50"),
                ("swin_tiny", "Swin-T"),
                ("tiny", "tiny random network (tests)"),
            ),
            unlisted=("tiny",),
            help="Ignored when starting from a model",
        ),
        # CPU-sized defaults; the paper trains 184k steps of 32 crops of 1024. From ImageNet
        # weights held-back objects start to be found after ~400 steps (``maskwright bench
        # dynamite-train``: GrabCut mIoU after one click 0.02 → 0.61 in 1000).
        Param(
            "steps",
            "Steps",
            "int",
            1000,
            minimum=1,
            maximum=1_000_000,
            help="From ImageNet weights a network starts finding objects after a few hundred"
            " steps (1000 steps on 96 COCO images: GrabCut mIoU after one click 0.02 → 0.61);"
            " fine-tuning a model needs fewer",
        ),
        Param("batch_size", "Batch size", "int", 2, minimum=1, maximum=64),
        Param(
            "crop_size",
            "Training crop",
            "int",
            384,
            minimum=128,
            maximum=1536,
            step=32,
            help="Official: 1024",
        ),
        Param("lr", "Learning rate", "float", 1e-4, minimum=1e-8, maximum=0.5),
        Param("checkpoint_every", "Checkpoint every", "int", 50, minimum=1, maximum=100_000),
    ),
    summary="A DynaMITe model trained on the dataset's masks, then evaluated.",
    unit="step",
    stages=(("train", "training"), ("evaluate", "evaluating")),
)

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
        batch=(TRAIN,),
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
