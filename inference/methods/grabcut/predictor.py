"""The ``opencv-grabcut`` baseline, a method like the others, so every evaluation can put a floor
beside a model.

``opencv-grabcut``: OpenCV's GrabCut (Rother et al. 2004) seeded by the clicks. No weights, no
GPU, no backbone. Its trimap, at a working size whose long side is at most ``max_side``:

* everything starts as probable background;
* a disk of radius ``probable_radius`` around each positive click is probable foreground
  (GrabCut needs foreground colour samples, and one pixel is not a colour model);
* the 1-px image border is definite background (objects rarely fill the frame, and GrabCut
  needs definite background samples too);
* a disk of radius ``seed_radius`` at every click is a hard seed, definite foreground for
  positives, definite background for negatives, painted in click order so a later click wins.

``cv2.grabCut(..., mode=GC_INIT_WITH_MASK, iterCount=5)`` then labels the pixels, and the
foreground (definite or probable) is resized back to the image size.

With a prior mask (``predict(clicks, prior=...)``: an imported mask, a pseudo label) the trimap
starts from it instead: probable foreground inside, probable background outside, the border
definite background only where the prior does not touch it; the clicks' seeds go on top. GrabCut
re-decides the whole mask from there, as it does from a rectangle.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...imaging import NO_RECT
from ...predictor import Predictor
from ...structures import Click, MaskResult

DEFAULT_MAX_SIDE = 512
DEFAULT_SEED_RADIUS = 3
DEFAULT_PROBABLE_RADIUS = 40
DEFAULT_ITERATIONS = 5
_RNG_SEED = 0x5EED


class GrabCutPredictor(Predictor):
    """OpenCV GrabCut driven by clicks; radii are in working-size pixels.

    ``max_side``: long side of the working image (smaller images are used as they are).
    Deterministic: OpenCV's k-means initialisation draws from a global generator, which is
    reseeded before each call so a mask depends on the image and clicks only.
    """

    reads_prior = True  # a prior mask is GrabCut's initial trimap (see the module docstring)

    def __init__(
        self,
        *,
        max_side: int = DEFAULT_MAX_SIDE,
        seed_radius: int = DEFAULT_SEED_RADIUS,
        probable_radius: int = DEFAULT_PROBABLE_RADIUS,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        super().__init__()
        if max_side < 8:
            raise ValueError(f"max_side must be at least 8 pixels, got {max_side}")
        self.max_side = max_side
        self.seed_radius = seed_radius
        self.probable_radius = probable_radius
        self.iterations = iterations
        self._work: np.ndarray | None = None
        self._scale = 1.0

    def _set_image(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        self._scale = min(1.0, self.max_side / max(height, width))
        if self._scale < 1.0:
            size = (max(1, round(width * self._scale)), max(1, round(height * self._scale)))
            self._work = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        else:
            self._work = np.ascontiguousarray(image)

    def reset(self) -> None:
        super().reset()
        self._work = None

    def _predict(self, clicks: list[Click]) -> MaskResult:
        return self._cut(clicks, None)

    def _predict_prior(self, clicks: list[Click], prior: np.ndarray) -> MaskResult:
        return self._cut(clicks, prior)

    def _cut(self, clicks: list[Click], prior: np.ndarray | None) -> MaskResult:
        height, width = self.image_size
        assert self._work is not None  # set by _set_image
        if prior is None and not any(c.positive for c in clicks):
            return MaskResult(mask=np.zeros((height, width), dtype=bool))
        if prior is not None and not clicks:
            return MaskResult(mask=prior.copy())
        trimap = self.trimap(clicks, prior)
        # GrabCut fits its colour models to the trimap's classes and fails on an empty one
        is_foreground = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if is_foreground.all() or not is_foreground.any():
            return MaskResult(mask=self._to_image_size(is_foreground))
        bgd_model = np.zeros((1, 65), dtype=np.float64)
        fgd_model = np.zeros((1, 65), dtype=np.float64)
        cv2.setRNGSeed(_RNG_SEED)
        try:
            cv2.grabCut(
                self._work,
                trimap,
                NO_RECT,
                bgd_model,
                fgd_model,
                self.iterations,
                cv2.GC_INIT_WITH_MASK,
            )
        except cv2.error:
            # too few pixels of one class for its 5-component colour model: keep the seeds
            pass
        foreground = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
        return MaskResult(mask=self._to_image_size(foreground))

    def trimap(self, clicks: list[Click], prior: np.ndarray | None = None) -> np.ndarray:
        """The initial GrabCut label map (working size, uint8 ``cv2.GC_*`` values); ``prior``:
        H×W bool at image size, or None."""
        assert self._work is not None
        h, w = self._work.shape[:2]
        trimap = np.full((h, w), cv2.GC_PR_BGD, dtype=np.uint8)
        border = np.zeros((h, w), dtype=bool)
        border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
        if prior is not None:
            inside = cv2.resize(prior.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            trimap[inside > 0] = cv2.GC_PR_FGD
            border &= inside == 0  # an object cut by the frame keeps its edge pixels
        centres = [(self._to_work(c), c.positive) for c in clicks]
        for centre, positive in centres:
            if positive:
                cv2.circle(trimap, centre, self.probable_radius, int(cv2.GC_PR_FGD), thickness=-1)
        trimap[border] = cv2.GC_BGD
        for centre, positive in centres:
            label = cv2.GC_FGD if positive else cv2.GC_BGD
            cv2.circle(trimap, centre, self.seed_radius, int(label), thickness=-1)
        return trimap

    def _to_work(self, click: Click) -> tuple[int, int]:
        """Pixel centre (x, y) of a click in working coordinates, as cv2 wants it."""
        h, w = self._work.shape[:2]  # type: ignore[union-attr]
        x = min(w - 1, max(0, round((click.x + 0.5) * self._scale - 0.5)))
        y = min(h - 1, max(0, round((click.y + 0.5) * self._scale - 0.5)))
        return int(x), int(y)

    def _to_image_size(self, mask: np.ndarray) -> np.ndarray:
        height, width = self.image_size
        if mask.shape == (height, width):
            return mask.astype(bool)
        # linear resize then 0.5 threshold: a smoother outline than nearest-neighbour blocks
        soft = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return soft >= 0.5


def build_opencv_grabcut(
    device: str = "cpu", backbone: str | None = None, **kwargs: Any
) -> GrabCutPredictor:
    """GrabCut runs on the CPU with no backbone: ``device`` and ``backbone`` are accepted and
    ignored so that generic callers (the CLI, the platform) can pass them to any method."""
    del device, backbone
    return GrabCutPredictor(**kwargs)
