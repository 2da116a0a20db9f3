"""The M2N2 predictor: Markov-map nearest neighbour on a backbone's attention (Karmann &
Urfalioglu, CVPR 2025), faithful to the official code; hyperparameters default to the paper's.

``set_image`` builds the doubly stochastic transition matrix once (affinity → temperature →
IPF). Each click's distance map (Markov map → joint bilateral upsampling → min-max flood fill)
is cached by its integer pixel, so a new click costs its own map; thresholds and the final
vote are recomputed on every call because the positive and negative sets change.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

from ...backbones import Backbone, build_backbone
from ...backbones.feature_affinity import resize_grid
from ...imaging import joint_bilateral_upsample, refine_band
from ...predictor import Predictor
from ...structures import Click, MaskResult
from .candidates import deepest_click
from .choice import SegmentChoice
from .head import AUTO as HEAD_AUTO
from .head import ClickHead, default_head, load_head
from .markov import change_temperature, markov_maps, matrix_ipf, start_states
from .refine import minmax_flood_fill
from .scorer import DEFAULT_WEIGHTS, image_gradient, load_scorer
from .thresholds import (
    ScoreSwitches,
    nearest_click_labels,
)

DEFAULT_SCORES = ScoreSwitches()  # all four scores on (frozen: one shared default is safe)


class M2N2Predictor(SegmentChoice, Predictor):
    """Click-based single-object segmentation from a backbone's affinity.

    Args:
        backbone: a built :class:`~inference.backbones.Backbone` giving ``affinity``.
        temperature: T of ``softmax(log A / T)`` (0.65).
        ipf_iterations: Sinkhorn steps, no early stop (200).
        markov_threshold: relative threshold τ of the iteration maps (0.3).
        max_steps: iteration cap of the Markov chain (1000).
        interpolate: interpolate crossing times between steps (True).
        jbu_sigma_spatial, jbu_sigma_range: joint bilateral upsampling (1.0, 0.1).
        jbu_max_offsets: offsets visited by the upsampler (see ``joint_bilateral_upsample``).
        max_segment_area: the size prior, fraction of the image (0.4).
        scores: which of the four threshold scores are on (all).
        max_side: the maps, the flood fill and the thresholds work at most at this long side;
            the mask is resized back before the refinement (None = full size). 384: about
            half the per-click cost of full size at 512 px, same NoC within noise.
        refine_band: if > 0, re-decide a band of this many pixels around the mask's boundary
            with a colour graph cut at full resolution (see ``boundary.py``). Not in the
            paper: 0 gives the official pipeline (NoC@85/90 ≈ 4.4/6.0 on 8 GrabCut images).
        refine_iterations: GrabCut iterations of the refinement (1: 3 gave the same IoU at
            twice the cost). refine_margin: crop the refinement to the band's box plus this
            margin (None: the whole image). 96 px measured NoC@85/90 2.94/3.82, against
            2.98/3.86 on the whole image and 3.16/3.86 at 48 px, and a later click at 512 px
            0.227 s against 0.240 s.
        map_cache_size: distance maps kept per image (least recently used go first), so that
            objects annotated by turns on one image do not recompute their clicks' maps.
        scorer: weights of the learned segment choice for positive clicks (``scorer.py``;
            the packaged ``scorer.npz``), or None for the paper's hand-set scores.
        head: weights of a click head (``head.py``) whose soft IoU with each candidate is
            averaged with its scorer score, or None. The default, ``"auto"``, is the packaged
            ``head.npz`` on the backbone it was trained on (effnet-lite0, stages 2/4/5) and
            none elsewhere (``head.default_head``); measured in ``head.py``. Used only with a
            scorer, and only where the grid features are as wide as the head reads.
        snap: move a learned choice to the paper's best edge between its neighbouring
            candidates (see ``_snap``).
        num_candidates: masks an answer to a lone click ranks (``MaskResult.candidates``,
            best first; the annotator cycles them with Tab). 1: none.
        prior_edges: with a prior mask, the band cut re-decides the edges of the whole mask,
            the prior's own included (False: only where the clicks decide). ``maskwright eval
            --prior``, 5 clicks, NoC@85/90: a prior dilated 6 % of √area (coarse) 1.28/1.68
            against 3.80/4.68 on GrabCut's odd half, 1.98/3.16 against 3.70/4.50 on
            coco_mval_dev100's (even halves: 1.56/1.68 against 4.60/4.84, 2.10/3.10 against
            3.23/4.47); a prior missing its lower 40 % (part) about the same either way (odd
            halves 1.52/1.84 against 1.32/1.84, 2.40/3.16 against 2.48/2.86).

    Defaults measured on all 50 GrabCut images with effnet-lite0 (grid 48), RITM clicker:
    NoC@85/90 2.98/3.86 (band 12, whole image) against 3.08/3.90 (band 8) and 3.18/3.74
    (band 16); 2.94/3.82 with band 12 and margin 96 (the default).
    """

    reads_prior = True  # see _predict_prior

    def __init__(
        self,
        backbone: Backbone,
        *,
        temperature: float = 0.65,
        ipf_iterations: int = 200,
        markov_threshold: float = 0.3,
        max_steps: int = 1000,
        interpolate: bool = True,
        jbu_sigma_spatial: float = 1.0,
        jbu_sigma_range: float = 0.1,
        jbu_max_offsets: int = 441,
        max_segment_area: float = 0.4,
        scores: ScoreSwitches = DEFAULT_SCORES,
        max_side: int | None = 384,
        refine_band: int = 12,
        refine_iterations: int = 1,
        refine_margin: int | None = 96,
        map_cache_size: int = 128,
        scorer: str | None = str(DEFAULT_WEIGHTS),
        head: str | None = HEAD_AUTO,
        num_candidates: int = 3,
        snap: bool = True,
        prior_edges: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.device = backbone.device
        self.prior_edges = prior_edges
        self.temperature = temperature
        self.ipf_iterations = ipf_iterations
        self.markov_threshold = markov_threshold
        self.max_steps = max_steps
        self.interpolate = interpolate
        self.jbu_sigma_spatial = jbu_sigma_spatial
        self.jbu_sigma_range = jbu_sigma_range
        self.jbu_max_offsets = jbu_max_offsets
        self.max_segment_area = max_segment_area
        self.scores = scores
        self.max_side = max_side
        self.refine_band = refine_band
        self.refine_iterations = refine_iterations
        self.refine_margin = refine_margin
        self.map_cache_size = map_cache_size
        self.scorer = None if scorer is None else load_scorer(str(scorer))
        if head == HEAD_AUTO:
            head = default_head(backbone)
        self.head: ClickHead | None = None if head is None or scorer is None else load_head(head)
        self._grid_features: torch.Tensor | None = None  # (C, h, w) from the affinity
        self._cells: tuple[torch.Tensor, torch.Tensor] | None = None  # grid features, colours
        self._walks: dict[tuple[int, int], torch.Tensor] = {}
        self.num_candidates = max(1, num_candidates)
        self.snap = snap
        self._image_grad: torch.Tensor | None = None
        self._image: np.ndarray | None = None
        self._transition: torch.Tensor | None = None
        self._grid_hw: tuple[int, int] = (0, 0)
        self._guide: torch.Tensor | None = None
        self._work_hw: tuple[int, int] = (0, 0)
        self._maps: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        # per click and label: (candidate thresholds, their score before the pos / neg factors,
        # map max), see threshold_candidates and scorer.candidate_features
        self._candidates: dict[
            tuple[int, int, bool | None], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
        ] = {}
        self.timings: dict[str, float] = {}

    # -- per image ---------------------------------------------------------------------
    @torch.inference_mode()
    def _set_image(self, image: np.ndarray) -> None:
        started = time.perf_counter()
        affinity = self.backbone.affinity(image)
        t_backbone = time.perf_counter()
        transition = change_temperature(
            affinity.matrix.to(self.device, torch.float32), self.temperature
        )
        self._transition = matrix_ipf(transition, self.ipf_iterations)
        self._grid_hw = affinity.grid_hw
        self._grid_features = affinity.features  # the click head's, made cells on first use
        self._cells = None
        self._walks = {}
        work = image
        height, width = image.shape[:2]
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        self._work_hw = work.shape[:2]
        self._image = image
        self._guide = (
            torch.from_numpy(np.array(work, copy=True))
            .to(self.device)
            .permute(2, 0, 1)
            .float()
            .div_(255)
        )
        self._image_grad = image_gradient(self._guide) if self.scorer is not None else None
        self._maps.clear()
        self._candidates = {}
        done = time.perf_counter()
        self.timings = {
            "backbone": t_backbone - started,
            "transition": done - t_backbone,
            "set_image": done - started,
        }

    def reset(self) -> None:
        super().reset()
        self._transition = None
        self._guide = None
        self._image = None
        self._image_grad = None
        self._maps.clear()
        self._candidates = {}
        self._grid_features = None
        self._cells = None
        self._walks = {}

    @torch.inference_mode()
    def grid_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The image's (N, C) grid features and (N, 3) cell colours in [0, 1] (for the click
        head and its training); only on a backbone that gives its features (EfficientNet)."""
        if self._cells is None:
            features = self._grid_features
            if features is None or self._image is None:
                raise RuntimeError("no grid features: set_image first, on an EfficientNet backbone")
            # a copy: the caller's image may be read-only, which torch warns about
            rgb = torch.from_numpy(np.array(self._image, copy=True)).to(self.device)
            colour = resize_grid(rgb.permute(2, 0, 1).float() / 255.0, self._grid_hw)
            self._cells = (
                features.to(self.device).reshape(features.shape[0], -1).T.float(),
                colour.reshape(3, -1).T,
            )
        return self._cells

    def walk_map(self, key: tuple[int, int]) -> torch.Tensor:
        """(N,) the Markov crossing times on the grid of a click at working pixel ``key``."""
        if key not in self._walks:
            self._distance_maps([key])
        return self._walks[key]

    def distance_map(self, click: Click) -> tuple[torch.Tensor, tuple[int, int]]:
        """The click's (h, w) float32 distance map in [0, 1] at the working resolution and its
        (x, y) there (for analysis and the scorer's training; cached like ``predict``'s)."""
        key = self._work_coords(click)
        self._distance_maps([key])
        return self._maps[key], key

    # -- per click -----------------------------------------------------------------------
    def _work_coords(self, click: Click) -> tuple[int, int]:
        """Integer (x, y) of a click at the working resolution (the cache key)."""
        height, width = self.image_size
        wh, ww = self._work_hw
        x = min(ww - 1, max(0, round(click.x * ww / width)))
        y = min(wh - 1, max(0, round(click.y * wh / height)))
        return x, y

    def _distance_maps(self, keys: list[tuple[int, int]]) -> None:
        """Compute and cache the maps of clicks not seen yet, in one batch."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._maps]
        if not missing:
            return
        wh, ww = self._work_hw
        assert self._transition is not None and self._guide is not None  # set by _set_image
        points = torch.tensor(missing, dtype=torch.float32, device=self.device)
        starts = start_states(points, (wh, ww), self._grid_hw)
        iters = markov_maps(
            self._transition, starts, self.markov_threshold, self.max_steps, self.interpolate
        )
        for key, walk in zip(missing, iters):
            self._walks[key] = walk
        low = iters.view(len(missing), *self._grid_hw)
        dense = joint_bilateral_upsample(
            low, self._guide, self.jbu_sigma_spatial, self.jbu_sigma_range, self.jbu_max_offsets
        )
        for (x, y), upsampled in zip(missing, dense):
            values = (upsampled / upsampled.max().clamp_min(1e-12)).cpu().numpy()
            filled = minmax_flood_fill(values, (y, x))
            top = filled.max()
            dist = torch.from_numpy(filled / top if top > 0 else filled).float().to(self.device)
            self._maps[(x, y)] = dist

    def _predict(self, clicks: list[Click]) -> MaskResult:
        return self._segment(clicks, None)

    def _predict_prior(self, clicks: list[Click], prior: np.ndarray) -> MaskResult:
        # What the clicks decide (each click's segment, nearest click wins) replaces the prior
        # there; elsewhere the prior stays: a positive click adds the region it lands in, a
        # negative one cuts its region out, the rest of an imported mask is kept, its edges
        # re-decided by the band cut (prior_edges: a coarse import leaks by a thin band that
        # clicks alone fix slowly).
        # The prior speaks in the vote through a positive click at its deepest pixel, whose own
        # pixels keep the prior's value: without it a lone negative click's segment, contested
        # by no positive, swallowed the object (GrabCut half 0, 12 images, a prior 6 % too big:
        # IoU 0.766 before the click, 0.507 after it).
        return self._segment(clicks, prior)

    @torch.inference_mode()
    def _segment(self, clicks: list[Click], prior: np.ndarray | None) -> MaskResult:
        started = time.perf_counter()
        height, width = self.image_size
        if not clicks or (prior is None and not any(c.positive for c in clicks)):
            empty = np.zeros((height, width), dtype=bool) if prior is None else prior.copy()
            return MaskResult(mask=empty, timings={"predict": 0.0})
        real = len(clicks)
        anchor = deepest_click(prior) if prior is not None else None
        if anchor is not None:
            clicks = [*clicks, anchor]
        keys = [self._work_coords(c) for c in clicks]
        self._distance_maps(keys)
        t_maps = time.perf_counter()
        # The official cache evicts every map the last call did not use. Here the maps of the
        # image's other objects stay too (several objects are annotated by turns on one image,
        # and each map costs a Markov chain): least recently used first, beyond
        # ``map_cache_size`` maps (≈ 0.4 MiB each at 384 px).
        used = set(keys)
        for key in keys:
            self._maps.move_to_end(key)
        for stale in [k for k in self._maps if k not in used][
            : max(0, len(self._maps) - self.map_cache_size)
        ]:
            del self._maps[stale]
            self._walks.pop(stale, None)
            for kind in (False, True, None):
                self._candidates.pop((*stale, kind), None)
        distances = torch.stack([self._maps[k] for k in keys])
        labels = torch.tensor([c.positive for c in clicks], device=self.device)
        yx = torch.tensor([(y, x) for x, y in keys], device=self.device)
        at_clicks = distances[:, yx[:, 0], yx[:, 1]]  # (P, P): map of i at click j
        choices: list[list[tuple[float, float | None]]] = []
        scored = any((self.scores.prior, self.scores.edge, self.scores.pos, self.scores.neg))
        for i, key in enumerate(keys):
            same = labels == labels[i]
            if not scored:
                choices.append([(0.5, None)])
                continue
            # Alternatives for a lone click only, as SAM's predictors do: one click is what is
            # ambiguous (the cup or the saucer?); later clicks say which, and three refined
            # masks per click would double its cost (0.58 s against 0.29 s p50 on GrabCut).
            count = self.num_candidates if real == 1 else 1
            choices.append(
                self._threshold(key, bool(labels[i]), distances[i], at_clicks[i], same, count)
            )
        thresholds = [c[0][0] for c in choices]
        # The last positive click's runners-up give the alternatives an annotator can cycle
        # through: the same vote with that click's segment swapped for another candidate.
        last = max((i for i, c in enumerate(clicks[:real]) if c.positive), default=real - 1)
        variants = [(thresholds, choices[last][0][1])]
        for threshold, predicted in choices[last][1:]:
            variants.append(([*thresholds[:last], threshold, *thresholds[last + 1 :]], predicted))
        masks = []
        t_mask = t_refine = 0.0
        for variant, predicted in variants:
            began = time.perf_counter()
            mask_np, decided = self._vote(distances, variant, labels, yx, real)
            if prior is not None:
                mask_np = np.where(decided, mask_np, prior)
            refining = time.perf_counter()
            refined = self._refine(mask_np, clicks[:real])
            if prior is not None and not self.prior_edges:
                refined = np.where(decided, refined, prior)  # new edges only, not the prior's
            masks.append((refined, predicted))
            t_mask += refining - began
            t_refine += time.perf_counter() - refining
        done = time.perf_counter()
        timings = {"maps": t_maps - started, "mask": t_mask, "refine": t_refine}
        best, score = masks[0]
        return MaskResult(
            mask=best,
            score=score,
            timings={**timings, "predict": done - started},
            candidates=([MaskResult(mask=m, score=p) for m, p in masks] if len(masks) > 1 else []),
        )

    def _vote(
        self,
        distances: torch.Tensor,
        thresholds: list[float],
        labels: torch.Tensor,
        yx: torch.Tensor,
        deciding: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The truncated nearest-neighbour vote and the pixels decided by the first
        ``deciding`` clicks (all by default), (H, W) bool each at the image's size."""
        height, width = self.image_size
        mask, decided = nearest_click_labels(
            distances, torch.tensor(thresholds, device=self.device), labels, yx, deciding
        )

        def full_size(field: torch.Tensor) -> np.ndarray:
            field_np = field.cpu().numpy()
            if field_np.shape == (height, width):
                return field_np
            resized = Image.fromarray(field_np).resize((width, height), Image.Resampling.NEAREST)
            return np.asarray(resized)

        return full_size(mask), full_size(decided)

    def _refine(self, mask: np.ndarray, clicks: list[Click]) -> np.ndarray:
        """The colour graph cut on the boundary band (identity with ``refine_band`` 0)."""
        if self.refine_band > 0:
            assert self._image is not None
            seeds = [(round(c.y), round(c.x), c.positive) for c in clicks]
            mask = refine_band(
                self._image,
                mask,
                seeds,
                band=self.refine_band,
                iterations=self.refine_iterations,
                margin=self.refine_margin,
            )
        return mask.astype(bool)


# M2N2's features on the EfficientNet-Lite backbones: stage 5 (stride 32, 192 channels) beside
# stages 2 and 4 (the backbone's default). On coco_mval_dev100's first half the best first-click
# segment among the prefixes of the map averaged IoU 0.713 against 0.678, on GrabCut's 0.790
# against 0.791 (stages 3+4: 0.698; a 64-cell grid: 0.717 at five times the Markov cost).
EFFNET_STAGES = (2, 4, 5)


def build_m2n2(
    device: str = "cpu",
    backbone: str | Backbone = "effnet-lite0",
    backbone_options: dict[str, object] | None = None,
    **kwargs,
) -> M2N2Predictor:
    """M2N2 on a backbone given by name (``effnet-lite0`` offline default) or instance;
    ``backbone_options`` go to the backbone's builder (an EfficientNet-Lite gets
    :data:`EFFNET_STAGES` unless they name ``stages``)."""
    if isinstance(backbone, str):
        options = dict(backbone_options or {})
        if backbone.startswith("effnet-lite"):
            options.setdefault("stages", EFFNET_STAGES)
        if "stages" in options:
            options["stages"] = tuple(options["stages"])  # type: ignore[arg-type]
        backbone = build_backbone(backbone, device=device, **options)
    return M2N2Predictor(backbone, **kwargs)
