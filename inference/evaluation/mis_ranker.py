"""Fit the learned MIS proposal ranker (:mod:`inference.methods.mis.ranker`).

``python -m inference.evaluation.mis_ranker --data ../shared/data --out
inference/methods/mis/ranker.npz`` builds, once, a merge tree per image of coco_sample128
(effnet-lite0, as the ``mis`` job and ``maskwright bench mis`` do) and caches, per image, the
tree, the patch-grid colour and features, the candidates the job ranks (:func:`candidates`) and
their IoU (at ¼ size, as the bench measures it) with every instance. A logistic regression
(target: IoU ≥ 0.5 with some instance) is then fitted on the even-indexed images only; the
variant (feature subset, regularisation) is chosen by the top-10 precision of a 4-fold
cross-validation over those images. The odd images are only scored in the printout with
``--confirm``. Seeded, CPU, a few minutes once the cache exists.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..methods.mis.ranker import FEATURE_NAMES, LearnedRanker, grid_rgb, proposal_features
from ..methods.mis.ranking import rank_by_scores
from ..methods.mis.tree import MergeTree

CACHE = Path("/tmp/mis-ranker-cache")
MIN_FRACTION = 0.01  # the mis job's default
DRAWS = 50
POSITIVE_IOU = 0.5
TOP_K = (5, 10, 20)
RECALL_MIN_AREA = 1000  # pixels at full size, as the bench counts them

TREE_ONLY = tuple(n for n in FEATURE_NAMES if not n.endswith("_contrast"))
LINEAR_AREA = tuple(n for n in FEATURE_NAMES if n != "log_area_sq")
VARIANTS: dict[str, tuple[str, ...]] = {
    "tree+shape": TREE_ONLY,
    "tree+shape+colour": (*TREE_ONLY, "colour_contrast"),
    "all-linear-area": LINEAR_AREA,
    "all": FEATURE_NAMES,
}
C_VALUES = (0.01, 0.1, 1.0)


@dataclass
class ImageRecord:
    """One image's cached candidates: ``table`` (N, F) features, ``ious`` (N, instances),
    ``large`` (instances,) bool (≥ 1000 px), ``persistence`` (N,), ``patches`` (N, h, w)."""

    table: np.ndarray
    ious: np.ndarray
    large: np.ndarray
    persistence: np.ndarray
    patches: np.ndarray

    @property
    def target(self) -> np.ndarray:
        if not self.ious.shape[1]:
            return np.zeros(len(self.ious), bool)
        return np.asarray(self.ious.max(1) >= POSITIVE_IOU)


def candidates(tree: MergeTree, *, seed: int = 0) -> list[int]:
    """The nodes the ``mis`` job ranks with its defaults (see :func:`..jobs.ranked_nodes`)."""
    from ..methods.mis.batch import proposal_nodes

    return sorted(
        node
        for node in proposal_nodes(tree, draws=DRAWS, seed=seed)
        if tree.sizes[node] >= MIN_FRACTION * tree.n_leaves
    )


def instance_ious(
    tree: MergeTree, nodes: list[int], gt: np.ndarray, object_ids: list[int]
) -> np.ndarray:
    """(N, instances) float64: IoU of each node's mask with each instance of the int ``gt``
    map, at a quarter of its size (as ``maskwright bench mis`` measures)."""
    from PIL import Image

    from ..methods.mis.batch import node_mask

    small = (max(1, gt.shape[0] // 4), max(1, gt.shape[1] // 4))
    gt_small = np.asarray(Image.fromarray(gt).resize(small[::-1], Image.Resampling.NEAREST))
    masks = np.stack([node_mask(tree, int(p), small) for p in nodes]).reshape(len(nodes), -1)
    areas = masks.sum(1)
    out = np.zeros((len(nodes), len(object_ids)))
    for j, obj in enumerate(object_ids):
        target = (gt_small == obj).reshape(-1)
        if not target.any():  # an object smaller than a quarter-size pixel
            first = np.minimum(np.argwhere(gt == obj)[0] // 4, np.array(small) - 1)
            target[np.ravel_multi_index(tuple(first), small)] = True
        inter = masks[:, target].sum(1)
        out[:, j] = inter / np.maximum(areas + target.sum() - inter, 1)
    return out


def build_cache(
    data: Path,
    cache: Path = CACHE,
    *,
    limit: int | None = None,
    backbone_name: str = "effnet-lite0",
) -> list[Path]:
    """One ``<cache>/<index>.npz`` per image of ``<data>/coco_sample128`` (skipped when it
    exists; delete the folder after changing the backbone or the candidates); returns the
    files in dataset order."""
    import torch

    from ..backbones import build_backbone
    from ..methods.mis.predictor import build_tree
    from .datasets import CocoDataset

    annotations = data / "coco_sample128" / "annotations" / "instances_train2017.json"
    dataset = CocoDataset(annotations, protocol="multi", limit=limit)
    cache.mkdir(parents=True, exist_ok=True)
    backbone = None
    paths = []
    for index in range(len(dataset)):
        path = cache / f"{index:03d}.npz"
        paths.append(path)
        if path.exists():
            continue
        sample = dataset[index]
        backbone = backbone or build_backbone(backbone_name)
        with torch.inference_mode():
            features = backbone.features(sample.image)
        tree = build_tree(features)
        assert tree.costs is not None  # build_tree keeps the merge costs
        nodes = candidates(tree)
        objects = sample.object_ids
        large = [(sample.gt == obj).sum() >= RECALL_MIN_AREA for obj in objects]
        partial = path.with_suffix(".tmp.npz")
        np.savez(
            partial,
            children=tree.children,
            costs=tree.costs,
            grid_hw=np.array(tree.grid_hw),
            rgb=grid_rgb(sample.image, tree.grid_hw),
            features=features.numpy().astype(np.float16),
            nodes=np.array(nodes, np.int64),
            ious=instance_ious(tree, nodes, sample.gt, objects),
            large=np.array(large, bool),
        )
        partial.replace(path)
        print(f"cached {index + 1}/{len(dataset)} {sample.name}", flush=True)
    return paths


def load_record(path: Path) -> ImageRecord:
    """The features, IoUs and patch masks of one cached image."""
    with np.load(path) as data:
        grid_h, grid_w = (int(v) for v in data["grid_hw"])
        tree = MergeTree(data["children"], (grid_h, grid_w), data["costs"])
        nodes = data["nodes"]
        table = proposal_features(
            tree, nodes, rgb=data["rgb"], features=data["features"].astype(np.float32)
        )
        return ImageRecord(
            table=table,
            ious=data["ious"],
            large=data["large"],
            persistence=table[:, FEATURE_NAMES.index("persistence")],
            patches=np.stack([tree.patch_mask(int(v)) for v in nodes]),
        )


def fit(
    records: list[ImageRecord], names: tuple[str, ...], c: float, *, seed: int = 0
) -> LearnedRanker:
    """Logistic regression on the candidates of ``records`` (balanced classes)."""
    from sklearn.linear_model import LogisticRegression

    columns = [FEATURE_NAMES.index(n) for n in names]
    x = np.concatenate([r.table[:, columns] for r in records])
    y = np.concatenate([r.target for r in records])
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-9)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit((x - mean) / scale, y)
    return LearnedRanker(names, mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))


def top_of_list(records: list[ImageRecord], scorer: str | LearnedRanker) -> dict[str, float]:
    """Top-k precision (k = 5, 10, 20) and recall@10 of each image's list as ranked by
    ``scorer``: a :class:`LearnedRanker`, ``"rule"`` (:func:`..ranking.rank`) or
    ``"persistence"`` (no duplicate removal, as the job's former order)."""
    from ..methods.mis.ranking import rank

    values: dict[str, list[float]] = {f"top{k}": [] for k in TOP_K}
    values["recall10"] = []
    for r in records:
        if scorer == "persistence":
            order = list(np.lexsort((np.arange(len(r.persistence)), -r.persistence)))
        elif scorer == "rule":
            order = [i for i, _ in rank(r.patches, r.persistence)]
        else:
            assert isinstance(scorer, LearnedRanker)
            order = [i for i, _ in rank_by_scores(r.patches, scorer.scores(r.table))]
        if not order:
            continue
        best = r.ious[order].max(1) if r.ious.shape[1] else np.zeros(len(order))
        for k in TOP_K:
            values[f"top{k}"].append(float(np.mean(best[:k] >= POSITIVE_IOU)))
        if r.ious.shape[1]:
            hit = r.ious[order[:10]][:, r.large].max(0) >= POSITIVE_IOU
            values["recall10"].extend(hit.astype(float).tolist())
    return {key: float(np.mean(v)) if v else 0.0 for key, v in values.items()}


def _folds(count: int, folds: int, seed: int) -> Iterator[tuple[list[int], list[int]]]:
    order = np.random.default_rng(seed).permutation(count)
    for f in range(folds):
        held = sorted(order[f::folds].tolist())
        yield [i for i in range(count) if i not in held], held


def choose(
    records: list[ImageRecord], *, folds: int = 4, seed: int = 0
) -> tuple[str, float, dict[str, float]]:
    """(variant, C, cross-validated top-10 precision per ``variant/C``) over ``records``."""
    results: dict[str, float] = {}
    for variant, names in VARIANTS.items():
        for c in C_VALUES:
            precisions = []
            for train, held in _folds(len(records), folds, seed):
                if len({bool(v) for i in train for v in records[i].target}) < 2:
                    continue  # a tiny set's fold without positives (or negatives): no fit
                ranker = fit([records[i] for i in train], names, c, seed=seed)
                precisions.append(top_of_list([records[i] for i in held], ranker)["top10"])
            results[f"{variant}/{c:g}"] = float(np.mean(precisions)) if precisions else 0.0
    best = max(results, key=lambda k: (results[k], k))
    variant, c_text = best.split("/")
    return variant, float(c_text), results


def _line(name: str, m: dict[str, float], base: dict[str, float]) -> str:
    ratio = m["top10"] / base["top10"] if base["top10"] else float("nan")
    return (
        f"{name:12s} top5 {m['top5']:.3f} top10 {m['top10']:.3f} top20 {m['top20']:.3f} "
        f"recall@10 {m['recall10']:.3f}  top10 ÷ persistence {ratio:.2f}×"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.evaluation.mis_ranker")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=None, help="where to save the ranker .npz")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--backbone", default="effnet-lite0", help="as the mis job's default")
    parser.add_argument("--limit", type=int, default=None, help="first images only (tests)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--confirm", action="store_true", help="also print the odd half")
    args = parser.parse_args(argv)
    paths = build_cache(args.data, args.cache, limit=args.limit, backbone_name=args.backbone)
    records = [load_record(p) for p in paths]
    even, odd = records[0::2], records[1::2]
    variant, c, results = choose(even, folds=args.folds, seed=args.seed)
    for key, value in sorted(results.items(), key=lambda kv: -kv[1]):
        print(f"cv (even) {key:24s} top10 {value:.3f}")
    ranker = fit(even, VARIANTS[variant], c, seed=args.seed)
    print(
        f"chosen: {variant}, C={c:g}; weights "
        + json.dumps(
            {n: round(float(w), 3) for n, w in zip(ranker.names, ranker.coef, strict=True)}
        )
    )
    halves = [("even (fit)", even)] + ([("odd (confirm)", odd)] if args.confirm else [])
    for label, half in halves:
        base = top_of_list(half, "persistence")
        print(f"-- {label}: {len(half)} images")
        for name, scorer in (("learned", ranker), ("rule", "rule"), ("persistence", "persistence")):
            print(_line(name, top_of_list(half, scorer), base))
    if args.out is not None:
        ranker.save(args.out)
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
