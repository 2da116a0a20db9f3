"""MIS: unsupervised multi-granularity region proposals from a Ward merge tree of patch features."""

from ...jobs import BatchJob, Param
from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports

BACKBONES = ("effnet-lite0", "sd2", "dino-vits8", "dinov2-vitb14", "mae-vitb16")
# Tests and benchmarks run the proposals job on small random-weight backbones too.
BATCH_BACKBONES = (*BACKBONES, "tiny-effnet")

PROPOSALS = BatchJob(
    kind="mis",
    capability="proposals",
    label="MIS proposals",
    run="inference.methods.mis.jobs:proposals",
    params=(
        Param(
            "backbone",
            "Backbone",
            "choice",
            "effnet-lite0",
            choices=tuple((b, b) for b in BATCH_BACKBONES),
            help="features the merge tree is built on",
            weights=True,
        ),
        Param(
            "max_per_image",
            "Max proposals per image",
            "int",
            20,
            minimum=1,
            maximum=1000,
            help="the best-scoring proposals kept per image",
        ),
        Param(
            "min_fraction",
            "Min fraction",
            "float",
            0.01,
            minimum=0.0,
            maximum=0.99,
            help="smallest proposal, as a fraction of the image's patches",
        ),
        Param(
            "score_threshold",
            "Score threshold",
            "float",
            0.0,
            minimum=0.0,
            maximum=1.0,
            help="proposals whose persistence in the tree is lower are dropped",
        ),
        Param(
            "draws",
            "Samples",
            "int",
            50,
            minimum=0,
            maximum=1000,
            help="samples of the top-down sampler, besides the tree's cuts",
        ),
        Param(
            "ranking",
            "Ranking",
            "choice",
            "learned",
            choices=(
                ("learned", "learned (objects first; fitted on coco_sample128's even half)"),
                ("rule", "rule (persistence × area, large-region and strip penalties)"),
            ),
            help="how each image's proposals are ordered for review (ranker.py, ranking.py)",
        ),
        Param(
            "large_factor",
            "Large-region factor",
            "float",
            0.5,
            minimum=0.0,
            maximum=1.0,
            help="rule ranking: multiplies the score of a proposal covering over half the image",
        ),
        Param(
            "strip_factor",
            "Strip factor",
            "float",
            0.5,
            minimum=0.0,
            maximum=1.0,
            help="rule ranking: multiplies the score of a proposal touching opposite image borders",
        ),
        Param(
            "duplicate_iou",
            "Duplicate IoU",
            "float",
            0.9,
            minimum=0.0,
            maximum=1.0,
            help="ranking: a proposal this close (IoU) to a better-ranked one is dropped",
        ),
    ),
    summary="Class-agnostic proposals of every image, at several granularities.",
    cli="inference.methods.mis.batch:main",
)

register_method(
    MethodInfo(
        name="mis",
        label="MIS proposals",
        prompts=("click", "scribble", "extreme_points"),
        backbones=BACKBONES,
        summary="Unsupervised: clicks pick regions of a merge tree of patch features.",
        batch=(PROPOSALS,),
    ),
    builder="inference.methods.mis.predictor:build_mis",
)

_EXPORTS = {
    "MISPredictor": ".predictor",
    "image_proposals": ".jobs",
    "build_mis": ".predictor",
    "build_tree": ".predictor",
    "MergeTree": ".tree",
    "grid_edges": ".ward",
    "ward_tree": ".ward",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
