"""The ``dynamite`` predictor: every click on the image at once → one mask per object.

``set_image`` runs the backbone and pixel decoder once and caches everything in the interactive
transformer that does not depend on clicks (level-embedded tokens, positional encodings, the
encoder's key/value projections of image tokens, the decoder's first query projection).
``predict_objects`` re-runs only the interactive transformer on the whole click list (the model
is stateless, spec A2.1) and turns the query logits into non-overlapping masks (spec A1.5).

Prompts are read in the order given, which the model's temporal encoding sees: a positive
prompt of object k is a click of k, a negative one or any prompt of object 0 a background
click; scribbles and extreme points become clicks (``inference.structures.prompt_clicks``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...predictor import Predictor, PredictorNotReady
from ...structures import Click, MaskResult, Prompt, clicks_from_prompts
from .model import (
    ClickSet,
    DynaMITe,
    DynamiteConfig,
    ImageCache,
    ImageFeatures,
    Resize,
    object_logits,
    preprocess,
)


def label_map(
    logits: torch.Tensor,
    owner: torch.Tensor,
    n_objects: int,
    resize: Resize,
    *,
    exact: bool = True,
    chunk: int = 16,
) -> torch.Tensor:
    """Q×(Hp/4)×(Wp/4) logits of one image → h0×w0 int64 labels, 0 = background, j = object j.

    ``exact``: resize every query's map (to Hp×Wp, crop to h×w, to h0×w0, bilinear) before the
    per-object max, as the official code (bilinear resizing does not commute with max); in
    chunks of ``chunk`` queries to bound memory. Otherwise take the max at stride 4 and resize
    the N+1 object maps only (cheaper with many clicks; differs near boundaries).
    Ties go to the lower object index, then background (argmax over (L_1, …, L_N, L_bg)).
    """

    def to_original(maps: torch.Tensor) -> torch.Tensor:
        maps = F.interpolate(
            maps[None].float(), size=(resize.Hp, resize.Wp), mode="bilinear", align_corners=False
        )[0, :, : resize.h, : resize.w]
        if (resize.h, resize.w) != (resize.h0, resize.w0):
            maps = F.interpolate(
                maps[None], size=(resize.h0, resize.w0), mode="bilinear", align_corners=False
            )[0]
        return maps

    best: torch.Tensor | None = None
    if exact:
        for start in range(0, logits.shape[0], chunk):
            part = object_logits(
                to_original(logits[start : start + chunk]), owner[start : start + chunk], n_objects
            )
            best = part if best is None else torch.maximum(best, part)
    else:
        best = to_original(object_logits(logits.float(), owner, n_objects))
    assert best is not None  # there is always a query (the static background ones)
    # objects first, background last, so ties between an object and background go to the object
    order = torch.cat([best[1:], best[:1]])
    index = order.argmax(0)
    return torch.where(index == n_objects, torch.zeros_like(index), index + 1)


class DynamitePredictor(Predictor):
    """Multi-instance interactive segmentation with DynaMITe.

    Args:
        model: a built :class:`DynaMITe` (weights loaded).
        device: where the model runs.
        cache_kv: cache the encoder's K/V projections of image tokens per image (exact; costs
            memory: 2 × 9 × tokens × 256 floats).
        exact_upsampling: see :func:`label_map`.
        pixel_chunk: run the decoder over this many stride-4 pixels at a time (None = all).
        autocast_dtype: e.g. ``torch.bfloat16`` on CUDA; None = float32.
    """

    native_multi_instance = True

    def __init__(
        self,
        model: DynaMITe,
        device: str | torch.device = "cpu",
        *,
        cache_kv: bool = True,
        exact_upsampling: bool = True,
        pixel_chunk: int | None = 16384,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cache_kv = cache_kv
        self.exact_upsampling = exact_upsampling
        self.pixel_chunk = pixel_chunk
        self.autocast_dtype = autocast_dtype
        self._features: ImageFeatures | None = None
        self._cache: ImageCache | None = None
        self._resize: Resize | None = None
        self._clicks: tuple[Click, ...] = ()
        self.timings: dict[str, float] = {}

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def _set_image(self, image: np.ndarray) -> None:
        start = time.perf_counter()
        x, self._resize = preprocess(image, self.model.config)
        with self._autocast():
            self._features = self.model.encode(x.to(self.device))
            self._cache = self.model.transformer.prepare(self._features, cache_kv=self.cache_kv)
        self._clicks = ()
        self._sync()
        self.timings = {"set_image": time.perf_counter() - start}

    def reset(self) -> None:
        super().reset()
        self._features = self._cache = self._resize = None
        self._clicks = ()

    def click_set(self, clicks: Sequence[Click]) -> tuple[ClickSet, list[int]]:
        """(the model's click set, object ids in query order). A positive click of object k > 0
        is k's; every other click (negative, or object 0) is background. Timestamps are the
        clicks' chronological indices (the demo's running counter, background clicks
        included); coordinates are scaled to the resized image (no half-pixel offset, A5.4)."""
        resize = self._resize
        if resize is None:
            raise PredictorNotReady("call set_image(rgb) before predict_objects()")
        sy, sx = resize.scale_yx
        ids = sorted({c.object_id for c in clicks if _owner(c) > 0})
        objects: list[list[tuple[float, float, int]]] = [[] for _ in ids]
        background = []
        for t, click in enumerate(clicks):
            point = (click.y * sy, click.x * sx, t)
            if _owner(click) > 0:
                objects[ids.index(click.object_id)].append(point)
            else:
                background.append(point)
        return ClickSet(objects=objects, background=background), ids

    @torch.inference_mode()
    def labels(self, clicks: Sequence[Click]) -> tuple[np.ndarray, list[int]]:
        """(H×W int32 label map, 0 = background, k = ``ids[k − 1]``; ids) for ``clicks``
        (chronological; see :meth:`click_set`)."""
        height, width = self.image_size
        for click in clicks:
            click.check_inside(height, width)
        click_set, ids = self.click_set(clicks)
        self._clicks = tuple(clicks)
        if not ids:  # no object: everything is background (the official code would crash)
            return np.zeros((height, width), np.int32), ids
        # click_set checked set_image
        assert self._features is not None and self._resize is not None
        start = time.perf_counter()
        with self._autocast():
            out = self.model.decode(
                self._features,
                [click_set],
                cache=self._cache,
                all_predictions=False,
                pixel_chunk=self.pixel_chunk,
            )
        labels = label_map(
            out.logits[-1][0], out.owner[0], len(ids), self._resize, exact=self.exact_upsampling
        )
        label_array = labels.to(torch.int32).cpu().numpy()
        self._sync()
        self.timings["predict"] = time.perf_counter() - start
        return label_array, ids

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """{object id: MaskResult} for every object id > 0 among ``prompts`` (chronological;
        see the module docstring). Masks never overlap; an object without a positive prompt,
        or that loses every pixel to the others, comes out empty."""
        labels, ids = self.labels(clicks_from_prompts(prompts))
        timings = dict(self.timings)
        out = {
            object_id: MaskResult(mask=labels == k, timings=timings)
            for k, object_id in enumerate(ids, start=1)
        }
        for object_id in {p.object_id for p in prompts if p.object_id > 0} - set(ids):
            out[object_id] = MaskResult(mask=np.zeros(labels.shape, dtype=bool), timings=timings)
        return dict(sorted(out.items()))

    def _predict(self, clicks: list[Click]) -> MaskResult:
        """Single-object contract: positive clicks are object 1, negative ones background."""
        placed = [
            Click(c.x, c.y, positive=c.positive, object_id=1 if c.positive else 0) for c in clicks
        ]
        labels, ids = self.labels(placed)
        return MaskResult(
            mask=labels == 1 if ids else np.zeros(labels.shape, dtype=bool),
            timings=dict(self.timings),
        )

    def get_state(self) -> Any:
        """The clicks of the last prediction: the model is stateless, so replaying them gives
        identical masks."""
        return self._clicks

    def set_state(self, state: Any) -> None:
        self._clicks = tuple(state or ())


def _owner(click: Click) -> int:
    """The object a click adds to: its object id if positive, else 0 (background)."""
    return click.object_id if click.positive else 0


def build_dynamite(
    device: str = "cpu",
    checkpoint: str | None = None,
    config: DynamiteConfig | None = None,
    backbone: str | None = None,
    **kwargs: Any,
) -> DynamitePredictor:
    """DynaMITe from ``checkpoint`` (official pickle or our safetensors; see ``checkpoint.py``).

    Without a checkpoint: effnet-lite0 with its ImageNet weights, 512 px long side, random
    pixel decoder and transformer — the code path is real, the masks are meaningless.
    ``kwargs`` go to :class:`DynamitePredictor`.
    """
    if checkpoint is not None:
        from .checkpoint import load_model

        model = load_model(checkpoint, config, device)
    else:
        config = config or DynamiteConfig(short_side=512, max_side=512)
        if backbone is not None:
            config = dataclasses.replace(config, backbone=backbone)
        warnings.warn(
            "dynamite: no checkpoint given; backbone ImageNet weights only, random heads — "
            "masks will be meaningless",
            stacklevel=2,
        )
        model = DynaMITe(config)
    return DynamitePredictor(model, device=device, **kwargs)
