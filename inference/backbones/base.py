"""The backbone contract and its registry.

A backbone turns an H×W×3 uint8 RGB image into

* ``features(image)``: a ``(C, h, w)`` float32 tensor of patch features on ``device``;
* ``affinity(image)``: an :class:`Affinity`, a row-stochastic ``(N, N)`` float32 matrix over the
  ``h × w`` token grid (``N = h·w``, raster order ``index = y·w + x``; row = query token,
  column = key token), i.e. what M2N2 treats as a Markov transition matrix.

Backbones whose attention is the natural affinity (SD2, ViTs) record it; feature-only backbones
build it from their features. Both are computed at a stated grid resolution (``grid_hw``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Affinity:
    """Row-stochastic affinity over a token grid.

    ``matrix``: (N, N) float32, rows sum to 1, N = grid_hw[0] * grid_hw[1], raster order.
    ``features``: the (C, h, w) grid features it was computed from, where the backbone has
    them (M2N2's click head reads them), else None.
    """

    matrix: torch.Tensor
    grid_hw: tuple[int, int]
    features: torch.Tensor | None = None


class Backbone(abc.ABC):
    """Base class: subclasses implement :meth:`_features` and may override :meth:`_affinity`."""

    name: str = "backbone"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @staticmethod
    def check_image(image: np.ndarray) -> None:
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or image.dtype != np.uint8
        ):
            raise ValueError(
                f"expected an H×W×3 uint8 RGB array, got {getattr(image, 'shape', None)}"
            )

    @torch.inference_mode()
    def features(self, image: np.ndarray) -> torch.Tensor:
        """(C, h, w) float32 patch features of ``image`` (H×W×3 uint8 RGB)."""
        self.check_image(image)
        return self._features(image)

    @torch.inference_mode()
    def affinity(self, image: np.ndarray) -> Affinity:
        """Row-stochastic token affinity of ``image`` (H×W×3 uint8 RGB)."""
        self.check_image(image)
        return self._affinity(image)

    @abc.abstractmethod
    def _features(self, image: np.ndarray) -> torch.Tensor: ...

    def _affinity(self, image: np.ndarray) -> Affinity:
        raise NotImplementedError(f"backbone {self.name!r} gives no affinity matrix")


_BACKBONES: dict[str, Callable[..., Backbone]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    def wrap(builder: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        _BACKBONES[name] = builder
        return builder

    return wrap


def _load_all() -> None:
    # Importing the modules registers their builders; heavy imports stay inside builders.
    from . import catalog  # noqa: F401


def list_backbones() -> list[str]:
    _load_all()
    return sorted(_BACKBONES)


def build_backbone(name: str, *, device: str | torch.device = "cpu", **kwargs: Any) -> Backbone:
    _load_all()
    if name not in _BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(sorted(_BACKBONES))}")
    return _BACKBONES[name](device=device, **kwargs)
