"""DynaMITe's training data (spec A3.1) from a COCO-format instances json.

Per sample: horizontal flip (p = 0.5), large-scale jitter (rescale so the image fits in
s·crop×s·crop, s ~ U(0.1, 2.0)), a fixed crop×crop crop (random window if larger, bottom/right
padding with grey 128 if smaller, detectron2's ``FixedSizeCrop`` default), then a random subset
of min(⌊0.7·N⌋, 30) objects (all of them when N = 1), painted largest-first so smaller objects
win overlaps, and objects with ≤ 50 pixels left dropped. The background target is
not(padding ∪ kept objects): objects not selected are background for this sample.

Objects: non-crowd annotations with json ``area`` > 400 (1000 for Swin-L in the official
configs); polygons and RLEs are rasterised with pycocotools. The official training set is
COCO+LVIS (RITM's package); any COCO-format json works here.

Sampling is a pure function of (index, rng): the trainer derives the generator from
(seed, step, slot), so resuming a run replays exactly the same crops.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...data import paint_largest_first, rasterize, read_rgb

PAD_VALUE = 128  # detectron2 FixedSizeCrop's image pad value
MIN_AREA = 400.0  # INPUT.MIN_AREA_FOR_MASK (1000 for Swin-L)
SUBSET_FRACTION = 0.7  # ⌊0.7·N⌋ objects are kept (computed as 7·N // 10)
MAX_OBJECTS = 30
MIN_PIXELS = 50  # objects with ≤ 50 pixels after de-overlapping are dropped
SCALE_RANGE = (0.1, 2.0)
MAX_RETRIES = 20  # resample another image when a crop keeps no object


@dataclass
class TrainSample:
    """One augmented crop.

    ``image``: S×S×3 uint8 RGB (S = crop size); ``labels``: S×S int32 instance map of the kept
    objects (0 = background, 1..N); ``padding``: S×S bool, pixels outside the image.
    """

    image: np.ndarray
    labels: np.ndarray
    padding: np.ndarray
    name: str = ""

    @property
    def n_objects(self) -> int:
        return int(self.labels.max(initial=0))

    @property
    def masks(self) -> np.ndarray:
        """N×S×S bool object masks (de-overlapped)."""
        return self.labels[None] == np.arange(1, self.n_objects + 1)[:, None, None]

    @property
    def background(self) -> np.ndarray:
        """S×S bool background target: not(padding ∪ kept objects)."""
        return ~self.padding & (self.labels == 0)

    @property
    def valid(self) -> np.ndarray:
        return ~self.padding


class CocoTrainDataset:
    """COCO instances json + images folder → augmented :class:`TrainSample` crops.

    Args:
        annotations: the json; images_dir: folder holding ``file_name``s.
        crop_size: S (1024 official; smaller on CPU). Must be a multiple of 32.
        image_ids: restrict to these image ids (e.g. a train split); default every image with
            at least one kept annotation.
        min_area: keep annotations whose json ``area`` exceeds this.
        scale_range: the jitter's (min, max) scale of the crop size.
    """

    def __init__(
        self,
        annotations: str | Path,
        images_dir: str | Path,
        *,
        crop_size: int = 1024,
        image_ids: Sequence[int] | None = None,
        min_area: float = MIN_AREA,
        scale_range: tuple[float, float] = SCALE_RANGE,
        max_objects: int = MAX_OBJECTS,
    ) -> None:
        if crop_size % 32:
            raise ValueError(f"crop_size must be a multiple of 32, got {crop_size}")
        self.images_dir = Path(images_dir)
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.max_objects = max_objects
        data = json.loads(Path(annotations).read_text())
        wanted = None if image_ids is None else set(image_ids)
        per_image: dict[Any, list[dict[str, Any]]] = {}
        for ann in data.get("annotations", []):
            if ann.get("iscrowd", 0) or float(ann.get("area", 0)) <= min_area:
                continue
            if wanted is not None and ann["image_id"] not in wanted:
                continue
            per_image.setdefault(ann["image_id"], []).append(ann)
        infos = {img["id"]: img for img in data["images"]}
        # sorted by image id so an index means the same image on every machine
        self._items = [(infos[i], per_image[i]) for i in sorted(per_image) if i in infos]
        if not self._items:
            raise ValueError(f"{annotations}: no image with an annotation of area > {min_area}")

    def __len__(self) -> int:
        return len(self._items)

    def sample(self, index: int, rng: np.random.Generator) -> TrainSample:
        """An augmented crop of image ``index`` (another image if it keeps no object)."""
        for _ in range(MAX_RETRIES):
            sample = self._try(index, rng)
            if sample is not None:
                return sample
            index = int(rng.integers(len(self)))
        raise RuntimeError(f"{MAX_RETRIES} crops in a row kept no object; check the annotations")

    def _try(self, index: int, rng: np.random.Generator) -> TrainSample | None:
        info, anns = self._items[index]
        image = read_rgb(self.images_dir / info["file_name"])
        height, width = image.shape[:2]
        masks = np.stack([rasterize(a["segmentation"], height, width) for a in anns])
        image, masks, padding = augment(image, masks, self.crop_size, rng, self.scale_range)
        labels = select_objects(masks, rng, self.max_objects)
        if labels is None:
            return None
        return TrainSample(image, labels, padding, Path(info["file_name"]).stem)


def augment(
    image: np.ndarray,
    masks: np.ndarray,
    crop_size: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = SCALE_RANGE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip, scale jitter and fixed-size crop with padding.

    Args:
        image: H×W×3 uint8; masks: N×H×W bool.

    Returns:
        ``(image S×S×3 uint8, masks N×S×S bool, padding S×S bool)``.
    """
    if rng.random() < 0.5:
        image, masks = image[:, ::-1], masks[:, :, ::-1]
    height, width = image.shape[:2]
    # detectron2 ResizeScale: fit the image inside (s·S)×(s·S), keeping its aspect ratio
    scale = rng.uniform(*scale_range) * crop_size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    image = cv2.resize(np.ascontiguousarray(image), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    resized = np.zeros((len(masks), new_h, new_w), dtype=bool)
    for k, mask in enumerate(masks):
        resized[k] = cv2.resize(
            np.ascontiguousarray(mask, dtype=np.uint8),
            (new_w, new_h),
            interpolation=cv2.INTER_NEAREST,
        ).astype(bool)
    # FixedSizeCrop: a random window where the image is larger, padding where it is smaller
    top = int(rng.integers(0, new_h - crop_size + 1)) if new_h > crop_size else 0
    left = int(rng.integers(0, new_w - crop_size + 1)) if new_w > crop_size else 0
    image = image[top : top + crop_size, left : left + crop_size]
    resized = resized[:, top : top + crop_size, left : left + crop_size]
    h, w = image.shape[:2]
    out_image = np.full((crop_size, crop_size, 3), PAD_VALUE, dtype=np.uint8)
    out_image[:h, :w] = image
    out_masks = np.zeros((len(masks), crop_size, crop_size), dtype=bool)
    out_masks[:, :h, :w] = resized
    padding = np.ones((crop_size, crop_size), dtype=bool)
    padding[:h, :w] = False
    return out_image, out_masks, padding


def select_objects(
    masks: np.ndarray, rng: np.random.Generator, max_objects: int = MAX_OBJECTS
) -> np.ndarray | None:
    """S×S int32 instance map of a random subset of ``masks`` (N×S×S bool), or None if empty.

    Objects that left the crop are discarded first; of N remaining, min(⌊0.7·N⌋, 30) are kept
    (all when N = 1), painted largest-first (smaller objects win), and those left with ≤ 50
    pixels dropped. Survivors are numbered 1..K in the subset's random order.
    """
    present = [k for k in range(len(masks)) if masks[k].any()]
    if not present:
        return None
    # ⌊0.7·N⌋ in integers: 0.7 * 70 is 48.999… in floating point
    count = len(present) if len(present) == 1 else min(7 * len(present) // 10, max_objects)
    chosen = [present[k] for k in rng.permutation(len(present))[:count]]
    labels = paint_largest_first([masks[k] for k in chosen])
    areas = np.bincount(labels.ravel(), minlength=len(chosen) + 1)
    keep = [j for j in range(1, len(areas)) if areas[j] > MIN_PIXELS]
    if not keep:
        return None
    lookup = np.zeros(len(areas), dtype=np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1, dtype=np.int32)
    return lookup[labels]


def split_image_ids(annotations: str | Path, n_first: int) -> tuple[list[int], list[int]]:
    """The json's image ids sorted, cut after ``n_first``: a deterministic train/eval split."""
    ids = sorted(img["id"] for img in json.loads(Path(annotations).read_text())["images"])
    return ids[:n_first], ids[n_first:]
