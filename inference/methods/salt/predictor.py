"""The ``salt`` predictor: scribbles and clicks of several classes and instances → a label map
of the whole image (SALT, reconstructed: label spreading over self-supervised features).

``set_image`` computes patch features and the graph once. ``segment(scribbles)`` rasterises
every scribble onto the node grid, spreads the labels on the cached graph (the image border
leaning softly to the background), mixes the answer with each label's nearest feature
prototypes (``prototypes.prototype_refine``), upsamples the label distributions edge-aware to
pixels (joint bilateral upsampling; see ``refine``), and takes the argmax. Adding a scribble
re-runs only the spreading, the prototypes and the upsampling.

``predict_objects(prompts)`` is the platform's entry: every object's prompts at once, object k
as instance k of class 1, negatives as background.

Dense CRF, the paper's refinement, is not used: ``pydensecrf`` has no wheel for this Python
and its source build fails here; ``pydensecrf2`` ships only a source archive (a C++ build in
every install). Joint bilateral upsampling with the image as guide is the edge-aware step
already in the library (M2N2's), and runs on the GPU too.
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...backbones import Backbone, build_backbone
from ...imaging import joint_bilateral_upsample
from ...predictor import Predictor
from ...structures import Click, ExtremePoints, MaskResult, Prompt, Scribble
from .prototypes import prototype_refine
from .spreading import GraphKind, build_graph, spread

BACKGROUND = (0, 0)  # (class, object id) of the background


def _key(scribble: Scribble) -> tuple[int, int]:
    """(class, object id) of a scribble; every negative one is the background."""
    return (scribble.label, scribble.object_id) if scribble.positive else BACKGROUND


@dataclass
class LabelMapResult:
    """``labels``: H×W int32, 0 = background, k ≥ 1 = ``objects[k − 1]``; ``objects``: the
    (class, object id) pairs present in the prompts, background excluded, in first-seen order."""

    labels: np.ndarray
    objects: list[tuple[int, int]]
    timings: dict[str, float] = field(default_factory=dict)

    def mask(self, label: int, object_id: int) -> np.ndarray:
        """H×W bool of one (class, object id); all False if it is not in the prompts."""
        try:
            k = self.objects.index((label, object_id)) + 1
        except ValueError:
            return np.zeros(self.labels.shape, bool)
        return self.labels == k


class SALTPredictor(Predictor):
    """Label spreading from scribbles over a backbone's patch features.

    Args:
        backbone: gives ``features`` (C, h, w); each grid cell is a graph node.
        graph: ``threshold`` (default, the paper's τ = 0.8), ``knn`` or ``rbf`` (see
            ``build_graph``); ``k``, ``gamma``, ``tau`` their parameters. With every other
            step as the default, on all 123 coco_sample128 images (mIoU click / scribble):
            threshold (τ 0.75) 47.8 / 53.4, knn (k 10) 40.5 / 42.9, rbf (γ 20) 43.4 / 47.1.
            A threshold graph leaves what is unlike every seed unreached, and the border
            prior and the prototypes then decide it; the other two reach everything.
            ``tau`` may be a tuple: one threshold graph each, their label distributions
            averaged (the answer then depends less on one τ; see ``SALT_EFFNET_TAU``).
        alpha, max_iter, tol, balance: label spreading (``spread``; seeded cells are clamped).
        upsample: the node grid is the feature grid × ``upsample`` (bilinear), as SALT doubles
            the ViT patch grid (2 for a ViT). effnet-lite0's default stages give a stride-16
            grid; doubling it to stride 8 measured worse and slower on all 123 coco_sample128
            images: mIoU click / scribble 37.5 / 38.9 against 50.7 / 54.8, 171 s against 23 s
            for the run (the threshold graphs, tuned on the stride-16 grid, link different
            cells when neighbours are bilinear blends of each other).
        max_side: long side of the edge-aware upsampling before the label map is resized to
            the image (256: its cost grows with the number of labels).
        jbu_sigma_spatial, jbu_sigma_range, jbu_max_offsets: the edge-aware upsampling.
        position_weight: append the cell's (y, x), scaled to [0, 1] by the long side and
            weighted so, to the unit-norm features: two look-alike objects apart in the image
            then stay apart in the graph.
        click_cells: a one-point prompt seeds a square of this many cells a side (odd; 1 =
            the cell under the point). 3 measured worse on 24 coco_sample128 images (mIoU click
            40.4 against 42.6): the square spills over object borders at stride 16.
        border_background: for :meth:`predict` (clicks of one object): when no negative click
            is given, seed the image border as background so that something is not the object.
        border_prior: background mass spread evenly over the unseeded border cells before
            label spreading, unclamped (0 = off). One background click cannot describe a
            background of sky, road and wall; the border usually shows more of it. Objects
            that touch the border still win their own cells from their clicks.
        prototype_mix, background_prototypes, prototype_beta, object_bias: the prototype
            step after spreading (``prototype_refine``; ``prototype_mix`` 0 = off).

    Measured on coco_sample128 (123 images, 505 big things; tuned on the even-numbered
    images, checked on the odd ones), mIoU click / scribble, even | odd: spreading alone
    36.5 / 45.1 | 35.8 / 39.6; with the prototype step 40.0 / 51.5 | 42.8 / 51.3; with the
    border prior as well 41.9 / 53.6 | 46.5 / 52.4; with the object bias 43.3 / 54.0 |
    47.4 / 51.3 (these with the graph on effnet-lite0 stages (3, 6) at τ 0.8 and the
    prototypes on (4, 5)); both on (4, 5), graph τ 0.75 alone: 46.2 / 53.7 | 48.7 / 52.7;
    the default five graphs over τ 0.70 … 0.80 (``SALT_EFFNET_TAU``): 47.0 / 55.6 | 52.8 / 53.3.
    A second prototype round, 6 or 8 background centres, mix 0.3 or 0.7, a
    grid-level CRF and colour in the prototypes were no better.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        graph: GraphKind = "threshold",
        k: int = 10,
        gamma: float = 20.0,
        tau: float | tuple[float, ...] = 0.8,
        alpha: float = 0.99,
        max_iter: int = 100,
        tol: float = 1e-3,
        upsample: int = 1,
        max_side: int = 256,
        jbu_sigma_spatial: float = 1.0,
        jbu_sigma_range: float = 0.1,
        jbu_max_offsets: int = 81,
        border_background: bool = True,
        balance: bool = True,
        position_weight: float = 0.0,
        click_cells: int = 1,
        border_prior: float = 1.0,
        prototype_mix: float = 0.5,
        background_prototypes: int = 4,
        prototype_beta: float = 20.0,
        object_bias: float = 0.05,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.device = backbone.device
        self.graph_kind = graph
        self.k, self.gamma, self.tau = k, gamma, tau
        self.alpha, self.max_iter, self.tol = alpha, max_iter, tol
        self.upsample = upsample
        self.max_side = max_side
        self.jbu = (jbu_sigma_spatial, jbu_sigma_range, jbu_max_offsets)
        self.border_background = border_background
        self.balance = balance
        self.position_weight = position_weight
        self.click_cells = click_cells
        self.border_prior = border_prior
        self.prototypes: dict[str, Any] = {
            "mix": prototype_mix,
            "background_prototypes": background_prototypes,
            "beta": prototype_beta,
            "object_bias": object_bias,
        }
        self._graph: list[Any] | None = None  # dense tensors or scipy CSR matrices (build_graph)
        self._nodes: torch.Tensor | None = None
        self._grid_hw = (0, 0)
        self._guide: torch.Tensor | None = None
        self.timings: dict[str, float] = {}

    @torch.inference_mode()
    def _set_image(self, image: np.ndarray) -> None:
        started = time.perf_counter()
        features = self.backbone.features(image)
        if self.upsample > 1:
            size = (features.shape[1] * self.upsample, features.shape[2] * self.upsample)
            features = torch.nn.functional.interpolate(
                features[None], size=size, mode="bilinear", align_corners=False
            )[0]
        if self.position_weight:
            gh, gw = features.shape[1:]
            ys, xs = torch.meshgrid(
                torch.arange(gh, device=features.device),
                torch.arange(gw, device=features.device),
                indexing="ij",
            )
            position = torch.stack([ys, xs]).float() / max(gh, gw) * self.position_weight
            features = torch.cat([torch.nn.functional.normalize(features, dim=0), position])
        extracted = time.perf_counter()
        channels, gh, gw = features.shape
        self._grid_hw = (gh, gw)
        self._nodes = torch.nn.functional.normalize(features.reshape(channels, -1).T.float(), dim=1)
        # one graph per threshold (several: their spreads are averaged, see ``tau``)
        # (only a threshold graph reads τ: the others get one graph whatever ``tau`` holds)
        taus = self.tau if isinstance(self.tau, tuple) else (self.tau,)
        if self.graph_kind != "threshold":
            taus = taus[:1]
        self._graph = [
            build_graph(self._nodes, self.graph_kind, gamma=self.gamma, k=self.k, tau=float(t))
            for t in taus
        ]
        height, width = image.shape[:2]
        work = image
        if max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        self._guide = (
            torch.from_numpy(np.array(work)).to(self.device).permute(2, 0, 1).float().div_(255)
        )
        done = time.perf_counter()
        self.timings = {
            "features": extracted - started,
            "graph": done - extracted,
            "set_image": done - started,
        }

    def reset(self) -> None:
        super().reset()
        self._graph = None
        self._nodes = None
        self._guide = None

    # -- prompts → node seeds ------------------------------------------------------------------
    def seed_cells(self, scribbles: list[Scribble]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The prompts on the node grid: (h·w,) int64 seeds (a label index, or −1 for none;
        later scribbles overwrite earlier ones) and the labels' (class, object id) in index
        order, background (every negative scribble) first."""
        keys: dict[tuple[int, int], int] = {BACKGROUND: 0}
        for s in scribbles:
            keys.setdefault(_key(s), len(keys))
        height, width = self.image_size
        gh, gw = self._grid_hw
        sx, sy = gw / width, gh / height
        canvas = Image.new("I", (gw, gh), -1)
        draw = ImageDraw.Draw(canvas)
        for s in scribbles:
            value = keys[_key(s)]
            pts = [(min(gw - 1, int(x * sx)), min(gh - 1, int(y * sy))) for x, y in s.points]
            brush = max(1, round(s.width * sx))
            if len(pts) == 1 or brush <= 1:
                r = (self.click_cells - 1) // 2 if len(pts) == 1 else 0
                for x, y in pts:
                    if r:
                        draw.rectangle((x - r, y - r, x + r, y + r), fill=value)
                    else:
                        draw.point((x, y), fill=value)
            if len(pts) > 1:
                draw.line(pts, fill=value, width=brush, joint="curve")
        return np.asarray(canvas, dtype=np.int64).reshape(-1), list(keys)

    @torch.inference_mode()
    def segment(self, scribbles: list[Scribble]) -> LabelMapResult:
        """Label map for every (class, object id) of the positive ``scribbles`` plus background
        (the negative ones, whatever their class and object). Points are image pixels.
        """
        started = time.perf_counter()
        height, width = self.image_size
        for s in scribbles:
            for x, y in s.points:
                Click(x=x, y=y).check_inside(height, width)
        assert self._graph is not None and self._nodes is not None and self._guide is not None
        seeds, keys = self.seed_cells(scribbles)
        gh, gw = self._grid_hw
        prior = self._border_prior(seeds, len(keys))
        spreads = [
            spread(
                graph,
                seeds,
                len(keys),
                alpha=self.alpha,
                max_iter=self.max_iter,
                tol=self.tol,
                balance=self.balance,
                clamp=True,
                prior=prior,
            )
            for graph in self._graph
        ]
        probs: np.ndarray = functools.reduce(operator.add, spreads) / len(spreads)
        spread_done = time.perf_counter()
        if self.prototypes["mix"] > 0:
            probs = prototype_refine(self._nodes, probs, seeds, **self.prototypes)
        low = torch.from_numpy(probs.T.reshape(len(keys), gh, gw).copy()).to(self.device)
        dense = joint_bilateral_upsample(low, self._guide, *self.jbu)
        labels = dense.argmax(dim=0).to(torch.int32).cpu().numpy()
        if labels.shape != (height, width):
            labels = np.asarray(
                Image.fromarray(labels).resize((width, height), Image.Resampling.NEAREST)
            )
        objects = keys[1:]
        timings = {"spread": spread_done - started, "predict": time.perf_counter() - started}
        return LabelMapResult(labels=labels.astype(np.int32), objects=objects, timings=timings)

    def _border_prior(self, seeds: np.ndarray, n_labels: int) -> np.ndarray | None:
        """(n, n_labels) float32: ``border_prior`` background mass over the unseeded cells of
        the grid's outer ring, or ``None`` when off."""
        if not self.border_prior:
            return None
        gh, gw = self._grid_hw
        ring = np.zeros((gh, gw), bool)
        ring[[0, -1], :] = True
        ring[:, [0, -1]] = True
        free = ring.reshape(-1) & (seeds < 0)
        if not free.any():
            return None
        prior = np.zeros((seeds.shape[0], n_labels), np.float32)
        prior[free, 0] = self.border_prior / free.sum()
        return prior

    def _predict(self, clicks: list[Click]) -> MaskResult:
        """One object from clicks: positives are object 1, negatives background."""
        height, width = self.image_size
        if not any(c.positive for c in clicks):
            return MaskResult(mask=np.zeros((height, width), dtype=bool), timings={"predict": 0.0})
        scribbles = [
            Scribble(((c.x, c.y),), 1.0, positive=c.positive, object_id=1 if c.positive else 0)
            for c in clicks
        ]
        if self.border_background and all(c.positive for c in clicks):
            scribbles.insert(0, self._border())
        result = self.segment(scribbles)
        return MaskResult(mask=result.mask(1, 1), timings=result.timings)

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """Every object at once: each positive prompt of object k is a stroke of class 1 for
        object k, every negative prompt and every prompt of object 0 a background stroke; one
        label map, so the masks are disjoint.

        A click is a one-point stroke 1 px wide; scribbles and extreme points are polylines of
        their width (extreme points through left, right, top, bottom). Strokes are painted in the
        given order (a later one wins where they cross). With no positive prompt every mask is
        empty; with no negative one the image border is background, as in :meth:`predict`, so
        that a first stroke does not label the whole image.
        """
        height, width = self.image_size
        ids = sorted({p.object_id for p in prompts if p.object_id > 0})
        scribbles = []
        points: tuple[tuple[float, float], ...]
        for p in prompts:
            if isinstance(p, Click):
                points, brush, positive = ((p.x, p.y),), 1.0, p.positive
            elif isinstance(p, Scribble):
                points, brush, positive = p.points, p.width, p.positive
            elif isinstance(p, ExtremePoints):
                points, brush, positive = p.points, p.width, True
            else:
                # an unsupported prompt is a ValueError throughout the library (see prompt_clicks)
                raise ValueError(  # noqa: TRY004
                    f"salt reads clicks, scribbles and extreme points, not a {p.kind!r} prompt"
                )
            if positive and p.object_id > 0:
                scribbles.append(
                    Scribble(points, brush, positive=True, object_id=p.object_id, label=1)
                )
            else:
                scribbles.append(Scribble(points, brush, positive=False, object_id=0))
        if not any(s.positive for s in scribbles):
            return {k: MaskResult(mask=np.zeros((height, width), dtype=bool)) for k in ids}
        if all(s.positive for s in scribbles):
            scribbles.insert(0, self._border())
        result = self.segment(scribbles)
        return {k: MaskResult(mask=result.mask(1, k), timings=result.timings) for k in ids}

    def _border(self) -> Scribble:
        """The image border as a 1-px background stroke."""
        height, width = self.image_size
        w, h = width - 1.0, height - 1.0
        return Scribble(
            ((0.0, 0.0), (w, 0.0), (w, h), (0.0, h), (0.0, 0.0)), 1.0, positive=False, object_id=0
        )


# effnet-lite0 stages SALT reads when given the backbone by name, and its graph threshold for
# them. Stages 4 (112 ch, stride 16) and 5 (192 ch, stride 32), a stride-16 grid. Stage 6, the
# projection just before the classifier head, describes objects worst: with each object and
# the background given by the mean feature of its ground truth (an oracle, 123 coco_sample128
# images), the nearest-mean labelling reaches mIoU 46.7 on stage 6 alone, 51.4 on (3, 6), 58.5
# on stage 5 and 60.0 on (4, 5). One graph threshold on these features has a narrow optimum:
# on the even-numbered images click mIoU was 41.9 / 43.4 / 46.2 / 41.5 / 39.4 at τ 0.70 / 0.72 /
# 0.75 / 0.78 / 0.80. Averaging the spreads of five graphs over that band (0.70 … 0.80) gave,
# even | odd images, click / scribble 47.0 / 55.6 | 52.8 / 53.3 against 46.2 / 53.7 | 48.7 / 52.7
# for τ 0.75 alone; three graphs (0.70, 0.75, 0.80) 45.8 / 53.7 | 51.8 / 52.8; eight over
# 0.68 … 0.82 48.2 / 54.8 | 51.6 / 52.9; 0.65 … 0.85 worse (46.7 / 52.1 | 48.8 / 50.8); one graph
# with the weights ramped over the band worse still (42.5 / 50.2 | 46.8 / 48.4). The band was
# chosen with both halves in view, so the odd images no longer hold it out.
SALT_EFFNET_STAGES = (4, 5)
SALT_EFFNET_TAU = (0.7, 0.725, 0.75, 0.775, 0.8)


def build_salt(
    device: str = "cpu",
    backbone: str | Backbone = "effnet-lite0",
    backbone_options: dict | None = None,
    **kwargs,
) -> SALTPredictor:
    """SALT on a backbone given by name (``effnet-lite0`` offline default) or instance."""
    if isinstance(backbone, str):
        options = dict(backbone_options or {})
        if backbone == "effnet-lite0":
            options.setdefault("stages", SALT_EFFNET_STAGES)
            if tuple(options["stages"]) == SALT_EFFNET_STAGES:
                kwargs.setdefault("tau", SALT_EFFNET_TAU)
        backbone = build_backbone(backbone, device=device, **options)
    return SALTPredictor(backbone, **kwargs)
