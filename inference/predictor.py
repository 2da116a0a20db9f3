"""The predictor contract every interactive method follows (SAM's two phases, RITM's undo)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .structures import Click, MaskResult, Prompt, clicks_from_prompts


class PredictorNotReady(RuntimeError):
    """``predict`` was called before ``set_image``."""


class Predictor(abc.ABC):
    """Expensive ``set_image`` once per image, cheap ``predict`` per prompt.

    Subclasses implement :meth:`_set_image` and :meth:`_predict`; the checks on inputs live
    here so every method refuses bad input the same way. Methods that answer for every object
    at once (DynaMITe, SALT) also override :meth:`predict_objects`.
    """

    # True where ``predict_objects`` reads all objects' clicks jointly in time order (object 0 =
    # background) and returns disjoint masks: the multi-instance protocol itself, so that
    # evaluation's MIST loop calls it directly rather than its own per-object protocol.
    native_multi_instance: ClassVar[bool] = False

    def __init__(self) -> None:
        self._image_hw: tuple[int, int] | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the current image."""
        if self._image_hw is None:
            raise PredictorNotReady("call set_image(rgb) before predict()")
        return self._image_hw

    def set_image(self, image: np.ndarray) -> None:
        """Compute the per-image state. ``image``: H×W×3 uint8 RGB."""
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or image.dtype != np.uint8
        ):
            shape = getattr(image, "shape", None)
            raise ValueError(f"set_image needs an H×W×3 uint8 RGB array, got {shape}")
        self._set_image(image)
        self._image_hw = (image.shape[0], image.shape[1])

    def predict(self, clicks: Sequence[Click]) -> MaskResult:
        """Mask for the object defined by ``clicks`` (in order); H×W bool at image size."""
        height, width = self.image_size
        for click in clicks:
            click.check_inside(height, width)
        return self._predict(list(clicks))

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """One mask per object (H×W bool at image size) for every object id > 0 among ``prompts``.

        The default reads each object alone: its own prompts and every prompt of object 0 (a
        negative whatever its sign), in the given order, as clicks (see
        :func:`~inference.structures.prompt_clicks`) through :meth:`predict`; an object with no
        positive click gets an empty mask. Objects are independent, so masks may overlap.
        """
        ids = sorted({p.object_id for p in prompts if p.object_id > 0})
        out: dict[int, MaskResult] = {}
        for object_id in ids:
            clicks = [
                c if c.object_id else Click(c.x, c.y, positive=False, object_id=0)
                for c in clicks_from_prompts(p for p in prompts if p.object_id in (0, object_id))
            ]
            if any(c.positive for c in clicks):
                out[object_id] = self.predict(clicks)
            else:
                out[object_id] = MaskResult(mask=np.zeros(self.image_size, dtype=bool))
        return out

    def reset(self) -> None:
        """Forget the image and any per-object state."""
        self._image_hw = None

    def get_state(self) -> Any:
        """A snapshot of per-object state for undo (clicks-only methods need none)."""
        return None

    def set_state(self, state: Any) -> None:
        """Restore a snapshot from :meth:`get_state`."""

    @abc.abstractmethod
    def _set_image(self, image: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _predict(self, clicks: list[Click]) -> MaskResult: ...
