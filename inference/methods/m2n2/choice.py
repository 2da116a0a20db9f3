"""How M2N2 chooses a click's segment among the prefixes of its distance map: the paper's
hand-set scores, or the learned scorer (with the click head), then the snap to the sharpest
edge nearby. A mixin of :class:`~.predictor.M2N2Predictor`, which owns the state it reads."""

from __future__ import annotations

from collections import OrderedDict

import torch

from .candidates import rank_candidates
from .head import ClickHead, click_cell, grid_members, soft_iou
from .scorer import Scorer, candidate_features
from .thresholds import ScoreSwitches, final_scores, pick_threshold, threshold_candidates


class SegmentChoice:
    """``_threshold`` and ``_snap`` for :class:`~.predictor.M2N2Predictor`."""

    # set by the predictor (see its docstring)
    scorer: Scorer | None
    head: ClickHead | None
    snap: bool
    max_segment_area: float
    scores: ScoreSwitches
    _guide: torch.Tensor | None
    _image_grad: torch.Tensor | None
    _grid_features: torch.Tensor | None
    _work_hw: tuple[int, int]
    _grid_hw: tuple[int, int]
    _maps: OrderedDict[tuple[int, int], torch.Tensor]
    _candidates: dict[tuple[int, int, bool | None], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

    def walk_map(self, key: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError  # M2N2Predictor.walk_map

    def grid_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError  # M2N2Predictor.grid_features

    def _learned(
        self, key: tuple[int, int], dist: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A positive click's learned candidates: (K,) thresholds and (K,) float64 predicted
        IoU with the object, the scorer's, averaged with the click head's soft IoU where the
        head reads this backbone's features (their mean ranks as their sum does)."""
        assert self.scorer is not None and self._guide is not None and self._image_grad is not None
        found = candidate_features(dist, self._guide, self._image_grad)
        score = self.scorer(found.features).double()
        head, grid = self.head, self._grid_features
        if head is not None and grid is not None and grid.shape[0] == head.channels:
            features, colour = self.grid_features()
            cell = click_cell(*key, self._work_hw, self._grid_hw)
            probs = head(features, self.walk_map(key), colour, self._grid_hw, cell)
            members = grid_members(dist, found.thresholds, self._grid_hw)
            score = (score + soft_iou(probs, members).double()) / 2
        return found.thresholds, score

    def _threshold(
        self,
        key: tuple[int, int],
        positive: bool,
        dist: torch.Tensor,
        at_clicks: torch.Tensor,
        same: torch.Tensor,
        count: int = 1,
    ) -> list[tuple[float, float | None]]:
        """λ of one click and its runners-up: ``[(threshold, predicted IoU or None), ...]``,
        best first (one entry without a scorer).

        With a scorer, a positive click's candidates are the learned ones (predicted IoU with
        the object) times the pos / neg factors. Negative clicks keep the paper's scores (a
        background region has no "object" to score), and so does a positive click whose
        learned candidates the neg factor rules out (a negative click close by).
        """
        cached = self._candidates.get((*key, positive))
        if cached is None:  # depends on the map alone: once per click
            if positive and self.scorer is not None:
                cached = (*self._learned(key, dist), dist.max())
            else:
                cached = (
                    *threshold_candidates(dist, self.max_segment_area, self.scores),
                    dist.max(),
                )
            self._candidates[(*key, positive)] = cached
        candidates, base, top = cached
        factors = (at_clicks[same], at_clicks[~same], top, self.scores)
        count = count if positive else 1
        if positive and self.scorer is not None:
            score = final_scores(candidates, base, *factors)
            if bool((score > 0).any()):

                def area(i: int) -> int:
                    return int((dist <= candidates[i]).sum())

                ranked = rank_candidates(score, candidates, area, base, count)
                return [(self._snap(key, dist, t, candidates, factors), p) for t, p in ranked]
            candidates, base = threshold_candidates(dist, self.max_segment_area, self.scores)
        if count > 1:  # the paper's scores rank the runners-up too
            sorted_thresholds = candidates  # ascending: prefix i is every pixel <= its value

            def prefix_area(i: int) -> int:
                value = sorted_thresholds[i : i + 1]
                return int(torch.searchsorted(sorted_thresholds, value, right=True))

            ranked = rank_candidates(
                final_scores(candidates, base, *factors), candidates, prefix_area, None, count
            )
            if ranked:
                return ranked
        return [(pick_threshold(candidates, base, *factors), None)]

    def _snap(
        self,
        key: tuple[int, int],
        dist: torch.Tensor,
        chosen: float,
        learned: torch.Tensor,
        factors: tuple,
    ) -> float:
        """Move a learned candidate's threshold to the best of the paper's edge score among
        every prefix between its neighbouring candidates (40 area-spaced candidates are 22 %
        apart in area: too coarse for 90 % IoU). No prior here: the learned choice set the
        scale. If no prefix there scores, the learned threshold stays."""
        if not self.snap:
            return chosen
        cached = self._candidates.get((*key, None))  # None: the edge-only scores
        if cached is None:
            edge_only = ScoreSwitches(prior=False, edge=True, pos=False, neg=False)
            cached = (*threshold_candidates(dist, self.max_segment_area, edge_only), dist.max())
            self._candidates[(*key, None)] = cached
        thresholds, edge, _top = cached
        below, above = learned[learned < chosen], learned[learned > chosen]
        low = float(below.max()) if below.numel() else -1.0
        high = float(above.min()) if above.numel() else float(thresholds[-1])
        start = int(torch.searchsorted(thresholds, torch.tensor([low]), right=True))
        stop = int(torch.searchsorted(thresholds, torch.tensor([high]), right=False))
        if stop <= start:
            return chosen
        window = slice(start, stop)
        score = final_scores(thresholds[window], edge[window], *factors)
        if not bool((score > 0).any()):
            return chosen
        return float(thresholds[window][int(torch.argmax(score))])
