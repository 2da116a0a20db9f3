"""Synthetic shapes for the EXITS tests: coloured ellipses and rectangles on a noisy ground."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image


def make_shapes_coco(
    root: Path, *, images: int = 4, per_image: int = 2, size: int = 96, seed: int = 0
) -> Path:
    """Write ``images`` PNGs with ``per_image`` non-overlapping shapes each and a COCO json
    (RLE masks) under ``root``; returns the json path."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "shape"}]}
    for i in range(images):
        image = rng.integers(90, 140, size=(size, size, 3), dtype=np.uint8)
        for k in range(per_image):
            mask = np.zeros((size, size), np.uint8)
            cx = (
                int(size * (0.28 + 0.44 * k))
                if per_image == 2
                else int(rng.integers(30, size - 30))
            )
            cy = int(rng.integers(30, size - 30))
            if (i + k) % 2:
                cv2.ellipse(
                    mask,
                    (cx, cy),
                    (int(rng.integers(10, 18)), int(rng.integers(10, 22))),
                    float(rng.uniform(0, 180)),
                    0,
                    360,
                    1,
                    -1,
                )
            else:
                cv2.fillPoly(
                    mask, [np.array([[cx - 14, cy + 16], [cx + 12, cy + 16], [cx, cy - 18]])], 1
                )
            colour = rng.integers(0, 256, size=3)
            colour[k % 3] = 255 if colour[k % 3] < 128 else 0
            image[mask.astype(bool)] = colour.astype(np.uint8)
            rle = mask_utils.encode(np.asfortranarray(mask))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            rle["counts"] = rle["counts"].decode("ascii")
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "segmentation": rle,
                    "bbox": [x, y, w, h],
                    "area": float(mask.sum()),
                    "iscrowd": 0,
                }
            )
        name = f"img{i}.png"
        Image.fromarray(image).save(root / "images" / name)
        coco["images"].append({"id": i + 1, "file_name": name, "height": size, "width": size})
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path


@pytest.fixture
def shapes_coco(tmp_path: Path) -> Path:
    return make_shapes_coco(tmp_path / "data")
