"""The ``exits`` interactive method: four extreme clicks → box → generator → mask.

With at least four positive clicks, the first four positives are read as extreme points (which
is which follows from their positions: leftmost, rightmost, topmost, bottommost); their box is
cropped with the test margin, the generator predicts the crop's mask, it is pasted back inside
the box, and the four clicked pixels are forced to foreground. Fewer than four positive clicks
give an empty mask (the tool collects four first). Negative clicks are ignored: the generator
takes no other prompt (spec B5, product note).

``predict_objects`` reads :class:`ExtremePoints` and :class:`Box` prompts natively: each object's
newest one gives its mask (a box is cropped the same way; no point is forced). An object with
neither falls back to its last four positive clicks.

Without a trained generator (``checkpoint=None``) the predictor does not run the untrained
network (its masks would be near-random): it falls back to OpenCV GrabCut initialised with the
box of the four points, and warns once. Train one with :func:`~.batch.run_exits` and pass its
``generator.safetensors``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...predictor import Predictor
from ...structures import Box, Click, ExtremePoints, MaskResult, Prompt, clicks_from_prompts
from .generator import PseudoLabelGenerator, load_generator
from .points import box_of, crop_image, crop_window, paste_probability


def extreme_points_from_clicks(clicks: list[Click]) -> ExtremePoints | None:
    """The first four positive clicks as named extreme points (None when fewer than four).

    The leftmost of the four is ``left``, the rightmost ``right``; of the other two the upper is
    ``top`` (order-free, so annotators may click in any order).
    """
    positives = [c for c in clicks if c.positive][:4]
    if len(positives) < 4:
        return None
    return ExtremePoints.from_points([(c.x, c.y) for c in positives])


class ExitsPredictor(Predictor):
    """Extreme points → mask with a trained EXITS generator (module docstring).

    Args:
        generator: a trained :class:`PseudoLabelGenerator`, or None for the GrabCut fallback.
        crop_size: crop side the generator was trained at (pixels).
        mask_threshold: probability above which a pixel is object.
        device: where the generator runs.
    """

    def __init__(
        self,
        generator: PseudoLabelGenerator | None,
        *,
        crop_size: int = 160,
        mask_threshold: float = 0.5,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.generator = generator.eval().to(self.device) if generator is not None else None
        self.crop_size = crop_size
        self.mask_threshold = mask_threshold
        self._image: np.ndarray | None = None

    def _set_image(self, image: np.ndarray) -> None:
        # The crop depends on the box, so nothing can be computed before the clicks.
        self._image = image

    def reset(self) -> None:
        super().reset()
        self._image = None

    def _predict(self, clicks: list[Click]) -> MaskResult:
        height, width = self.image_size
        points = extreme_points_from_clicks(clicks)
        if points is None:
            return MaskResult(mask=np.zeros((height, width), dtype=bool))
        return self._mask_in_box(box_of(points), points)

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """One mask per object id > 0: from its newest :class:`ExtremePoints` or :class:`Box`,
        else from its last four positive clicks (empty with fewer). Object-0 prompts and
        negatives are ignored, as the generator reads none; masks may overlap."""
        height, width = self.image_size
        ids = sorted({p.object_id for p in prompts if p.object_id > 0})
        out: dict[int, MaskResult] = {}
        for object_id in ids:
            own = [p for p in prompts if p.object_id == object_id]
            shaped = [p for p in own if isinstance(p, (ExtremePoints, Box))]
            if shaped:
                newest = shaped[-1]
                for x, y in (
                    newest.points
                    if isinstance(newest, ExtremePoints)
                    else ((newest.x0, newest.y0), (newest.x1, newest.y1))
                ):
                    Click(x=x, y=y).check_inside(height, width)
                if isinstance(newest, ExtremePoints):
                    out[object_id] = self._mask_in_box(box_of(newest), newest)
                else:
                    out[object_id] = self._mask_in_box(newest.xyxy, None)
                continue
            positives = [c for c in clicks_from_prompts(own) if c.positive]
            out[object_id] = self.predict(positives[-4:])
        return out

    def _mask_in_box(
        self, box: tuple[float, float, float, float], points: ExtremePoints | None
    ) -> MaskResult:
        """The generator's mask inside ``box`` (x0, y0, x1, y1), or GrabCut's without one; the
        extreme ``points``, when given, forced to foreground."""
        assert self._image is not None
        height, width = self.image_size
        started = time.perf_counter()
        score = None
        if self.generator is None:
            from .baseline import grabcut_box

            mask = grabcut_box(self._image, box)
        else:
            from .train import predict_probabilities

            window = crop_window(box, self.crop_size)
            prob = predict_probabilities(
                self.generator, crop_image(self._image, window)[None], device=self.device
            )[0]
            full = paste_probability(prob, window, (height, width), box)
            mask = full > self.mask_threshold
            score = float(full[mask].mean()) if mask.any() else 0.0
        if points is not None:
            for x, y in points.points:
                mask[min(height - 1, int(y)), min(width - 1, int(x))] = True
        return MaskResult(
            mask=mask, score=score, timings={"predict": time.perf_counter() - started}
        )

    def save_generator(self, path: str | Path) -> None:
        """Write the generator (safetensors + config) for :meth:`load_generator`."""
        from .generator import save_generator

        if self.generator is None:
            raise ValueError("no generator to save (this predictor uses the GrabCut fallback)")
        save_generator(
            self.generator, path, crop_size=self.crop_size, mask_threshold=self.mask_threshold
        )

    def load_generator(self, path: str | Path) -> None:
        """Replace the generator by one saved with :meth:`save_generator` or by ``run_exits``."""
        model, config = load_generator(path, device=self.device)
        self.generator = model
        self.crop_size = int(config.get("crop_size", self.crop_size))
        self.mask_threshold = float(config.get("mask_threshold", self.mask_threshold))


def build_exits(
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    backbone: str | None = None,
    **kwargs: object,
) -> ExitsPredictor:
    """EXITS predictor. ``checkpoint``: a ``generator.safetensors`` from :func:`~.batch.run_exits`
    (or :meth:`ExitsPredictor.save_generator`); without one the GrabCut-in-box fallback is used
    and a warning says so. ``backbone`` is accepted and ignored (the generator file names its
    encoder)."""
    del backbone
    predictor = ExitsPredictor(None, device=device, **kwargs)  # type: ignore[arg-type]
    if checkpoint is None:
        warnings.warn(
            "exits: no trained generator (checkpoint=None); masks come from GrabCut "
            "initialised with the extreme points' box. Train one with run_exits.",
            stacklevel=2,
        )
    else:
        predictor.load_generator(checkpoint)
    return predictor
