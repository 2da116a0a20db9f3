"""A box-and-click method that exists only in the tests (``MASKWRIGHT_METHOD_PLUGINS`` names it).

``toy-box-refine`` answers an object's prompts with a mask anyone can recompute: the pixels of
its boxes, plus a disc of :data:`RADIUS` around each positive click, minus a disc around each
negative one (negatives win, whatever the order). A pixel counts as inside a box or disc when
its centre (x + 0.5, y + 0.5) is, so a box dragged from the centre of pixel (a, b) to the centre
of pixel (c, d) covers exactly columns a..c and rows b..d. No weights, no candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference import Box, Click, MaskResult, MethodInfo, Predictor, register_method

NAME = "toy-box-refine"
LABEL = "Toy box and clicks"
RADIUS = 6  # image px, of the disc around a click


def expected_mask(
    height: int,
    width: int,
    boxes: Sequence[tuple[float, float, float, float]],
    clicks: Sequence[tuple[float, float, bool]],
) -> np.ndarray:
    """The method's answer for one object: H×W bool from its boxes (x0, y0, x1, y1) and clicks
    (x, y, positive), all in image px (tests compute what the page must show with it too)."""
    yy, xx = np.mgrid[:height, :width].astype(np.float64) + 0.5  # pixel centres
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
    discs = [((xx - x) ** 2 + (yy - y) ** 2 <= RADIUS**2, positive) for x, y, positive in clicks]
    for disc, positive in discs:
        if positive:
            mask |= disc
    for disc, positive in discs:
        if not positive:
            mask &= ~disc
    return mask


class BoxAndDiscs(Predictor):
    """Each object's mask from its own boxes and clicks (:func:`expected_mask`)."""

    def _set_image(self, image: np.ndarray) -> None:
        self.rgb = image

    def _predict(self, clicks: list[Click]) -> MaskResult:
        height, width = self.image_size
        mask = expected_mask(height, width, [], [(c.x, c.y, c.positive) for c in clicks])
        return MaskResult(mask=mask, score=1.0)

    def predict_objects(self, prompts) -> dict[int, MaskResult]:
        height, width = self.image_size
        out: dict[int, MaskResult] = {}
        for object_id in sorted({p.object_id for p in prompts if p.object_id > 0}):
            own = [p for p in prompts if p.object_id == object_id]
            boxes = [p.xyxy for p in own if isinstance(p, Box)]
            clicks = [(p.x, p.y, p.positive) for p in own if isinstance(p, Click)]
            out[object_id] = MaskResult(mask=expected_mask(height, width, boxes, clicks), score=1.0)
        return out


@register_method(MethodInfo(name=NAME, label=LABEL, prompts=("box", "click"), backbones=()))
def build_toy_box(device: str = "cpu", **_: object) -> BoxAndDiscs:
    return BoxAndDiscs()
