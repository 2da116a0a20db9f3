"""MIS as a ``proposals`` batch job: a merge tree per image, cut into scored proposals."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...jobs import Proposals
from .batch import node_mask, proposal_nodes
from .predictor import build_tree


def image_proposals(
    model: Any,
    rgb: np.ndarray,
    *,
    min_fraction: float,
    score_threshold: float,
    draws: int,
    seed: int,
    limit: int,
) -> list[tuple[np.ndarray, float]]:
    """(H×W bool mask, persistence score) of an image's proposals, best first: the tree cut at
    several granularities plus ``draws`` samples of the top-down sampler, without those
    smaller than ``min_fraction`` of the patches or scoring below ``score_threshold``; the
    ``limit`` best (masks are drawn only for those kept)."""
    with torch.inference_mode():
        features = model.features(rgb)
    tree = build_tree(features)
    height, width = rgb.shape[:2]
    scored = []
    for node in proposal_nodes(tree, draws=draws, seed=seed):
        if tree.sizes[node] < min_fraction * tree.n_leaves:
            continue
        score = tree.persistence(node)
        if score >= score_threshold:
            scored.append((score, node))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    out = []
    for score, node in scored:
        mask = node_mask(tree, node, (height, width))
        if mask.any():
            out.append((mask, round(float(score), 4)))
        if len(out) >= limit:
            break
    return out


def proposals(params: dict[str, Any], device: str) -> Proposals:
    """The ``proposals`` entry (see ``inference.jobs``): the backbone is built once."""
    from ...backbones import build_backbone, list_backbones

    name = params["backbone"]
    if name not in list_backbones():
        raise ValueError(f"unknown backbone {name!r} (this worker has {sorted(list_backbones())})")
    model = build_backbone(name, device=device)

    def propose(rgb: np.ndarray, seed: int) -> list[tuple[np.ndarray, float]]:
        return image_proposals(
            model,
            rgb,
            min_fraction=params["min_fraction"],
            score_threshold=params["score_threshold"],
            draws=params["draws"],
            seed=seed,
            limit=params["max_per_image"],
        )

    return Proposals(propose=propose, model_name=name)
