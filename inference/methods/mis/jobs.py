"""MIS as a ``proposals`` batch job: a merge tree per image, cut into ranked proposals."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from ...jobs import Proposals
from .batch import node_mask, proposal_nodes
from .predictor import build_tree
from .ranker import LearnedRanker, grid_rgb, load_ranker, proposal_features
from .ranking import RankRule, rank, rank_by_scores
from .tree import MergeTree

# "learned" (the shipped logistic ranker, :mod:`.ranker`) or "rule" (:func:`.ranking.rank`):
# on coco_sample128 the learned one's top-10 precision is 2.73× persistence's on the images it
# was fitted on and 2.67× on the others, against the rule's 2.00× and 1.71×.
DEFAULT_RANKING = "learned"


def ranked_nodes(
    tree: MergeTree,
    *,
    min_fraction: float,
    score_threshold: float,
    draws: int,
    seed: int,
    rule: RankRule | None = None,
    by_persistence: bool = False,
    ranker: LearnedRanker | None = None,
    rgb: np.ndarray | None = None,
    features: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """(node, score) of a tree's proposals, best first: the tree cut at several granularities
    plus ``draws`` samples of the top-down sampler (:func:`proposal_nodes`), without those
    smaller than ``min_fraction`` of the patches or whose persistence is below
    ``score_threshold``; ranked by :func:`.ranking.rank` on the patch grid (``rule``, default
    :class:`RankRule`), or with ``by_persistence`` by persistence alone (the former order, kept
    for comparison), or with ``ranker`` by its scores (``rgb``: the H×W×3 uint8 image,
    ``features``: the (C, h, w) map the tree was built on; the rule's ``duplicate_iou``
    still drops near-duplicates)."""
    nodes = sorted(
        node
        for node in proposal_nodes(tree, draws=draws, seed=seed)
        if tree.sizes[node] >= min_fraction * tree.n_leaves
    )
    persistence = np.array([tree.persistence(node) for node in nodes])
    keep = persistence >= score_threshold
    nodes = [node for node, k in zip(nodes, keep, strict=True) if k]
    persistence = persistence[keep]
    if by_persistence:
        order = np.lexsort((np.arange(len(nodes)), -persistence))
        return [(nodes[i], float(persistence[i])) for i in order]
    if not nodes:
        return []
    patches = np.stack([tree.patch_mask(node) for node in nodes])
    if ranker is not None:
        table = proposal_features(
            tree,
            nodes,
            rgb=None if rgb is None else grid_rgb(rgb, tree.grid_hw),
            features=features,
        )
        duplicate_iou = (rule or RankRule()).duplicate_iou
        ranked = rank_by_scores(patches, ranker.scores(table), duplicate_iou)
        return [(nodes[i], score) for i, score in ranked]
    return [(nodes[i], score) for i, score in rank(patches, persistence, rule)]


def image_proposals(
    model: Any,
    rgb: np.ndarray,
    *,
    min_fraction: float,
    score_threshold: float,
    draws: int,
    seed: int,
    limit: int,
    rule: RankRule | None = None,
    ranker: LearnedRanker | None = None,
) -> list[tuple[np.ndarray, float]]:
    """(H×W bool mask, ranking score) of an image's proposals, best first (see
    :func:`ranked_nodes`; by ``ranker`` when given, else by ``rule``); the ``limit`` best
    (masks are drawn only for those kept)."""
    with torch.inference_mode():
        features = model.features(rgb)
    tree = build_tree(features)
    height, width = rgb.shape[:2]
    out = []
    ranked = ranked_nodes(
        tree,
        min_fraction=min_fraction,
        score_threshold=score_threshold,
        draws=draws,
        seed=seed,
        rule=rule,
        ranker=ranker,
        rgb=rgb,
        features=features.float().cpu().numpy() if ranker is not None else None,
    )
    for node, score in ranked:
        mask = node_mask(tree, node, (height, width))
        if mask.any():
            out.append((mask, round(score, 6)))
        if len(out) >= limit:
            break
    return out


def rank_rule(params: dict[str, Any]) -> RankRule:
    """The :class:`RankRule` of a job's params: each field of the rule that ``params`` names
    (``large_fraction``, ``large_factor``, ``strip_factor``, ``duplicate_iou``), else its
    default."""
    return RankRule(**{f.name: float(params[f.name]) for f in fields(RankRule) if f.name in params})


def proposals(params: dict[str, Any], device: str) -> Proposals:
    """The ``proposals`` entry (see ``inference.jobs``): the backbone is built once."""
    from ...backbones import build_backbone, list_backbones

    name = params["backbone"]
    if name not in list_backbones():
        raise ValueError(f"unknown backbone {name!r} (this worker has {sorted(list_backbones())})")
    model = build_backbone(name, device=device)
    rule = rank_rule(params)
    ranking = params.get("ranking", DEFAULT_RANKING)
    if ranking not in ("learned", "rule"):
        raise ValueError(f"ranking must be 'learned' or 'rule', got {ranking!r}")
    ranker = load_ranker() if ranking == "learned" else None

    def propose(rgb: np.ndarray, seed: int) -> list[tuple[np.ndarray, float]]:
        return image_proposals(
            model,
            rgb,
            min_fraction=params["min_fraction"],
            score_threshold=params["score_threshold"],
            draws=params["draws"],
            seed=seed,
            limit=params["max_per_image"],
            rule=rule,
            ranker=ranker,
        )

    return Proposals(propose=propose, model_name=name)
