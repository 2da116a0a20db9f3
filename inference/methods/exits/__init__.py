"""EXITS (Lee et al., CVPR 2024): pseudo masks from four extreme points per object.

Stage 1 only (spec B1–B5): a similarity extractor propagates the extreme points to pseudo
foreground/background points, which with MIL, point and CRF losses train a pseudo-label
generator; the generator then labels every object (:func:`run_exits`, COCO json out). The
``exits`` interactive method turns extreme points (or a box) into a mask.
"""

from ...jobs import BatchJob, Param
from ...registry import MethodInfo, TrainedWeights, register_method
from .._lazy import lazy_exports

PSEUDO_MASKS = BatchJob(
    kind="exits",
    capability="pseudo_masks",
    label="EXITS pseudo masks",
    run="inference.methods.exits.jobs:pseudo_masks",
    params=(
        Param(
            "encoder",
            "Encoder",
            "choice",
            "effnet-lite0",
            # tiny-conv: a small random encoder (tests)
            choices=(
                ("effnet-lite0", "effnet-lite0 (offline)"),
                ("mae-vitb16", "MAE ViT-B/16 (needs local weights)"),
                ("tiny-conv", "tiny random encoder (tests)"),
            ),
            unlisted=("tiny-conv",),
        ),
        Param("warmup_epochs", "Warm-up epochs", "int", 2, minimum=0, maximum=50, help="Paper: 8"),
        Param("epochs", "Epochs", "int", 6, minimum=1, maximum=100, help="MAL: 10"),
        Param(
            "crop_size",
            "EXITS crop",
            "int",
            160,
            minimum=64,
            maximum=1024,
            step=32,
            help="Paper: 512; smaller is faster on CPU",
        ),
    ),
    summary="A mask for every object outlined by four extreme points or a box.",
    unit="unit",
    stages=(
        ("warmup", "warming up the extractor"),
        ("retrieval", "retrieving pseudo points"),
        ("generator", "training the generator"),
        ("generate", "generating masks"),
    ),
)

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
        batch=(PSEUDO_MASKS,),
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
