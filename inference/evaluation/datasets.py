"""Evaluation datasets: a folder of images and masks, or a COCO instances json.

Both load lazily: building a dataset only lists files or reads the json; ``dataset[i]`` reads
the pixels of one :class:`Sample`. Two protocols shape the samples:

* ``"single"``: one object per sample, ``gt`` an H×W bool mask (RITM's NoC protocol);
* ``"multi"``: one image per sample with all its objects, ``gt`` an H×W int32 instance map
  (0 background, objects 1..N), de-overlapped largest-first so that smaller objects win, as
  DynaMITe's MIST protocol does (spec A4.1).

Images are read with Pillow as stored: no EXIF rotation, because the masks carry none either and
must stay aligned with the pixels.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..data import IMAGE_SUFFIXES, paint_largest_first, rasterize, read_rgb
from ..data import guess_images_dir as _guess_images_dir

ProtocolName = Literal["single", "multi"]
Band = Literal["ignore", "object", "background"]

IGNORE_VALUE = 128  # GrabCut/Berkeley: the unknown band around the object's boundary


@dataclass
class Sample:
    """One evaluation unit.

    ``image``: H×W×3 uint8 RGB. ``gt``: H×W bool (single protocol) or H×W int32 instance map
    (multi protocol: 0 background, objects 1..N). ``ignore``: H×W bool of pixels left out of
    IoU and of click placement, or None. ``name``: unique and readable (file stem, or
    ``"<stem>#<annotation id>"`` for one COCO object).
    """

    name: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None = None

    @property
    def object_ids(self) -> list[int]:
        """Object ids present in ``gt`` (``[1]`` for a bool mask with any object pixel)."""
        if self.gt.dtype == bool:
            return [1] if self.gt.any() else []
        return [int(v) for v in np.unique(self.gt) if v > 0]


class _LazyDataset(Sequence[Sample]):
    """A list of cheap item descriptions; pixels are read on indexing."""

    name: str
    protocol: ProtocolName
    _items: list[Any]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if not isinstance(index, int):
            raise TypeError("datasets are indexed by int (slicing would load every image)")
        return self._load(self._items[index])

    def __iter__(self) -> Iterator[Sample]:
        for item in self._items:
            yield self._load(item)

    def _load(self, item: Any) -> Sample:
        raise NotImplementedError


def _select(
    items: list[Any], limit: int | None, subset_seed: int | None, half: int | None = None
) -> list[Any]:
    """First ``limit`` items, or a random ``limit`` of them when ``subset_seed`` is given.

    ``half`` 0 or 1 first keeps the items at even or odd positions of the dataset's order:
    the two halves of a development set (choose defaults on one, confirm on the other).

    The shuffle-then-truncate order is M2N2's (``random.seed(2024); random.shuffle(ids)``), so
    a subset grows by appending when ``limit`` grows with the same seed.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of samples, got {limit}")
    if half is not None:
        if half not in (0, 1):
            raise ValueError(f"half must be 0 or 1, got {half}")
        items = items[half::2]
    if subset_seed is not None:
        items = list(items)
        random.Random(subset_seed).shuffle(items)
    return items[:limit] if limit is not None else items


class FolderDataset(_LazyDataset):
    """GrabCut / Berkeley layout: ``root/images/<stem>.<ext>`` and ``root/masks/<stem>.<ext>``.

    Masks are read on channel 0. With ``band="ignore"`` (RITM's reading, the default) the value
    128 is an ignored band, values > 128 are the object and the rest background; ``"object"``
    counts every non-zero pixel as object (M2N2's reading of the same files, spec 1.11);
    ``"background"`` keeps > 128 as object with no ignored band.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        protocol: ProtocolName = "single",
        band: Band = "ignore",
        limit: int | None = None,
        subset_seed: int | None = None,
        half: int | None = None,
        images_dir: str = "images",
        masks_dir: str = "masks",
    ) -> None:
        root = Path(root)
        image_root, mask_root = root / images_dir, root / masks_dir
        for folder in (image_root, mask_root):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{folder} is not a folder (expected {images_dir}/ and {masks_dir}/)"
                )
        if band not in ("ignore", "object", "background"):
            raise ValueError(f"band must be ignore, object or background, got {band!r}")
        masks = _files_by_stem(mask_root)
        images = _files_by_stem(image_root)
        missing = sorted(set(images) - set(masks))
        if missing:
            raise ValueError(
                f"{len(missing)} image(s) in {image_root} have no mask, e.g. {missing[:3]}"
            )
        self.name = root.name
        self.protocol = protocol
        self.band: Band = band
        items = [(stem, images[stem], masks[stem]) for stem in sorted(images)]
        self._items = _select(items, limit, subset_seed, half)

    def _load(self, item: tuple[str, Path, Path]) -> Sample:
        stem, image_path, mask_path = item
        image = read_rgb(image_path)
        with Image.open(mask_path) as im:
            raw = np.asarray(im)
        if raw.ndim == 3:
            raw = raw[..., 0]  # RITM reads channel 0 of colour-saved masks
        if raw.shape != image.shape[:2]:
            raise ValueError(
                f"{mask_path.name} is {raw.shape[::-1]} but its image is {image.shape[1::-1]}"
            )
        ignore: np.ndarray | None = None
        if self.band == "object":
            gt = raw > 0
        else:
            gt = raw > IGNORE_VALUE
            if self.band == "ignore":
                band = raw == IGNORE_VALUE
                ignore = band if band.any() else None
        if self.protocol == "multi":
            return Sample(stem, image, gt.astype(np.int32), ignore)
        return Sample(stem, image, gt, ignore)


def _files_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(
                f"two files share the stem {path.stem!r} in {folder}: "
                f"{found[path.stem].name}, {path.name}"
            )
        found[path.stem] = path
    return found


class CocoDataset(_LazyDataset):
    """A COCO instances json plus its images folder.

    ``protocol="single"``: one sample per annotation, in json order. ``"multi"``: one sample per
    image holding all its kept annotations. Crowd annotations (``iscrowd=1``) are skipped, and
    so are annotations whose json ``area`` is below ``min_area`` pixels. Polygons and RLEs are
    rasterised with pycocotools. No ignore mask: COCO has no void label.
    """

    def __init__(
        self,
        annotations: str | Path,
        images_dir: str | Path | None = None,
        *,
        protocol: ProtocolName = "single",
        min_area: float = 0,
        limit: int | None = None,
        subset_seed: int | None = None,
        half: int | None = None,
    ) -> None:
        annotations = Path(annotations)
        if not annotations.is_file():
            raise FileNotFoundError(f"{annotations} does not exist")
        root = Path(images_dir) if images_dir is not None else _guess_images_dir(annotations)
        if not root.is_dir():
            raise FileNotFoundError(f"images folder {root} does not exist")
        data = json.loads(annotations.read_text())
        images = {img["id"]: img for img in data["images"]}
        per_image: dict[Any, list[dict[str, Any]]] = {img_id: [] for img_id in images}
        for ann in data.get("annotations", []):
            if ann.get("iscrowd", 0) or ann["image_id"] not in per_image:
                continue
            if float(ann.get("area", np.inf)) < min_area:
                continue
            per_image[ann["image_id"]].append(ann)
        items: list[Any]
        if protocol == "single":
            items = [(images[i], [a]) for i, anns in per_image.items() for a in anns]
        elif protocol == "multi":
            items = [(images[i], anns) for i, anns in per_image.items() if anns]
        else:
            raise ValueError(f"protocol must be single or multi, got {protocol!r}")
        # annotations/instances_x.json names its dataset by the folder above annotations/
        parent = annotations.parent
        self.name = parent.parent.name if parent.name == "annotations" else annotations.stem
        self.protocol = protocol
        self.images_dir = root
        self._items = _select(items, limit, subset_seed, half)

    def _load(self, item: tuple[dict[str, Any], list[dict[str, Any]]]) -> Sample:
        info, anns = item
        image = read_rgb(self.images_dir / info["file_name"])
        height, width = image.shape[:2]
        if (info.get("height", height), info.get("width", width)) != (height, width):
            raise ValueError(
                f"{info['file_name']} is {width}×{height}, "
                f"the json says {info['width']}×{info['height']}"
            )
        stem = Path(info["file_name"]).stem
        masks = [rasterize(ann["segmentation"], height, width) for ann in anns]
        if self.protocol == "single":
            return Sample(f"{stem}#{anns[0]['id']}", image, masks[0], None)
        return Sample(stem, image, paint_largest_first(masks), None)


def load_dataset(
    path: str | Path,
    *,
    images: str | Path | None = None,
    protocol: ProtocolName = "single",
    band: Band = "ignore",
    min_area: float = 0,
    limit: int | None = None,
    subset_seed: int | None = None,
    half: int | None = None,
) -> FolderDataset | CocoDataset:
    """A folder (images/ + masks/) or a COCO json, chosen by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return FolderDataset(
            path, protocol=protocol, band=band, limit=limit, subset_seed=subset_seed, half=half
        )
    if path.is_file() and path.suffix.lower() == ".json":
        return CocoDataset(
            path,
            images,
            protocol=protocol,
            min_area=min_area,
            limit=limit,
            subset_seed=subset_seed,
            half=half,
        )
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist")
    raise ValueError(f"dataset {path} is neither a folder (images/ + masks/) nor a COCO .json file")
