"""MIS over a whole image set: one merge tree per image, resumable, exported as COCO json.

``build_trees`` writes ``<out>/trees/<key>.npz`` per image (children, grid, image size),
atomically, and skips images whose file already exists, so a stopped run resumes where it
stopped. ``export_coco`` samples proposals from every tree and writes them as COCO instances
(RLE masks at image size, category ``proposal``, score = the node's persistence):
the pseudo labels later used to train DynaMITe.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .tree import MergeTree, upsample_patches

Progress = Callable[[int, int, str], None]  # (done, total, key)


@dataclass(frozen=True)
class ImageRef:
    """One image of a batch: ``key`` names its output file; ``id`` is the COCO image id."""

    key: str
    path: Path
    id: int


def images_from(source: str | Path, images_dir: str | Path | None = None) -> list[ImageRef]:
    """Images of a folder (sorted, ids 1…n) or of a COCO json (its ids and file names)."""
    from ...data import IMAGE_SUFFIXES

    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [ImageRef(_key(p.stem), p, i + 1) for i, p in enumerate(files)]
    data = json.loads(source.read_text())
    folder = Path(images_dir) if images_dir else source.parent.parent / "images"
    if not folder.is_dir():
        folder = source.parent / "images"
    return [
        ImageRef(_key(Path(im["file_name"]).stem), folder / im["file_name"], int(im["id"]))
        for im in sorted(data["images"], key=lambda im: im["id"])
    ]


def _key(stem: str) -> str:
    """A file-system-safe name (no path separators or dots that could climb out of ``out``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "image"


def tree_path(out: Path, ref: ImageRef) -> Path:
    return out / "trees" / f"{ref.key}-{ref.id}.npz"


def build_trees(
    refs: Iterable[ImageRef],
    out: str | Path,
    *,
    backbone: str = "effnet-lite0",
    device: str = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    backbone_options: dict | None = None,
) -> dict[str, float]:
    """Merge tree of every image not done yet; returns counts and seconds.

    A corrupt image is recorded in ``<out>/errors.json`` and skipped; the rest go on.
    """
    from ...backbones import build_backbone
    from ...data import read_rgb
    from .predictor import build_tree

    out = Path(out)
    (out / "trees").mkdir(parents=True, exist_ok=True)
    refs = list(refs)
    todo = [r for r in refs if not tree_path(out, r).exists()]
    model = build_backbone(backbone, device=device, **(backbone_options or {}))
    errors: dict[str, str] = {}
    t_features = t_merge = 0.0
    built = 0
    done = len(refs) - len(todo)
    for ref in todo:
        if should_stop is not None and should_stop():
            break
        try:
            image = read_rgb(ref.path)
        except Exception as exc:  # noqa: BLE001 (unreadable or corrupt: report, go on)
            errors[ref.key] = f"{type(exc).__name__}: {exc}"
            done += 1
            continue
        started = time.perf_counter()
        with torch.inference_mode():
            features = model.features(image)
        extracted = time.perf_counter()
        tree = build_tree(features)
        assert tree.costs is not None  # build_tree keeps the merge costs
        t_features += extracted - started
        t_merge += time.perf_counter() - extracted
        target = tree_path(out, ref)
        partial = target.with_suffix(".tmp.npz")
        np.savez(
            partial,
            children=tree.children,
            costs=tree.costs,
            grid_hw=np.array(tree.grid_hw),
            image_hw=np.array(image.shape[:2]),
            image_id=ref.id,
        )
        os.replace(partial, target)  # only whole files count as done
        built += 1
        done += 1
        if progress is not None:
            progress(done, len(refs), ref.key)
    if errors:
        (out / "errors.json").write_text(json.dumps(errors, indent=1))
    return {
        "images": len(refs),
        "built": built,
        "skipped": len(refs) - len(todo),
        "errors": len(errors),
        "features_s": t_features,
        "merge_s": t_merge,
    }


def load_tree(path: Path) -> tuple[MergeTree, tuple[int, int], int]:
    """(tree, image (height, width), image id) from a file written by :func:`build_trees`."""
    with np.load(path) as data:
        grid_h, grid_w = (int(v) for v in data["grid_hw"])
        image_h, image_w = (int(v) for v in data["image_hw"])
        tree = MergeTree(data["children"], (grid_h, grid_w), data["costs"])
        return tree, (image_h, image_w), int(data["image_id"])


def node_mask(tree: MergeTree, node: int, image_hw: tuple[int, int]) -> np.ndarray:
    """H×W bool mask of ``node`` (see :func:`upsample_patches`)."""
    return upsample_patches(tree.patch_mask(node), image_hw)


def proposal_nodes(tree: MergeTree, *, draws: int = 50, seed: int = 0) -> list[int]:
    """What an image's proposals are: the tree cut at several granularities
    (:meth:`MergeTree.levels`, down to 0.5 % of the patches) and ``draws`` samples of the
    official top-down sampler (> 5 %), without duplicates."""
    sampled = tree.proposals(draws, seed=seed).tolist()
    return list(dict.fromkeys(tree.levels() + sampled))


def export_coco(
    out: str | Path, refs: Iterable[ImageRef], target: str | Path, *, draws: int = 50, seed: int = 0
) -> dict[str, int]:
    """Write every tree's proposals (:func:`proposal_nodes`) as a COCO instances json at
    ``target``, each scored by the node's persistence (see :meth:`MergeTree.persistence`)."""
    from pycocotools import mask as mask_utils

    out = Path(out)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for ref in refs:
        path = tree_path(out, ref)
        if not path.exists():
            continue
        tree, (height, width), image_id = load_tree(path)
        images.append(
            {"id": image_id, "file_name": ref.path.name, "height": height, "width": width}
        )
        for node in proposal_nodes(tree, draws=draws, seed=seed + image_id):
            mask = node_mask(tree, node, (height, width))
            if not mask.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": float(mask.sum()),
                    "bbox": bbox,
                    "iscrowd": 0,
                    "score": round(tree.persistence(node), 4),
                    "mis_node": int(node),
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "proposal", "supercategory": "mis"}],
    }
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(coco))
    return {"images": len(images), "annotations": len(annotations)}


def main(argv: list[str] | None = None) -> int:
    """``maskwright proposals``: trees for a folder or COCO json, then a COCO json of proposals."""
    import argparse
    import sys

    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="maskwright proposals", description=main.__doc__)
    parser.add_argument("source", help="folder of images, or a COCO json")
    parser.add_argument(
        "--images", help="images folder of a COCO json (default: images/ beside it)"
    )
    parser.add_argument(
        "--out", required=True, help="output folder (trees/, proposals.json); rerun to resume"
    )
    parser.add_argument("--backbone", default="effnet-lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--draws", type=int, default=50, help="samples of the top-down sampler per image"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        refs = images_from(args.source, args.images)
    except (OSError, ValueError, KeyError) as exc:
        print(f"maskwright proposals: error: cannot read {args.source}: {exc}", file=sys.stderr)
        return 2
    bar = tqdm(
        total=len(refs), desc="merge trees", unit="img", file=sys.stderr, disable=args.no_progress
    )

    def progress(done: int, total: int, key: str) -> None:
        bar.n = done
        bar.refresh()

    stats = build_trees(
        refs, args.out, backbone=args.backbone, device=args.device, progress=progress
    )
    bar.close()
    counts = export_coco(args.out, refs, Path(args.out) / "proposals.json", draws=args.draws)
    print(
        f"{stats['built']} trees built, {stats['skipped']} already done, {stats['errors']} errors "
        f"(features {stats['features_s']:.1f} s, merge {stats['merge_s']:.1f} s); "
        f"{counts['annotations']} proposals on {counts['images']} images → "
        f"{Path(args.out) / 'proposals.json'}"
    )
    return 1 if stats["errors"] else 0
