"""The SAM family (SAM, SAM 2.1, SAM 3) through transformers: clicks and boxes → ranked masks.

Each also refines an object's prior mask (an import, a pseudo label: ``PRIOR_KIND`` among its
prompts, so the platform sends it), read as SAM's dense mask prompt (:mod:`.prior`).

Registering reads only the catalogue (:mod:`.variants`, torch-free); the weights load when a
predictor is built, from local disk only (``WeightsNotFound`` names the id and folder). SAM 3
also offers a batch job, ``sam3_text`` (:data:`TEXT_MASKS`, entry in :mod:`.jobs`): every
instance of each chosen label in every image of a dataset, found from the label's name.
"""

from ...jobs import BatchJob, Param
from ...registry import MethodInfo, register_method
from ...structures import PRIOR_KIND
from .._lazy import lazy_exports
from .variants import FAMILIES

# SAM 3's text prompts ("find every <label>") over a dataset (entry: :mod:`.jobs`). The
# checkpoint is a choice, never a path: a launcher cannot make a worker read a folder of its own.
CHECKPOINTS = (("facebook/sam3", "SAM 3 (facebook/sam3, needs local weights)"),)

TEXT_MASKS = BatchJob(
    kind="sam3_text",
    capability="text_masks",
    label="SAM 3: find every label",
    run="inference.methods.sam.jobs:text_masks",
    params=(
        Param(
            "checkpoint",
            "Checkpoint",
            "choice",
            CHECKPOINTS[0][0],
            choices=CHECKPOINTS,
            help="the SAM 3 weights, from the worker's weights folder or Hugging Face cache",
        ),
        Param(
            "score_threshold",
            "Score threshold",
            "float",
            0.5,
            minimum=0.0,
            maximum=1.0,
            help="an instance is kept when its score (query × presence) is above this",
        ),
        Param(
            "max_per_label",
            "Max instances per label",
            "int",
            50,
            minimum=1,
            maximum=200,  # SAM 3 has 200 queries: no more instances per text exist
            help="the best-scoring instances kept of each label in one image",
        ),
    ),
    summary="Pseudo masks of every instance of the chosen labels, found from their names.",
)

_SUMMARIES = {
    "sam": "Trained (Meta's Segment Anything): clicks and a box; one click gives three"
    " candidates ranked by predicted IoU.",
    "sam2": "Trained (Meta's SAM 2.1, Hiera image encoder): clicks and a box; one click gives"
    " three candidates ranked by predicted IoU.",
    "sam3": "Trained (Meta's SAM 3, its tracker's decoder): clicks and a box; one click gives"
    " three candidates ranked by predicted IoU.",
}

for _name, _family in FAMILIES.items():
    register_method(
        MethodInfo(
            name=_name,
            label=f"{_family.label} (clicks, box)",
            prompts=("click", "box", PRIOR_KIND),  # PRIOR_KIND: refines a prior mask
            backbones=tuple(_family.variants),
            summary=_SUMMARIES[_name],
            # SAM 3's text prompts ("find every <label>") as a batch job over a dataset
            batch=(TEXT_MASKS,) if _name == "sam3" else (),
            # every variant serves only with its checkpoint on the worker's disk
            checkpoints=tuple(_family.variants.items()),
            # SAM 3's text prompts on the canvas too: "find every <label>" in the open image
            text_finder="inference.methods.sam.text:build_text_finder" if _name == "sam3" else "",
        ),
        builder=f"inference.methods.sam.predictor:build_{_name}",
    )
del _name, _family

_EXPORTS = {
    "SamFamilyPredictor": ".predictor",
    "build_sam": ".predictor",
    "build_sam2": ".predictor",
    "build_sam3": ".predictor",
    "FAMILIES": ".variants",
    "LoadedSam": ".variants",
    "load_folder": ".variants",
    "load_variant": ".variants",
    "save_tiny": ".tiny",
}
__all__ = tuple(sorted(_EXPORTS))
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
