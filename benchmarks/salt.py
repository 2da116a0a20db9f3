"""``maskwright bench salt``: SALT's quality from sparse prompts and its time per update.

On ``../shared/data/coco_sample128``, "big things" as in the paper: every non-crowd instance
covering ≥ 0.5 % of its image (all COCO instance categories are things). Images are resized
to 512 px on the long side. Two prompt kinds:

* clicks: one click per instance at its most interior point, one for the background;
* scribbles: a short stroke per instance (and one for the background) along the medial axis,
  the skeleton pixels within a radius of the most interior point;
* random clicks, as the paper's "one patch per class, uniformly at random": one click per
  instance and one for the background anywhere at least 4 px inside its region, three draws.
  The defaults were chosen on the first two kinds; these clicks are a check they never saw.

A second check the defaults never saw: ``../shared/data/grabcut`` (50 single-object images,
512 px), one click at the object's most interior point and one at the background's, and
again with one random click each (≥ 4 px inside); the object's IoU outside the unknown band,
for the default and last stop's default.

Quality is the semantic mIoU over the dataset (intersection and union summed per category
over all images, background included, then averaged over categories), as the paper's
"panoptic mIoU"; the mean instance IoU is printed beside it. Peers on the same prompts: label
spreading alone on the same features (no border prior, no prototype step); last stop's
default (spreading alone on stages (3, 6), τ 0.8); the knn and rbf graphs with every other
step as the default; and 1-NN (each cell takes the label of the most similar seed cell, on
the same features). Speed: the
time of ``segment`` as prompts are added one by one, beside scikit-learn's ``LabelSpreading``
fitted on the same features (it rebuilds its graph on every fit).
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import shared_dir

SHARED = shared_dir()
LONG_SIDE = 512
MIN_AREA = 0.005


def _samples(limit: int | None):
    """(image, instance map int32 0 = background, {instance: category}) per image."""
    from pycocotools.coco import COCO

    from inference.evaluation.datasets import paint_largest_first, read_rgb

    root = SHARED / "data" / "coco_sample128"
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
        coco = COCO(str(root / "annotations" / "instances_train2017.json"))
    ids = sorted(coco.getImgIds())[:limit]
    for image_id in ids:
        info = coco.loadImgs(image_id)[0]
        image = read_rgb(root / "images" / info["file_name"])
        h, w = image.shape[:2]
        anns = [
            a
            for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
            if a["area"] >= MIN_AREA * h * w
        ]
        if not anns:
            continue
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        instances = paint_largest_first(masks)
        # paint_largest_first numbers objects 1..N in the order given
        categories = {k + 1: int(a["category_id"]) for k, a in enumerate(anns)}
        image, instances = _resized(image, instances)
        present = {k: c for k, c in categories.items() if (instances == k).any()}
        if present:
            yield image, instances, present


def _resized(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image (bilinear) and its label map (nearest) at ``LONG_SIDE`` on the long side."""
    h, w = image.shape[:2]
    scale = LONG_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (
        np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)),
        np.asarray(Image.fromarray(labels).resize(size, Image.Resampling.NEAREST)),
    )


def _interior(region: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    from inference.imaging import first_argmax, padded_distance

    dist = padded_distance(region)
    return dist, first_argmax(dist)


def _prompts(instances: np.ndarray, categories: dict[int, int], kind: str):
    """Scribbles (label = category, object id = instance; background label 0, a negative)."""
    from skimage.morphology import skeletonize

    out = []
    for obj, label in [(0, 0)] + list(categories.items()):
        region = instances == obj
        _dist, (x, y) = _interior(region)
        if kind == "click":
            out.append(_stroke((float(x), float(y)), label, obj))
            continue
        radius = max(4.0, 0.25 * np.sqrt(region.sum()))
        skeleton = skeletonize(region)
        ys, xs = np.nonzero(
            skeleton
            & (
                (np.arange(region.shape[0])[:, None] - y) ** 2
                + (np.arange(region.shape[1])[None, :] - x) ** 2
                <= radius**2
            )
        )
        points = list(zip(xs.tolist(), ys.tolist()))[::3] or [(x, y)]
        out.extend(_stroke((float(px), float(py)), label, obj) for px, py in points[:40])
    return out


def _stroke(point: tuple[float, float], label: int, obj: int):
    """A one-point, 1-px stroke of class ``label`` for object ``obj`` (label 0: background)."""
    from inference.structures import Scribble

    return Scribble((point,), 1.0, positive=label > 0, object_id=obj, label=max(label, 1))


def _random_clicks(instances: np.ndarray, categories: dict[int, int], rng: np.random.Generator):
    """One click per instance and one for the background, uniformly at random among the
    region's pixels at least 4 px from its edge (any of its pixels where none is)."""
    out = []
    for obj, label in [(0, 0)] + list(categories.items()):
        region = instances == obj
        dist, _ = _interior(region)
        ys, xs = np.nonzero(dist >= 4)
        if len(ys) == 0:
            ys, xs = np.nonzero(region)
        pick = rng.integers(len(ys))
        out.append(_stroke((float(xs[pick]), float(ys[pick])), label, obj))
    return out


RANDOM_DRAWS = 3


class _Score:
    """Semantic I/U per category summed over images, and instance IoUs."""

    def __init__(self) -> None:
        self.inter: dict[int, int] = {}
        self.union: dict[int, int] = {}
        self.instance_ious: list[float] = []

    def add(
        self,
        pred_instances: np.ndarray,
        objects: list[tuple[int, int]],
        instances: np.ndarray,
        categories: dict[int, int],
    ) -> None:
        lookup = np.zeros(max(categories) + 1, np.int64)
        for k, c in categories.items():
            lookup[k] = c
        gt_sem = lookup[instances]
        pred_lookup = np.array([0] + [c for c, _ in objects], np.int64)
        pred_sem = pred_lookup[pred_instances]
        for c in set(categories.values()) | {0}:
            p, g = pred_sem == c, gt_sem == c
            self.inter[c] = self.inter.get(c, 0) + int((p & g).sum())
            self.union[c] = self.union.get(c, 0) + int((p | g).sum())
        for k, c in categories.items():
            g = instances == k
            idx = objects.index((c, k)) + 1 if (c, k) in objects else -1
            p = pred_instances == idx
            self.instance_ious.append(float((p & g).sum() / max((p | g).sum(), 1)))

    def miou(self) -> float:
        return float(np.mean([self.inter[c] / max(self.union[c], 1) for c in self.union]))


def _nearest_seed(
    features: torch.Tensor, predictor, scribbles
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The peer: every cell takes the label of its most similar seeded cell (cosine)."""
    seeds, keys = predictor.seed_cells(scribbles)
    x = torch.nn.functional.normalize(features.reshape(features.shape[0], -1).T, dim=1)
    seeded = np.nonzero(seeds >= 0)[0]
    nearest = (x @ x[seeded].T).argmax(dim=1).numpy()
    labels = seeds[seeded][nearest].reshape(features.shape[1:])
    height, width = predictor.image_size
    return np.asarray(
        Image.fromarray(labels.astype(np.int32)).resize((width, height), Image.Resampling.NEAREST)
    ), keys[1:]


def run(*, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    from inference.backbones import Backbone, build_backbone
    from inference.backbones.effnet import EfficientNetLite0Backbone

    device = device or "cpu"
    if not (SHARED / "data" / "coco_sample128").is_dir():
        print("../shared/data/coco_sample128 is absent: nothing to measure")
        return {}
    limit = 24 if quick else None
    from inference.methods.salt.predictor import SALT_EFFNET_STAGES, SALT_EFFNET_TAU, build_salt

    backbone = build_backbone("effnet-lite0", device=device, stages=SALT_EFFNET_STAGES)
    previous = build_backbone("effnet-lite0", device=device, stages=(3, 6))
    assert isinstance(backbone, EfficientNetLite0Backbone) and isinstance(
        previous, EfficientNetLite0Backbone
    )
    spread_only = {"prototype_mix": 0.0, "border_prior": 0.0}
    # the default first (threshold graph); the peers beside it
    variants: dict[str, tuple[dict[str, Any], Backbone]] = {
        "default": ({"tau": SALT_EFFNET_TAU}, backbone),
        "spread": ({"tau": SALT_EFFNET_TAU, **spread_only}, backbone),
        "previous": ({"tau": 0.8, **spread_only}, previous),
        "knn": ({"graph": "knn"}, backbone),
        "rbf": ({"graph": "rbf"}, backbone),
    }
    predictors = {name: build_salt(backbone=bb, **kw) for name, (kw, bb) in variants.items()}
    scores = {(v, k): _Score() for v in list(variants) + ["1-nn"] for k in ("click", "scribble")}
    random_scores = {(v, d): _Score() for v in ("default", "previous") for d in range(RANDOM_DRAWS)}
    rngs = [np.random.default_rng(d) for d in range(RANDOM_DRAWS)]
    updates: list[float] = []
    sk_updates: list[float] = []
    images = 0
    for image, instances, categories in _samples(limit):
        images += 1
        prompts = {kind: _prompts(instances, categories, kind) for kind in ("click", "scribble")}
        random_prompts = [_random_clicks(instances, categories, rng) for rng in rngs]
        with torch.inference_mode():
            features = backbone.features(image)  # for the peers; each predictor has its own
        for name, predictor in predictors.items():
            predictor.set_image(image)
            for kind, prompt in prompts.items():
                result = predictor.segment(prompt)
                scores[(name, kind)].add(result.labels, result.objects, instances, categories)
            if name in ("default", "previous"):
                for draw, prompt in enumerate(random_prompts):
                    result = predictor.segment(prompt)
                    random_scores[(name, draw)].add(
                        result.labels, result.objects, instances, categories
                    )
        default = predictors["default"]
        for kind, prompt in prompts.items():
            labels, objects = _nearest_seed(features, default, prompt)
            scores[("1-nn", kind)].add(labels, objects, instances, categories)
        # time per update as the click prompts arrive one by one
        for i in range(1, len(prompts["click"]) + 1):
            started = time.perf_counter()
            default.segment(prompts["click"][:i])
            updates.append(time.perf_counter() - started)
        if images <= (3 if quick else 10):
            sk_updates.append(_sklearn_update(features, prompts["click"], default))
    print(
        f"{images} images of coco_sample128 at {LONG_SIDE} px, instances ≥ {MIN_AREA:.1%} of the "
        f"image, effnet-lite0 features (stages {backbone.stages}; 'previous': {previous.stages}), "
        f"{torch.get_num_threads()} torch threads"
    )
    print(
        "default: threshold graph + border prior + prototype step; spread: label spreading alone; "
        "previous: last stop's default (spreading alone, stages (3, 6), τ 0.8)"
    )
    for (name, kind), score in scores.items():
        print(
            f"salt {name:9s} {kind:8s}  semantic mIoU {100 * score.miou():5.1f}   "
            f"instance mean IoU {100 * np.mean(score.instance_ious):5.1f}"
            f"   ({len(score.instance_ious)} instances)"
        )
    random_miou = {}
    for name in ("default", "previous"):
        values = [100 * random_scores[(name, d)].miou() for d in range(RANDOM_DRAWS)]
        random_miou[name] = (float(np.mean(values)), float(np.std(values)))
        print(
            f"salt {name:9s} random clicks ({RANDOM_DRAWS} draws)  semantic mIoU "
            f"{random_miou[name][0]:5.1f} ± {random_miou[name][1]:.1f}   (draws: "
            f"{', '.join(f'{v:.1f}' for v in values)})"
        )
    grabcut = {}
    if (SHARED / "data" / "grabcut").is_dir():
        grabcut = _grabcut_check(
            {k: predictors[k] for k in ("default", "previous")}, 10 if quick else None
        )
        for name, (interior_iou, random_iou) in grabcut.items():
            print(
                f"salt {name:9s} grabcut (never tuned on), 1 object + 1 background click: object "
                f"IoU {interior_iou:5.1f} (interior clicks)  {random_iou:5.1f} (random clicks)"
            )
    else:
        print("../shared/data/grabcut is absent: no GrabCut check")
    p50 = statistics.median(updates)
    print(
        f"update (segment after each new prompt, default graph): p50 {p50:.3f} s  p95 "
        f"{np.percentile(updates, 95):.3f} s"
    )
    print(
        "scikit-learn LabelSpreading fit on the same features (knn): p50 "
        f"{statistics.median(sk_updates):.3f} s"
    )
    return {
        "miou_click": round(100 * scores[("default", "click")].miou(), 2),
        "miou_scribble": round(100 * scores[("default", "scribble")].miou(), 2),
        "update_p50_s": round(p50, 4),
        "instance_iou_click": round(
            100 * float(np.mean(scores[("default", "click")].instance_ious)), 2
        ),
        **{
            f"miou_{kind}_{name}": round(100 * s.miou(), 2)
            for (name, kind), s in scores.items()
            if name != "default"
        },
        "miou_random_click": round(random_miou["default"][0], 2),
        "miou_random_click_sd": round(random_miou["default"][1], 2),
        "miou_random_click_previous": round(random_miou["previous"][0], 2),
        **{
            f"grabcut_object_iou{'' if name == 'default' else '_' + name}": round(v[0], 2)
            for name, v in grabcut.items()
        },
        **{
            f"grabcut_object_iou_random{'' if name == 'default' else '_' + name}": round(v[1], 2)
            for name, v in grabcut.items()
        },
        "sklearn_update_p50_s": round(statistics.median(sk_updates), 4),
        "images": images,
    }


def _grabcut_check(predictors: dict[str, Any], limit: int | None) -> dict[str, tuple[float, float]]:
    """Object IoU (interior clicks, random clicks) per predictor on GrabCut, 1 fg + 1 bg click,
    placed by the same ``_prompts`` / ``_random_clicks`` as on COCO."""
    from inference.evaluation.datasets import load_dataset
    from inference.evaluation.metrics import iou

    unknown = 2  # the boundary band: in neither region, and left out of the IoU
    rng = np.random.default_rng(0)
    ious: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in predictors}
    for sample in load_dataset(SHARED / "data" / "grabcut", limit=limit):
        labels = sample.gt.astype(np.uint8)
        if sample.ignore is not None:
            labels[sample.ignore] = unknown
        image, labels = _resized(sample.image, labels)
        prompts = (_prompts(labels, {1: 1}, "click"), _random_clicks(labels, {1: 1}, rng))
        for name, predictor in predictors.items():
            predictor.set_image(image)
            for out, prompt in zip(ious[name], prompts):
                result = predictor.segment(prompt)
                pred = result.labels == result.objects.index((1, 1)) + 1
                out.append(iou(pred, labels == 1, ignore=labels == unknown))
    return {
        name: (100 * float(np.mean(a)), 100 * float(np.mean(b))) for name, (a, b) in ious.items()
    }


def _sklearn_update(features: torch.Tensor, prompts, predictor) -> float:
    """Seconds for one scikit-learn LabelSpreading fit (graph + spreading) on cached features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelSpreading

    seeds, _ = predictor.seed_cells(prompts)
    x = torch.nn.functional.normalize(features.reshape(features.shape[0], -1).T, dim=1).numpy()
    with warnings.catch_warnings():
        # a timing peer with a fixed budget of 100 iterations; that it has not converged by then
        # is expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99, max_iter=100).fit(x, seeds)
        return time.perf_counter() - started


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(quick=True)))
