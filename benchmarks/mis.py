"""``maskwright bench mis``: merge speed and proposal quality of MIS.

* Merge only (the paper's figure; features excluded): stride-8 effnet-lite0 features of
  854×480 images (a 60×108 grid, 6,480 patches), our compiled heap on one core and on two
  (one process per core), beside scikit-learn's ``ward_tree`` with the same connectivity.
* End to end: features + merge per image, one process, torch on every core.
* Proposals on ``../shared/data/coco_sample128``: for every ground-truth instance the best
  IoU (at ¼ size) of any proposal of its image, mean and share > 0.5, per backbone that has
  weights here; for the official sampler alone, for what the export writes, and for every tree
  node. Then the top of each image's ranked list as the ``mis`` job returns it
  (:func:`inference.methods.mis.jobs.ranked_nodes`), for its ranking and for persistence alone:
  top-k precision (share of an image's k best proposals with IoU ≥ 0.5 against some
  instance, averaged over images) and recall@10 (share of the instances of ≥ 1000 px matched
  at IoU ≥ 0.5 by one of an image's 10 best), for the learned ranker (the job's default,
  :mod:`inference.methods.mis.ranker`), the hand-set rule and persistence alone, per half:
  even-indexed images (where both were chosen) and odd ones (the confirmation), each with its
  top-10 ratio to persistence (``top10_ratio_confirm``: the learned one's on the odd half).

``MASKWRIGHT_BENCH_MIS_PARTS=proposals`` runs the proposal part only (``speed`` the rest);
both by default.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import shared_dir

SHARED = shared_dir()
BENCH_SIZE = (854, 480)  # (width, height)
PARTS_ENV = "MASKWRIGHT_BENCH_MIS_PARTS"
TOP_K = (5, 10, 20)
RECALL_K = 10
RECALL_MIN_AREA = 1000  # pixels, at full size
JOB_MIN_FRACTION = 0.01  # the mis job's default min_fraction


def _bench_images(count: int) -> list[np.ndarray]:
    folder = SHARED / "data" / "coco_sample128" / "images"
    if folder.is_dir():
        from inference.evaluation.datasets import read_rgb

        files = sorted(folder.iterdir())[:count]
        images = [read_rgb(f) for f in files]
    else:
        from skimage import data

        images = [data.astronaut(), data.coffee(), data.chelsea()] * (count // 3 + 1)
    return [
        np.asarray(Image.fromarray(im).resize(BENCH_SIZE, Image.Resampling.BILINEAR))
        for im in images[:count]
    ]


def _merge_many(features: list[np.ndarray]) -> float:
    """Seconds to merge every (h, w, C) feature map in this process."""
    from inference.methods.mis.ward import grid_edges, ward_tree

    started = time.perf_counter()
    for f in features:
        ward_tree(f.reshape(-1, f.shape[-1]), grid_edges(*f.shape[:2]))
    return time.perf_counter() - started


def _warm() -> None:
    from inference.methods.mis.ward import grid_edges, ward_tree

    ward_tree(np.random.default_rng(0).random((16, 4)), grid_edges(4, 4))


def merge_speed(features: list[np.ndarray], workers: int) -> float:
    """Images per second merging ``features`` over ``workers`` processes (spawned, warmed)."""
    if workers == 1:
        _warm()
        return len(features) / _merge_many(features)
    chunks = [features[i::workers] for i in range(workers)]
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_warm_and_wait, range(workers)))
        started = time.perf_counter()
        list(pool.map(_merge_many, chunks))
        return len(features) / (time.perf_counter() - started)


def _warm_and_wait(_: int) -> None:
    torch.set_num_threads(1)
    _warm()


def _top_of_list(
    ranked: list[int], ious: np.ndarray, large: np.ndarray, into: dict[str, list[float]]
) -> None:
    """Append one image's top-k precisions and recall@10 hits to ``into``: ``ranked`` rows of
    ``ious`` (proposals × instances) best first; ``large`` (instances,) bool."""
    best = ious[ranked].max(1) if ious.shape[1] else np.zeros(len(ranked))
    for k in TOP_K:
        if ranked:
            into[f"top{k}_precision"].append(float(np.mean(best[:k] >= 0.5)))
    if ranked and ious.shape[1]:
        hit = ious[ranked[:RECALL_K]][:, large].max(0) >= 0.5
        into[f"top{RECALL_K}_recall"].extend(hit.astype(float).tolist())


def proposal_quality(
    backbone_name: str, *, limit: int | None, draws: int = 50, half: int | None = None
) -> dict[str, dict] | None:
    """Best IoU per GT instance on coco_sample128 for three proposal sets, or None when the
    data is absent: ``sampled`` (the official sampler alone, > 5 % of the image), ``exported``
    (what ``export_coco`` writes: tree cuts down to 0.5 % plus the samples) and ``all_nodes``
    (every node of the tree: the ceiling of what the tree holds). Under ``ranking``: the
    top-k precisions and recall@10 of the ``mis`` job's ranked list by the hand-set rule (keys
    ``top5_precision`` …, ``top10_recall``, their meaning kept from before the learned ranker),
    by the learned ranker, the job's default (the same keys ending ``_learned``), and by
    persistence alone (ending ``_persistence``). Every ranking key also comes per half of the
    images, ending ``_even`` or ``_odd`` (index parity in the dataset's order, as
    ``half`` selects). ``half`` 0 or 1: the even- or odd-indexed images only."""
    from inference.backbones import build_backbone
    from inference.evaluation.datasets import CocoDataset
    from inference.methods.mis.batch import node_mask, proposal_nodes
    from inference.methods.mis.jobs import ranked_nodes
    from inference.methods.mis.predictor import build_tree
    from inference.methods.mis.ranker import load_ranker

    annotations = SHARED / "data" / "coco_sample128" / "annotations" / "instances_train2017.json"
    if not annotations.exists():
        return None
    dataset = CocoDataset(annotations, protocol="multi", limit=limit, half=half)
    backbone = build_backbone(backbone_name)
    best: dict[str, list[float]] = {"sampled": [], "exported": [], "all_nodes": []}
    counts: dict[str, list[int]] = {k: [] for k in best}
    metric_keys = [f"top{k}_precision" for k in TOP_K] + [f"top{RECALL_K}_recall"]
    suffixes = ("", "_learned", "_persistence")
    top: dict[str, list[float]] = {
        key + suffix + part: []
        for key in metric_keys
        for suffix in suffixes
        for part in ("", "_even", "_odd")
    }
    ranker = load_ranker()
    for index, sample in enumerate(dataset):
        with torch.inference_mode():
            features = backbone.features(sample.image)
        tree = build_tree(features)
        n = tree.n_leaves
        sets = {
            "sampled": tree.proposals(draws, seed=0).tolist(),
            "exported": proposal_nodes(tree, draws=draws, seed=0),
            "all_nodes": list(range(n, 2 * n - 1)),
        }
        # every node's mask once, at a quarter of the image's size (3,000 full-size masks
        # would take about 1 GB); IoU from integer overlaps
        small = (max(1, sample.gt.shape[0] // 4), max(1, sample.gt.shape[1] // 4))
        gt_small = np.asarray(
            Image.fromarray(sample.gt).resize(small[::-1], Image.Resampling.NEAREST)
        )
        masks = np.stack([node_mask(tree, int(p), small) for p in sets["all_nodes"]])
        masks = masks.reshape(len(masks), -1)
        areas = masks.sum(1)
        per_object = []
        for obj in sample.object_ids:
            gt = (gt_small == obj).reshape(-1)
            if not gt.any():  # an object smaller than a quarter-size pixel
                gt = np.zeros_like(gt)
                first = np.minimum(np.argwhere(sample.gt == obj)[0] // 4, np.array(small) - 1)
                gt[np.ravel_multi_index(tuple(first), small)] = True
            inter = masks[:, gt].sum(1)
            ious = inter / np.maximum(areas + gt.sum() - inter, 1)
            per_object.append(ious)
            for name, nodes in sets.items():
                best[name].append(float(ious[np.asarray(nodes, dtype=np.int64) - n].max()))
        for name, nodes in sets.items():
            counts[name].append(len(nodes))
        node_ious = np.stack(per_object, 1) if per_object else np.zeros((len(masks), 0))
        large = np.array([(sample.gt == obj).sum() >= RECALL_MIN_AREA for obj in sample.object_ids])
        for suffix in suffixes:
            listed = ranked_nodes(
                tree,
                min_fraction=JOB_MIN_FRACTION,
                score_threshold=0.0,
                draws=draws,
                seed=0,
                by_persistence=suffix == "_persistence",
                ranker=ranker if suffix == "_learned" else None,
                rgb=sample.image,
                features=features.float().numpy(),
            )
            ranked = [node - n for node, _ in listed]
            per_image: dict[str, list[float]] = {key: [] for key in metric_keys}
            _top_of_list(ranked, node_ious, large, per_image)
            part = "_odd" if index % 2 else "_even"
            for key, values in per_image.items():
                top[key + suffix].extend(values)
                top[key + suffix + part].extend(values)
    ranking = {key: float(np.mean(v)) if v else 0.0 for key, v in top.items()}
    quality: dict[str, dict] = {
        name: {
            "mean": float(np.mean(v)),
            "above_half": float(np.mean(np.array(v) > 0.5)),
            "instances": len(v),
            "images": len(dataset),
            "per_image": float(np.mean(counts[name])),
        }
        for name, v in best.items()
    }
    quality["ranking"] = ranking
    return quality


def run(*, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    parts = {p.strip() for p in os.environ.get(PARTS_ENV, "speed,proposals").split(",")}
    unknown = parts - {"speed", "proposals"}
    if unknown:
        raise ValueError(f"{PARTS_ENV}: unknown parts {sorted(unknown)} (speed, proposals)")
    figures: dict[str, Any] = {}
    if "speed" in parts:
        figures.update(_speed(quick=quick, device=device or "cpu"))
    if "proposals" in parts:
        figures.update(_proposals(quick=quick))
    return figures


def _speed(*, quick: bool, device: str) -> dict[str, Any]:
    from inference.backbones import build_backbone
    from inference.methods.mis.predictor import build_tree

    n_images = 6 if quick else 30
    images = _bench_images(n_images)
    from inference.backbones.effnet import EfficientNetLite0Backbone

    backbone = build_backbone("effnet-lite0", device=device, long_side=864)
    assert isinstance(backbone, EfficientNetLite0Backbone)
    grid = backbone.feature_grid(images[0].shape[:2])
    print(
        f"{len(images)} images {BENCH_SIZE[0]}×{BENCH_SIZE[1]}, effnet-lite0 stride 8 → "
        f"{grid[0]}×{grid[1]} = {grid[0] * grid[1]} patches, {os.cpu_count()} CPUs"
    )
    features, t_feat = [], []
    for im in images:
        started = time.perf_counter()
        with torch.inference_mode():
            f = backbone.features(im)
        t_feat.append(time.perf_counter() - started)
        features.append(f.permute(1, 2, 0).contiguous().numpy().astype(np.float32))
    one = merge_speed(features, 1)
    two = merge_speed(features, 2) if (os.cpu_count() or 1) >= 2 else one
    print(
        f"merge only (numba heap)    1 core  {one:7.2f} img/s   2 cores {two:7.2f} img/s"
        "   (paper: 3.73 img/s)"
    )

    from sklearn.cluster import ward_tree as sk_ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    peer = features[: 2 if quick else 3]
    connectivity = grid_to_graph(*peer[0].shape[:2])
    started = time.perf_counter()
    for patches in peer:
        sk_ward_tree(patches.reshape(-1, patches.shape[-1]), connectivity=connectivity)
    sk_rate = len(peer) / (time.perf_counter() - started)
    print(
        f"merge only (scikit-learn)  1 core  {sk_rate:7.2f} img/s"
        "   (ward_tree with the same connectivity)"
    )

    e2e = []
    for im in images[: 3 if quick else 10]:
        started = time.perf_counter()
        with torch.inference_mode():
            build_tree(backbone.features(im))
        e2e.append(time.perf_counter() - started)
    e2e_rate = 1.0 / statistics.median(e2e)
    print(
        f"end to end (features+merge) {e2e_rate:6.2f} img/s"
        f"   features alone p50 {statistics.median(t_feat):.3f} s"
    )

    # the headline is the better of the two: on 2 cores the pool's pickling of the feature
    # maps (4 MB each) is inside the timed span and can cost more than the second core gains
    return {
        "merge_img_per_s": round(max(one, two), 2),
        "merge_img_per_s_1core": round(one, 2),
        "merge_img_per_s_2cores": round(two, 2),
        "sklearn_merge_img_per_s": round(sk_rate, 2),
        "e2e_img_per_s": round(e2e_rate, 2),
    }


def _proposals(*, quick: bool) -> dict[str, Any]:
    from inference.weights import WeightsNotFound

    figures: dict[str, Any] = {}
    for name in ("effnet-lite0", "dino-vits8", "dinov2-vitb14", "mae-vitb16"):
        try:
            quality = proposal_quality(name, limit=16 if quick else None)
        except WeightsNotFound as exc:
            print(f"proposals {name:14s} skipped: {exc}".splitlines()[0])
            continue
        if quality is None:
            print("proposals: ../shared/data/coco_sample128 is absent, skipped")
            break
        ranking = quality.pop("ranking")
        for kind, q in quality.items():
            print(
                f"proposals {name:14s} {kind:9s} ({q['per_image']:6.1f}/image) best IoU per "
                f"instance: mean {q['mean']:.3f}, > 0.5 for {q['above_half']:.1%} of "
                f"{q['instances']} instances ({q['images']} images)"
            )
            figures[f"proposal_best_iou_mean_{name}_{kind}"] = round(q["mean"], 4)
            figures[f"proposal_above_half_{name}_{kind}"] = round(q["above_half"], 4)
        if "proposal_best_iou_mean" not in figures:
            figures["proposal_best_iou_mean"] = figures[f"proposal_best_iou_mean_{name}_exported"]
        for label, part in (("all", ""), ("even (chosen on)", "_even"), ("odd (confirm)", "_odd")):
            base = ranking[f"top10_precision_persistence{part}"]
            print(f"ranking   {name:14s} {label}:")
            for rname, suffix in (
                ("learned", "_learned"),
                ("rule", ""),
                ("persistence", "_persistence"),
            ):
                top10 = ranking[f"top10_precision{suffix}{part}"]
                print(
                    f"  {rname:11s} top-k precision (IoU ≥ 0.5) "
                    + ", ".join(
                        f"k={k} {ranking[f'top{k}_precision{suffix}{part}']:.3f}" for k in TOP_K
                    )
                    + f"; recall@{RECALL_K} (≥ {RECALL_MIN_AREA} px) "
                    f"{ranking[f'top{RECALL_K}_recall{suffix}{part}']:.3f}"
                    f"; top-10 ÷ persistence {top10 / base if base else float('nan'):.2f}×"
                )
        for who, suffix in (("", "_learned"), ("_rule", "")):
            for half, part in (("chosen", "_even"), ("confirm", "_odd")):
                base = ranking[f"top10_precision_persistence{part}"]
                top10 = ranking[f"top10_precision{suffix}{part}"]
                ranking[f"top10_ratio{who}_{half}"] = top10 / base if base else 0.0
        for key, value in ranking.items():
            figures[f"{key}_{name}"] = round(value, 4)
            figures.setdefault(key, round(value, 4))  # the headline: the first backbone
    return figures
