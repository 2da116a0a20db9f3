"""The SAM family's catalogue: variant name → Hugging Face model id and transformers classes.

Importing this module imports no torch or transformers (the package's registration reads the
variant names from it); :func:`load_variant` imports them when it loads a checkpoint.

Checkpoints are never downloaded: a variant's model id resolves to a local folder through
:func:`inference.weights.resolve_weights` (``$MASKWRIGHT_WEIGHTS_DIR/facebook--sam-vit-base``,
``.../sam-vit-base`` or the Hugging Face cache), and a miss raises ``WeightsNotFound`` naming the
id and the folder to use. ``"tiny"`` is a random-weight model of the family's structure at toy
sizes (:mod:`.tiny`), for tests; it is accepted but not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TINY = "tiny"


@dataclass(frozen=True)
class Family:
    """One model family served by :class:`~.predictor.SamFamilyPredictor`.

    ``variants``: variant name → Hugging Face model id, default first. ``model_class`` and
    ``processor_class``: names in ``transformers``. ``multi_level``: the model's
    ``get_image_embeddings`` returns several feature levels (SAM 2, SAM 3's tracker), not one
    tensor (SAM). ``needs_reshaped_size``: ``post_process_masks`` takes the resized image's
    size (SAM pads its longest-side resize to a square; SAM 2 / 3 stretch to a square).
    """

    name: str
    label: str
    model_class: str
    processor_class: str
    variants: dict[str, str]
    multi_level: bool
    needs_reshaped_size: bool

    @property
    def default(self) -> str:
        return next(iter(self.variants))


FAMILIES: dict[str, Family] = {
    "sam": Family(
        name="sam",
        label="SAM",
        model_class="SamModel",
        processor_class="SamProcessor",
        variants={
            "vit-b": "facebook/sam-vit-base",
            "vit-l": "facebook/sam-vit-large",
            "vit-h": "facebook/sam-vit-huge",
        },
        multi_level=False,
        needs_reshaped_size=True,
    ),
    "sam2": Family(
        name="sam2",
        label="SAM 2.1",
        model_class="Sam2Model",
        processor_class="Sam2Processor",
        variants={
            "hiera-tiny": "facebook/sam2.1-hiera-tiny",
            "hiera-small": "facebook/sam2.1-hiera-small",
            "hiera-base-plus": "facebook/sam2.1-hiera-base-plus",
            "hiera-large": "facebook/sam2.1-hiera-large",
        },
        multi_level=True,
        needs_reshaped_size=False,
    ),
    "sam3": Family(
        name="sam3",
        label="SAM 3",
        # the tracker half of SAM 3 answers clicks and boxes; transformers loads it alone from
        # the full ``facebook/sam3`` checkpoint (the detector's weights are skipped)
        model_class="Sam3TrackerModel",
        processor_class="Sam3TrackerProcessor",
        variants={"sam3": "facebook/sam3"},
        multi_level=True,
        needs_reshaped_size=False,
    ),
}


def family(name: str) -> Family:
    """The family ``name`` (``"sam"``, ``"sam2"``, ``"sam3"``); KeyError naming the known ones."""
    if name not in FAMILIES:
        raise KeyError(f"unknown SAM family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def model_id_of(family_name: str, backbone: str) -> str:
    """The model id (or folder path) to resolve for ``backbone`` of a family: a variant name
    gives its Hugging Face id; anything else is taken as an id or folder as it is."""
    return family(family_name).variants.get(backbone, backbone)


@dataclass
class LoadedSam:
    """A loaded model with its processor: what predictors of one variant share.

    ``model``: the transformers model (``SamModel``, ``Sam2Model`` or ``Sam3TrackerModel``) in
    eval mode on ``device``; ``processor``: its processor; ``name``: the variant or folder it
    came from.
    """

    family: Family
    name: str
    model: Any
    processor: Any
    device: str


def load_folder(family_name: str, folder: str | Path, device: str = "cpu") -> LoadedSam:
    """Model + processor of ``family_name`` from a local checkpoint folder (never downloads)."""
    import transformers

    found = family(family_name)
    model_cls = getattr(transformers, found.model_class)
    processor_cls = getattr(transformers, found.processor_class)
    model = model_cls.from_pretrained(str(folder), local_files_only=True)
    processor = processor_cls.from_pretrained(str(folder), local_files_only=True)
    return LoadedSam(found, str(folder), model.to(device).eval(), processor, device)


def load_variant(family_name: str, backbone: str, device: str = "cpu") -> LoadedSam:
    """``backbone`` of a family: a variant name (``"vit-b"``), a model id, a checkpoint folder,
    or ``"tiny"`` (random weights, tests). Raises ``WeightsNotFound`` (naming the model id and
    the folder to put it in) when the checkpoint is not on local disk."""
    from ...weights import resolve_weights

    if backbone == TINY:
        from .tiny import tiny_model

        model, processor = tiny_model(family_name)
        return LoadedSam(family(family_name), TINY, model.to(device).eval(), processor, device)
    loaded = load_folder(family_name, resolve_weights(model_id_of(family_name, backbone)), device)
    loaded.name = backbone
    return loaded
