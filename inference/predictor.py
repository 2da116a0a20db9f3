"""The predictor contract every interactive method follows (SAM's two phases, RITM's undo)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from .structures import Click, MaskResult, PriorMask, Prompt, clicks_from_prompts


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
    # True where the method refines a prior mask (``predict(clicks, prior=...)``, implemented by
    # ``_predict_prior``): its registry entry lists ``PRIOR_KIND`` among its prompts.
    reads_prior: ClassVar[bool] = False

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

    def predict(self, clicks: Sequence[Click], prior: np.ndarray | None = None) -> MaskResult:
        """Mask for the object defined by ``clicks`` (in order); H×W bool at image size.

        ``prior``: the object's mask before these clicks (H×W bool at image size), for a method
        that :attr:`reads_prior`: positive clicks add to it, negative ones remove from it, and
        what no click decides keeps the prior's value (M2N2 re-decides its edges with the colour
        band cut; GrabCut re-decides it all from there). ValueError from any other method."""
        height, width = self.image_size
        for click in clicks:
            click.check_inside(height, width)
        if prior is None:
            return self._predict(list(clicks))
        if not self.reads_prior:
            raise ValueError(f"{type(self).__name__} does not refine a prior mask")
        prior = np.asarray(prior)
        if prior.shape != (height, width):
            raise ValueError(f"prior mask is {prior.shape}, the image {(height, width)}")
        return self._predict_prior(list(clicks), prior.astype(bool, copy=False))

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """One mask per object (H×W bool at image size) for every object id > 0 among ``prompts``.

        The default reads each object alone: its own prompts and every prompt of object 0 (a
        negative whatever its sign), in the given order, as clicks (see
        :func:`~inference.structures.prompt_clicks`) through :meth:`predict`; an object with no
        positive click gets an empty mask. Objects are independent, so masks may overlap.
        An object's :class:`~inference.structures.PriorMask` (its last) goes to ``predict`` as
        ``prior`` where the method :attr:`reads_prior` (then even with no positive click), and
        is ignored elsewhere.
        """
        ids = sorted({p.object_id for p in prompts if p.object_id > 0})
        priors = {p.object_id: p.mask for p in prompts if isinstance(p, PriorMask)}
        prompts = [p for p in prompts if not isinstance(p, PriorMask)]
        out: dict[int, MaskResult] = {}
        for object_id in ids:
            clicks = [
                c if c.object_id else Click(c.x, c.y, positive=False, object_id=0)
                for c in clicks_from_prompts(p for p in prompts if p.object_id in (0, object_id))
            ]
            prior = priors.get(object_id) if self.reads_prior else None
            if prior is not None:
                out[object_id] = self.predict(clicks, prior=prior)
            elif any(c.positive for c in clicks):
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

    def _predict_prior(self, clicks: list[Click], prior: np.ndarray) -> MaskResult:
        """``_predict`` refining ``prior`` (H×W bool at image size), where :attr:`reads_prior`."""
        raise NotImplementedError


class TextFinding(Protocol):
    """Every instance of a described thing in one image ("find every <label>"): what a method's
    registered ``MethodInfo.text_finder`` builds (:func:`inference.registry.build_text_finder`).

    Like a predictor it has two phases: ``set_image`` encodes an image once (H×W×3 uint8
    RGB); each ``find`` then costs only the text's part, so several texts on one image cost one
    encoding.
    """

    def set_image(self, image: np.ndarray) -> None: ...

    def find(self, text: str, *, threshold: float, max_instances: int) -> list[MaskResult]:
        """One :class:`MaskResult` per instance of ``text`` scoring above ``threshold``, at most
        ``max_instances``, best score first: ``mask`` H×W bool at the size of the image given
        to ``set_image``, ``score`` in [0, 1]."""
        ...
