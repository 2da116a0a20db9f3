"""``maskwright bench exits``: EXITS pseudo-mask quality and speed, beside two baselines.

Objects: every non-crowd instance of ``coco_sample128`` whose box area is ≥ 2048 px² (MAL's
``min_obj_size``), with extreme points derived from its ground-truth mask, plus the 50 objects
of ``grabcut`` (mask > 128 is the object, 128 an ignored band). EXITS is trained once on the
union (it labels the very objects it is trained on, as a pseudo-label generator does) and
every object gets a pseudo mask. Three mean mask IoUs per set, on the same objects:

* ``exits``: the pseudo masks;
* ``box``: the filled box of the extreme points;
* ``grabcut``: OpenCV GrabCut initialised with that box (``GC_INIT_WITH_RECT``, 5 iterations,
  on the box grown by 10 % per side, long side ≤ 512 px).

``exits`` is the default pipeline: the generator's mask, re-decided at full resolution by
GrabCut seeded from it and kept only where the two agree (IoU ≥ ``refine_min_agreement``). Beside
it, the same generator with the other post-processings (``ExitsConfig.refine``):
``exits_network_iou`` (the network's mask alone) and ``exits_crf_iou`` (mean-field at crop size).

Speed: training seconds per epoch (warm-up and generator) and generation objects per second on
CPU, and generation on CUDA when present. ``$MASKWRIGHT_EXITS_BENCH_DIR``: work in a subfolder
of it named by a fingerprint of the code, config and data, and keep it (a rerun of the same
code resumes an interrupted bench; changed code starts afresh) instead of a temporary folder.
``quick=True``: 160 COCO objects + the GrabCut set, one warm-up and one generator epoch at
128 px crops.

Repeatable, not portable: every random draw is seeded, so two runs on one machine print the same
figures, but the training's floating point follows torch's thread count and build (1 and 2
threads differ in the last bits of the warm-up, then in the retrieved points: 1,565 against
1,596 FG points in a full run, GrabCut set EXITS 0.888 against 0.906, COCO 0.715 against 0.714).
The header prints the threads and versions; compare figures only between runs whose header
matches.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import shared_dir
from inference.data import iou as _iou
from inference.methods.exits.baseline import box_fill, grabcut_box

SHARED = shared_dir()
MIN_BOX_AREA = 2048.0
GRABCUT_ID_OFFSET = 10_000_000
WORK_DIR_ENV = (
    "MASKWRIGHT_EXITS_BENCH_DIR"  # keep (and resume) the work folder instead of a temp one
)
REFINE_ITERATIONS = 20  # the extra "EXITS + CRF" figure: mean-field iterations at crop size


def _grabcut_records(root: Path) -> tuple[list, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """One record per GrabCut image, and its (gt, ignore) masks by annotation id."""
    from PIL import Image

    from inference.evaluation.datasets import _files_by_stem
    from inference.methods.exits.data import ObjectRecord
    from inference.methods.exits.points import box_of, extreme_points_from_mask

    images, masks = _files_by_stem(root / "images"), _files_by_stem(root / "masks")
    records, truth = [], {}
    for index, stem in enumerate(sorted(images)):
        raw = np.asarray(Image.open(masks[stem]))
        raw = raw[..., 0] if raw.ndim == 3 else raw
        gt, ignore = raw > 128, raw == 128
        points = extreme_points_from_mask(gt)
        ann_id = GRABCUT_ID_OFFSET + index
        records.append(
            ObjectRecord(
                ann_id=ann_id,
                image_id=ann_id,
                image_path=images[stem],
                category_id=1,
                box=box_of(points),
                points=points,
            )
        )
        truth[ann_id] = (gt, ignore)
    return records, truth


def _baselines(records: list, truth_of) -> dict[str, float]:
    """Mean IoU of the filled box and of GrabCut-in-box over ``records``; GrabCut timed."""
    from inference.evaluation.datasets import read_rgb

    scores: dict[str, list[float]] = {"box": [], "grabcut": []}
    grabcut_s = 0.0
    current, image = None, None
    for record in sorted(records, key=lambda r: r.image_id):
        if record.image_path != current:
            current, image = record.image_path, read_rgb(record.image_path)
        gt, ignore = truth_of(record)
        assert image is not None  # read on the first record
        started = time.perf_counter()
        cut = grabcut_box(image, record.box)
        grabcut_s += time.perf_counter() - started
        scores["box"].append(_iou(box_fill(record.box, gt.shape), gt, ignore))
        scores["grabcut"].append(_iou(cut, gt, ignore))
    out = {f"{k}_iou": float(np.mean(v)) for k, v in scores.items()}
    out["objects"] = len(records)
    out["grabcut_objects_per_s"] = len(records) / grabcut_s if grabcut_s else float("nan")
    return out


def _exits_iou(records: list, truth_of, results: dict[int, dict]) -> float:
    """Mean IoU of the pseudo masks in ``results`` (by annotation id) over ``records``."""
    from inference.evaluation.datasets import rasterize

    ious = []
    for record in records:
        gt, ignore = truth_of(record)
        ious.append(_iou(rasterize(results[record.ann_id]["segmentation"], *gt.shape), gt, ignore))
    return float(np.mean(ious))


def _retrieval_precision(out: Path, records: list, truth_of) -> dict[str, float]:
    """Share of retrieved FG (BG) points that fall on (off) the ground-truth object."""
    from inference.methods.exits.batch import _load_pseudo

    path = out / "retrieval.npz"
    if not path.exists():
        return {}
    pseudo = _load_pseudo(path)
    hits = {"fg": [0, 0], "bg": [0, 0]}
    for record in records:
        p = pseudo.get(record.ann_id)
        if p is None:
            continue
        gt, _ = truth_of(record)
        for kind, pts, want in (("fg", p.foreground, True), ("bg", p.background, False)):
            if len(pts):
                ys = np.clip(pts[:, 1].astype(int), 0, gt.shape[0] - 1)
                xs = np.clip(pts[:, 0].astype(int), 0, gt.shape[1] - 1)
                hits[kind][0] += int((gt[ys, xs] == want).sum())
                hits[kind][1] += len(pts)
    return {
        f"retrieval_{k}_precision": v[0] / v[1] if v[1] else float("nan") for k, v in hits.items()
    } | {f"retrieval_{k}_points": float(v[1]) for k, v in hits.items()}


def _fingerprint(config: Any, coco_objects: int, grabcut_objects: int) -> str:
    """16 hex digits naming what a kept work folder's generator and results depend on: the
    source of EXITS, the backbones and imaging, the config, the object counts and the build."""
    import hashlib

    import inference

    root = Path(inference.__file__).parent
    digest = hashlib.sha256()
    sources = [*sorted((root / "methods" / "exits").glob("*.py"))]
    sources += [*sorted((root / "backbones").glob("*.py")), root / "imaging.py"]
    for source in sources:
        if source.is_file():
            digest.update(source.name.encode() + source.read_bytes())
    build = f"{config!r}|{coco_objects}|{grabcut_objects}|{torch.__version__}|{np.__version__}"
    digest.update(build.encode())
    return digest.hexdigest()[:16]


def run(*, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    from inference.evaluation.datasets import rasterize
    from inference.methods.exits.batch import (
        finished_objects,
        generate,
        records_from_coco,
        run_exits,
    )
    from inference.methods.exits.generator import load_generator
    from inference.methods.exits.train import ExitsConfig

    coco_json = SHARED / "data" / "coco_sample128" / "annotations" / "instances_train2017.json"
    grabcut_root = SHARED / "data" / "grabcut"
    if not coco_json.exists():
        print(f"exits: {coco_json} is absent, skipped")
        return {"skipped": "coco_sample128 absent"}
    torch.manual_seed(0)
    coco_records, source = records_from_coco(
        coco_json, min_area=MIN_BOX_AREA, limit=160 if quick else None
    )
    gc_records, gc_truth = _grabcut_records(grabcut_root) if grabcut_root.is_dir() else ([], {})
    config = ExitsConfig(warmup_epochs=1, epochs=1, crop_size=128) if quick else ExitsConfig()
    print(
        f"EXITS on {len(coco_records)} coco_sample128 objects (box ≥ {MIN_BOX_AREA:.0f} px²) + "
        f"{len(gc_records)} GrabCut objects; encoder {config.encoder}, crop {config.crop_size} px, "
        f"δ {config.delta:.1f} px, {config.warmup_epochs} warm-up + {config.epochs} epochs, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, numpy {np.__version__}"
    )
    infos = {im["id"]: im for im in source["images"]}
    anns = {a["id"]: a for a in source["annotations"]}

    def coco_truth(record):
        info = infos[record.image_id]
        return rasterize(anns[record.ann_id]["segmentation"], info["height"], info["width"]), None

    keep = os.environ.get(WORK_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="exits-bench-") as tmp:
        # a kept folder is resumed only by the same code, config and data: each combination
        # works in a subfolder of its own fingerprint
        key = _fingerprint(config, len(coco_records), len(gc_records))
        out = Path(keep) / key if keep else Path(tmp)
        if keep:
            print(f"working in {out} (${WORK_DIR_ENV}; an interrupted bench resumes there)")
        started = time.perf_counter()
        stats = run_exits(
            coco_json, out, config=config, device="cpu", records=coco_records + gc_records
        )
        total_s = time.perf_counter() - started
        results = finished_objects(out / "results.jsonl")
        model, _ = load_generator(out / "generator.safetensors")
        # the other post-processings, on the same generator: none (the network's mask alone)
        # and mean-field at crop size
        refined, refine_speed = {}, {}
        for mode in ("none", "crf"):
            (out / f"{mode}.jsonl").unlink(missing_ok=True)
            refine_speed[mode] = generate(
                model,
                coco_records + gc_records,
                out / f"{mode}.jsonl",
                replace(config, refine=mode, refine_iterations=REFINE_ITERATIONS),
            )
            refined[mode] = finished_objects(out / f"{mode}.jsonl")
        figures: dict[str, Any] = {}
        sets = [("coco_sample128", "", coco_records, coco_truth)]
        if gc_records:
            sets.append(("grabcut", "grabcut_set_", gc_records, lambda r: gc_truth[r.ann_id]))
        for name, prefix, records, truth_of in sets:
            base = _baselines(records, truth_of)
            exits = _exits_iou(records, truth_of, results)
            network, crf = (_exits_iou(records, truth_of, refined[m]) for m in ("none", "crf"))
            band = ", 128 band ignored" if prefix else ""
            print(
                f"{name} ({base['objects']} objects{band}): mean IoU  EXITS {exits:.3f}   "
                f"filled box {base['box_iou']:.3f}   GrabCut-in-box {base['grabcut_iou']:.3f}   "
                f"(EXITS network alone {network:.3f}, with crop-size CRF {crf:.3f})"
            )
            figures.update(
                {
                    f"{prefix}exits_iou": round(exits, 4),
                    f"{prefix}box_iou": round(base["box_iou"], 4),
                    f"{prefix}grabcut_iou": round(base["grabcut_iou"], 4),
                    f"{prefix}exits_network_iou": round(network, 4),
                    f"{prefix}exits_crf_iou": round(crf, 4),
                    f"{prefix}objects": base["objects"],
                }
            )
            if not prefix:
                grabcut_rate = base["grabcut_objects_per_s"]
        precision = _retrieval_precision(out, coco_records, coco_truth)
        if precision:
            print(
                f"retrieval on coco: {precision['retrieval_fg_points']:.0f} FG points, precision "
                f"{precision['retrieval_fg_precision']:.3f}; "
                f"{precision['retrieval_bg_points']:.0f} BG points, precision "
                f"{precision['retrieval_bg_precision']:.3f}; objects with points "
                f"{stats.get('retrieved_share', float('nan')):.1%}"
            )
            figures.update({k: round(v, 4) for k, v in precision.items()})
        nan = {"s_per_epoch": float("nan")}  # a resumed run may have trained nothing itself
        warm, gen = stats.get("warmup", nan), stats.get("generator", nan)
        figures["warmup_s_per_epoch"] = round(warm["s_per_epoch"], 2)
        figures["train_s_per_epoch"] = round(gen["s_per_epoch"], 2)
        figures["objects_per_s"] = round(stats["generate"]["objects_per_s"], 2)
        figures["objects_per_s_network"] = round(refine_speed["none"]["objects_per_s"], 2)
        figures["objects_per_s_crf"] = round(refine_speed["crf"]["objects_per_s"], 2)
        figures["grabcut_objects_per_s"] = round(grabcut_rate, 2)
        figures["retrieval_s"] = round(stats.get("retrieval_s", float("nan")), 1)
        figures["total_s"] = round(total_s, 1)
        print(
            f"cpu: warm-up {warm['s_per_epoch']:.1f} s/epoch, generator {gen['s_per_epoch']:.1f} "
            f"s/epoch ({len(coco_records) + len(gc_records)} objects, batch {config.batch_size}), "
            f"retrieval {figures['retrieval_s']:.0f} s, generation {figures['objects_per_s']:.1f} "
            f"objects/s (network alone {figures['objects_per_s_network']:.1f}, GrabCut-in-box "
            f"{figures['grabcut_objects_per_s']:.1f}); whole run {total_s:.0f} s"
        )
        want = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if want.startswith("cuda") and torch.cuda.is_available():
            model = model.to(want)
            speed = generate(model, coco_records, out / "cuda.jsonl", config, device=want, amp=True)
            figures["objects_per_s_cuda"] = round(speed["objects_per_s"], 2)
            from inference.methods.exits.train import new_generator, train_stage

            trained = train_stage(
                new_generator(config),
                coco_records + gc_records,
                config,
                stage="generator",
                epochs=1,
                checkpoint=None,
                device=want,
            )
            figures["train_s_per_epoch_cuda"] = round(trained["s_per_epoch"], 2)
            print(
                f"cuda: generation {speed['objects_per_s']:.1f} objects/s (fp16 autocast), "
                f"generator training {trained['s_per_epoch']:.1f} s/epoch (fp32)"
            )
    return figures
