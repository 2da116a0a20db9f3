"""The SAM family (SAM, SAM 2.1, SAM 3) through transformers: clicks and boxes → ranked masks.

Registering reads only the catalogue (:mod:`.variants`, torch-free); the weights load when a
predictor is built, from local disk only (``WeightsNotFound`` names the id and folder).
"""

from ...registry import MethodInfo, register_method
from .._lazy import lazy_exports
from .variants import FAMILIES

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
            prompts=("click", "box"),
            backbones=tuple(_family.variants),
            summary=_SUMMARIES[_name],
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
