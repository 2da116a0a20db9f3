"""A method that exists only in the tests: its whole integration is the registration below.

``toy-box`` fills the box it is given (and a disk around each positive click), a "model" with no
weights whose answers are easy to check; its batch job proposes the bright part of each image.
Like SAM, it ranks alternatives when clicks make the object ambiguous: ``candidates`` are the
disks of radius :data:`RADIUS`, 2× and 3× that (scores :data:`SCORES`), best (smallest) first.
The platform learns everything it needs (label, prompt kinds, single-object, no backbone, the
batch job and its settings) from the :class:`inference.MethodInfo`; the web process and the
workers import this module because ``MASKWRIGHT_METHOD_PLUGINS`` names it.
"""

from __future__ import annotations

import numpy as np

from inference import (
    BatchJob,
    Box,
    Click,
    MaskResult,
    MethodInfo,
    Param,
    Predictor,
    register_method,
)
from inference.jobs import Proposals

NAME = "toy-box"
RADIUS = 5
SCORES = (0.93, 0.81, 0.52)  # of the candidates: disks of RADIUS, 2·RADIUS, 3·RADIUS


class BoxFill(Predictor):
    """Box → the box's pixels; clicks → disks around the positive ones, in three ranked sizes
    (:data:`RADIUS` first: the main mask), each with the object's boxes filled in."""

    def _set_image(self, image: np.ndarray) -> None:
        self.rgb = image

    def _disks(self, clicks: list[Click], radius: int) -> np.ndarray:
        height, width = self.image_size
        yy, xx = np.mgrid[:height, :width]
        mask = np.zeros((height, width), dtype=bool)
        for c in clicks:
            disk = (xx - c.x) ** 2 + (yy - c.y) ** 2 <= radius**2
            mask = mask | disk if c.positive else mask & ~disk
        return mask

    def _predict(self, clicks: list[Click]) -> MaskResult:
        ranked = [
            MaskResult(mask=self._disks(clicks, RADIUS * (i + 1)), score=score)
            for i, score in enumerate(SCORES)
        ]
        return MaskResult(mask=ranked[0].mask.copy(), score=SCORES[0], candidates=ranked)

    def predict_objects(self, prompts) -> dict[int, MaskResult]:
        out: dict[int, MaskResult] = {}
        for object_id in sorted({p.object_id for p in prompts if p.object_id > 0}):
            own = [p for p in prompts if p.object_id == object_id]
            clicks = [p for p in own if isinstance(p, Click)]
            # a box alone is unambiguous: one mask, no candidates
            ranked = self._predict(clicks).candidates if clicks else []
            masks = [c.mask for c in ranked] or [np.zeros(self.image_size, dtype=bool)]
            for box in (p for p in own if isinstance(p, Box)):
                for mask in masks:
                    mask[int(box.y0) : int(box.y1) + 1, int(box.x0) : int(box.x1) + 1] = True
            out[object_id] = MaskResult(
                mask=masks[0].copy(), score=ranked[0].score if ranked else 1.0, candidates=ranked
            )
        return out


def toy_proposals(params: dict, device: str) -> Proposals:
    """Its batch job: one proposal per image, the pixels brighter than the image's mean plus
    ``params["shift"]``, scored by the share of the image they cover."""

    def propose(rgb: np.ndarray, seed: int) -> list[tuple[np.ndarray, float]]:
        gray = rgb.mean(axis=2)
        mask = gray > gray.mean() + params["shift"]
        return [(mask, round(float(mask.mean()), 4))] if mask.any() else []

    return Proposals(propose=propose, model_name=f"brighter+{params['shift']}")


PROPOSALS = BatchJob(
    kind="toy-bright",
    capability="proposals",
    label="Toy bright regions",
    run=f"{__name__}:toy_proposals",
    params=(Param("shift", "Brightness above the mean", "int", 0, minimum=-255, maximum=255),),
)


@register_method(
    MethodInfo(
        name=NAME,
        label="Toy box filler",
        prompts=("box", "click"),
        backbones=(),
        batch=(PROPOSALS,),
    )
)
def build_toy(device: str = "cpu", **_: object) -> BoxFill:
    return BoxFill()
