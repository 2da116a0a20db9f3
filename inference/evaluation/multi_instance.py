"""What the multi-instance (MIST) loop needs from a predictor, and an adapter for single ones.

A multi-instance predictor takes every click on the image at once, each tagged with the object
it belongs to (``Click.object_id``; 0 = background), in the order they were made, and returns
one mask per object. Methods such as DynaMITe do this natively (``native_multi_instance``);
:class:`PerObjectAdapter` runs any other :class:`~inference.predictor.Predictor` under this
protocol (other objects' clicks as negatives, disjoint masks). That protocol is evaluation's,
not the platform's: a predictor's own ``predict_objects`` treats objects independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..predictor import Predictor
from ..structures import Click, MaskResult


@runtime_checkable
class MultiInstancePredictor(Protocol):
    """``set_image`` once per image, then ``predict_objects`` after every click.

    ``predict_objects(prompts)``: clicks in chronological order; object ids > 0 are positive
    clicks on that object, id 0 negative background clicks. Returns ``{object_id: H×W bool}``
    (or a :class:`MaskResult`) for every object id among the clicks (a missing id counts as an
    empty mask).
    """

    def set_image(self, image: np.ndarray) -> None: ...

    def predict_objects(
        self, prompts: Sequence[Click]
    ) -> Mapping[int, MaskResult | np.ndarray]: ...


class PerObjectAdapter:
    """Runs a single-object predictor once per object and merges the masks.

    Object k's prompt is k's own clicks as positives plus every other click (other objects'
    positives and the background clicks) as negatives, in chronological order except that k's
    first click leads: single-object methods commonly treat the first click as the object's
    anchor and some expect it positive.

    Overlaps: a pixel claimed by several objects goes to the one clicked most recently, because
    that object's mask was just corrected and reflects the user's latest intent. Masks are
    returned disjoint, as the MIST protocol expects of a label map.

    Cost: every click changes every object's prompt (it is a negative for the others), so each
    step costs N single predictions.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def set_image(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def predict_objects(self, prompts: Sequence[Click]) -> dict[int, np.ndarray]:
        last_clicked: dict[int, int] = {}
        for t, placed in enumerate(prompts):
            if placed.object_id > 0:
                last_clicked[placed.object_id] = t
        height, width = self.predictor.image_size
        labels = np.zeros((height, width), dtype=np.int32)
        # painting in order of last click, most recent last, makes the latest-clicked object win
        for object_id in sorted(last_clicked, key=last_clicked.__getitem__):
            mask = self.predictor.predict(prompt_for(object_id, prompts)).mask
            labels[mask] = object_id
        return {object_id: labels == object_id for object_id in last_clicked}


def prompt_for(object_id: int, clicks: Sequence[Click]) -> list[Click]:
    """Single-object prompt for ``object_id``: its clicks positive, all others negative."""
    prompt = [Click(x=c.x, y=c.y, positive=c.object_id == object_id) for c in clicks]
    first = next((i for i, c in enumerate(clicks) if c.object_id == object_id), None)
    if first:  # not None and not already first
        prompt.insert(0, prompt.pop(first))
    return prompt


def as_multi_instance(predictor: object) -> MultiInstancePredictor:
    """The predictor itself if it runs the protocol natively (a :class:`Predictor` with
    ``native_multi_instance``, or any object with ``set_image`` and ``predict_objects``), else
    a :class:`PerObjectAdapter` around it."""
    if isinstance(predictor, Predictor):
        return predictor if predictor.native_multi_instance else PerObjectAdapter(predictor)
    if isinstance(predictor, MultiInstancePredictor):
        return predictor
    raise TypeError(f"{type(predictor).__name__} is neither a Predictor nor multi-instance")
