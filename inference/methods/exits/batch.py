"""EXITS over a COCO json: warm-up, retrieval, generator training, then a pseudo mask per object.

``run_exits(source, out)`` reads objects from a COCO instances json whose annotations carry
``extreme_points`` (dict left/right/top/bottom, or ExtremeNet's list top, left, bottom, right),
or a ``segmentation`` (extreme points are derived from it, for evaluation), or only a ``bbox``
(MIL supervision only; its side midpoints are not used as points). It writes under ``out``:

* ``checkpoints/warmup.pt``, ``checkpoints/generator.pt``: per-epoch training state (resume);
* ``retrieval.npz``: retrieved pseudo points per object (image coordinates);
* ``generator.safetensors``: the trained generator (+ config), loadable by the ``exits`` predictor;
* ``results.jsonl``: one line per finished object, appended and flushed as it is written;
* ``pseudo_masks.json``: COCO instances json of the pseudo masks (RLE, ``score``), each input
  object exactly once, in input order.

Rerunning with the same ``out`` resumes: finished epochs, the retrieval file and objects
already in ``results.jsonl`` are not redone (a torn last line is ignored and recomputed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import ImageCache, ObjectRecord, PseudoPoints
from .generator import PseudoLabelGenerator, save_generator
from .points import (
    box_of,
    crop_image,
    crop_window,
    extreme_points_from_mask,
    paste_probability,
    points_from_coco,
)
from .train import ExitsConfig, new_generator, predict_probabilities, retrieve_all, train_stage

Progress = Callable[[int, int, str], None]  # (done, total, stage)


def records_from_coco(
    annotations: str | Path,
    images_dir: str | Path | None = None,
    *,
    min_area: float = 0.0,
    use_masks: bool = True,
    limit: int | None = None,
) -> tuple[list[ObjectRecord], dict[str, Any]]:
    """Objects of a COCO json (crowd annotations skipped; ``min_area``: smallest box area in
    px² kept, MAL's ``min_obj_size`` is 2048) and the json itself (for the output's images and
    categories). ``use_masks=False`` ignores segmentations (box-only objects)."""
    from ...data import guess_images_dir, rasterize

    annotations = Path(annotations)
    data = json.loads(annotations.read_text())
    folder = Path(images_dir) if images_dir is not None else guess_images_dir(annotations)
    images = {im["id"]: im for im in data["images"]}
    records: list[ObjectRecord] = []
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0) or ann["image_id"] not in images:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w * h < min_area or w < 2 or h < 2:
            continue
        info = images[ann["image_id"]]
        points = None
        if "extreme_points" in ann:
            points = points_from_coco(ann["extreme_points"])
        elif use_masks and ann.get("segmentation"):
            mask = rasterize(ann["segmentation"], int(info["height"]), int(info["width"]))
            if mask.any():
                points = extreme_points_from_mask(mask)
        box = box_of(points) if points is not None else (x, y, x + w, y + h)
        records.append(
            ObjectRecord(
                ann_id=int(ann["id"]),
                image_id=int(ann["image_id"]),
                image_path=folder / info["file_name"],
                category_id=int(ann.get("category_id", 1)),
                box=box,
                points=points,
            )
        )
        if limit is not None and len(records) >= limit:
            break
    return records, data


def _save_pseudo(path: Path, pseudo: dict[int, PseudoPoints]) -> None:
    arrays: dict[str, Any] = {}  # name → bool array (Any: savez's keywords include allow_pickle)
    for ann_id, p in pseudo.items():
        arrays[f"fg_{ann_id}"] = p.foreground
        arrays[f"bg_{ann_id}"] = p.background
    partial = path.with_suffix(".tmp.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def _load_pseudo(path: Path) -> dict[int, PseudoPoints]:
    found: dict[int, PseudoPoints] = {}
    with np.load(path) as data:
        for key in data.files:
            kind, ann_id = key.split("_", 1)
            entry = found.setdefault(int(ann_id), PseudoPoints())
            setattr(entry, "foreground" if kind == "fg" else "background", data[key])
    return found


def finished_objects(results: Path) -> dict[int, dict]:
    """Objects already in ``results.jsonl`` by annotation id (a torn last line is skipped)."""
    done: dict[int, dict] = {}
    if not results.exists():
        return done
    for line in results.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[int(entry["id"])] = entry
    return done


def mask_annotation(
    record: ObjectRecord, prob: np.ndarray, image: np.ndarray, config: ExitsConfig
) -> tuple[dict, np.ndarray]:
    """COCO annotation (RLE, area, bbox, score) of one object's crop probabilities (s, s) on
    its H×W×3 uint8 image, and the H×W bool mask. The extreme points are forced into the mask
    (they lie on the object). ``score`` = mean probability over the mask pixels."""
    from pycocotools import mask as mask_utils

    image_hw = image.shape[:2]
    window = crop_window(record.box, config.crop_size)
    full = paste_probability(prob, window, image_hw, record.box)
    mask = full > config.mask_threshold
    if config.refine == "grabcut":
        from ...data import iou
        from .baseline import grabcut_refine

        seeds = (
            []
            if record.points is None
            else [record.points.left, record.points.right, record.points.top, record.points.bottom]
        )
        refined = grabcut_refine(image, full, record.box, seeds, threshold=config.mask_threshold)
        # GrabCut can wander off (clutter, similar colours): then the network's mask stays
        if iou(refined, mask) >= config.refine_min_agreement:
            mask = refined
    if record.points is not None:
        height, width = image_hw
        for x, y in (
            record.points.left,
            record.points.right,
            record.points.top,
            record.points.bottom,
        ):
            mask[min(height - 1, max(0, int(y))), min(width - 1, max(0, int(x)))] = True
    score = float(full[mask].mean()) if mask.any() else 0.0
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    x0, y0, x1, y1 = record.box
    return {
        "id": record.ann_id,
        "image_id": record.image_id,
        "category_id": record.category_id,
        "segmentation": rle,
        "area": float(mask.sum()),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "iscrowd": 0,
        "score": round(score, 4),
    }, mask


def generate(
    model: PseudoLabelGenerator,
    records: list[ObjectRecord],
    results: Path,
    config: ExitsConfig,
    *,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    amp: bool = False,
) -> dict[str, float]:
    """Append a pseudo mask for every object not yet in ``results`` (jsonl). Returns counts and
    the generation rate (objects per second, crops + network + paste + RLE)."""
    done = finished_objects(results)
    todo = [r for r in sorted(records, key=lambda r: r.image_id) if r.ann_id not in done]
    cache = ImageCache()
    written = 0
    batch_size = config.generate_batch_size
    started = time.perf_counter()
    with results.open("a") as handle:
        for first in range(0, len(todo), batch_size):
            if should_stop is not None and should_stop():
                break
            chunk = todo[first : first + batch_size]
            images = [cache.get(r.image_path) for r in chunk]
            crops = np.stack(
                [
                    crop_image(im, crop_window(r.box, config.crop_size))
                    for r, im in zip(chunk, images)
                ]
            )
            probs = predict_probabilities(
                model,
                crops,
                device=device,
                amp=amp,
                crf_iterations=config.refine_iterations if config.refine == "crf" else 0,
            )
            for record, image, prob in zip(chunk, images, probs):
                entry, _ = mask_annotation(record, prob, image, config)
                handle.write(json.dumps(entry) + "\n")
                written += 1
            handle.flush()  # whole lines only count as done
            if progress is not None:
                progress(len(done) + first + len(chunk), len(records), "generate")
    seconds = time.perf_counter() - started
    return {
        "generated": written,
        "skipped": len(records) - len(todo),
        "objects_per_s": written / seconds if written and seconds > 0 else float("nan"),
    }


def export_coco(
    results: Path, records: list[ObjectRecord], source: dict[str, Any], target: Path
) -> int:
    """``pseudo_masks.json``: the source's images and categories, one annotation per record in
    input order (records without a result yet are left out). Returns the annotation count."""
    done = finished_objects(results)
    annotations = [done[r.ann_id] for r in records if r.ann_id in done]
    coco = {
        "images": source.get("images", []),
        "annotations": annotations,
        "categories": source.get("categories", [{"id": 1, "name": "object"}]),
    }
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(coco))
    partial.replace(target)
    return len(annotations)


def run_exits(
    source: str | Path,
    out: str | Path,
    *,
    images_dir: str | Path | None = None,
    config: ExitsConfig | None = None,
    device: str = "cpu",
    min_area: float = 0.0,
    limit: int | None = None,
    records: list[ObjectRecord] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Train EXITS on the objects of ``source`` (COCO json) and write their pseudo masks.

    ``progress(done, total, stage)`` is called with stage ``"warmup"``, ``"retrieval"``,
    ``"generator"`` or ``"generate"``; ``should_stop()`` is polled between batches and objects.
    Returns timings and counts; ``"completed"`` is False when stopped (rerun to resume).
    """
    config = config or ExitsConfig()
    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    source_json: dict[str, Any] = {}
    if records is None:
        records, source_json = records_from_coco(source, images_dir, min_area=min_area, limit=limit)
    else:
        source_json = json.loads(Path(source).read_text()) if source else {}
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1))
    stats: dict[str, Any] = {"objects": len(records), "completed": False}
    stop = should_stop or (lambda: False)
    final = out / "generator.safetensors"
    generator: PseudoLabelGenerator
    if final.exists():
        from .generator import load_generator

        generator, _ = load_generator(final, device=device)
    else:
        extractor = new_generator(config)
        warm = train_stage(
            extractor,
            records,
            config,
            stage="warmup",
            epochs=config.warmup_epochs,
            checkpoint=out / "checkpoints" / "warmup.pt",
            device=device,
            progress=progress,
            should_stop=stop,
        )
        stats["warmup"] = warm
        if not warm["completed"]:
            return stats
        retrieval = out / "retrieval.npz"
        if retrieval.exists():
            pseudo = _load_pseudo(retrieval)
        else:
            started = time.perf_counter()
            pseudo = retrieve_all(extractor, records, config, device=device, should_stop=stop)
            if stop():
                return stats
            _save_pseudo(retrieval, pseudo)
            stats["retrieval_s"] = time.perf_counter() - started
        with_points = sum(1 for r in records if r.points is not None)
        stats["retrieved_share"] = (
            sum(1 for p in pseudo.values() if p.count) / with_points if with_points else 0.0
        )
        if progress is not None:
            progress(len(records), len(records), "retrieval")
        generator = new_generator(config, seed_offset=1)
        if config.init_from_warmup:
            generator.load_state_dict(extractor.state_dict())
        del extractor
        trained = train_stage(
            generator,
            records,
            config,
            stage="generator",
            epochs=config.epochs,
            checkpoint=out / "checkpoints" / "generator.pt",
            device=device,
            pseudo=pseudo,
            progress=progress,
            should_stop=stop,
        )
        stats["generator"] = trained
        if not trained["completed"]:
            return stats
        save_generator(
            generator, final, crop_size=config.crop_size, mask_threshold=config.mask_threshold
        )
    gen = generate(
        generator,
        records,
        out / "results.jsonl",
        config,
        device=device,
        progress=progress,
        should_stop=stop,
    )
    stats["generate"] = gen
    stats["annotations"] = export_coco(
        out / "results.jsonl", records, source_json, out / "pseudo_masks.json"
    )
    stats["completed"] = stats["annotations"] == len(records)
    return stats


def main(argv: list[str] | None = None) -> int:
    """EXITS pseudo masks for a COCO json with extreme points, masks or boxes (rerun to resume)."""
    import argparse

    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="exits", description=main.__doc__)
    parser.add_argument("annotations", help="COCO instances json")
    parser.add_argument("--images", help="images folder (default: images/ beside the json)")
    parser.add_argument("--out", required=True, help="output folder; rerun with it to resume")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--encoder", default="effnet-lite0")
    parser.add_argument("--crop-size", type=int, default=ExitsConfig.crop_size)
    parser.add_argument("--epochs", type=int, default=ExitsConfig.epochs)
    parser.add_argument("--warmup-epochs", type=int, default=ExitsConfig.warmup_epochs)
    parser.add_argument("--min-area", type=float, default=0.0, help="smallest box area kept (px²)")
    parser.add_argument(
        "--refine",
        choices=["none", "crf", "grabcut"],
        default=ExitsConfig.refine,
        help="post-processing of each mask (default: GrabCut where it agrees with the network)",
    )
    args = parser.parse_args(argv)
    config = ExitsConfig(
        encoder=args.encoder,
        crop_size=args.crop_size,
        epochs=args.epochs,
        warmup_epochs=args.warmup_epochs,
        refine=args.refine,
    )
    bars: dict[str, tqdm] = {}

    def progress(done: int, total: int, stage: str) -> None:
        bar = bars.setdefault(stage, tqdm(total=total, desc=stage))
        bar.n = done
        bar.refresh()

    stats = run_exits(
        args.annotations,
        args.out,
        images_dir=args.images,
        config=config,
        device=args.device,
        min_area=args.min_area,
        progress=progress,
    )
    for bar in bars.values():
        bar.close()
    print(json.dumps({k: v for k, v in stats.items()}, default=str))
    return 0 if stats["completed"] else 1
