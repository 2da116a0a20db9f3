"""Deterministic click simulation: RITM's clicker with DynaMITe's exclusion zone (spec A4.1).

Every click goes to the centre of the largest error region:

* the error region's "centre" is its pixel farthest from the region's boundary, by an exact
  Euclidean distance transform of the region padded with one row/column of zeros on every side
  (so the image border counts as a boundary); ties go to the first pixel in row-major order
  (smallest y, then smallest x);
* by default false negatives (FN = GT ∧ ¬pred) and false positives (FP = ¬GT ∧ pred) are
  transformed separately; the click goes into FN (positive) only if FN's deepest point is
  strictly deeper than FP's, otherwise into FP (negative): ties → FP, as in RITM and DynaMITe;
* ignored pixels are never part of an error region, and every click removes a disk of radius
  ``exclusion_radius`` (5, DynaMITe's ``sampling_strategy=1``) around itself from where later
  clicks may land. ``exclusion_radius=0`` removes only the clicked pixel (RITM's own clicker);
  ``None`` removes nothing.

M2N2's simulator (spec 1.11) differs: it does not separate FN from FP (one error map,
``pred != GT``, whose deepest point is clicked, positive iff it lies on the object) and excludes
nothing. ``separate_errors=False, exclusion_radius=None`` reproduces it, except that where M2N2
clicks the deepest object pixel again after a perfect prediction, we place no click.

The first click on an object is the deepest point of its (non-ignored) GT: the error rule
applied to an empty prediction. A click's owner is the GT value at its pixel, its ``object_id``:
0 is a background (negative) click, otherwise that object's positive click, which may not be
the object the click was aimed at.
"""

from __future__ import annotations

import numpy as np

from ..imaging import first_argmax, padded_distance
from ..structures import Click

DEFAULT_EXCLUSION_RADIUS = 5


class ClickSimulator:
    """Places clicks on one image's ground truth, remembering the excluded zone.

    ``gt``: H×W bool (one object, id 1) or integer instance map (0 background, objects > 0).
    ``ignore``: H×W bool of pixels never clicked nor counted as error, or None.
    """

    def __init__(
        self,
        gt: np.ndarray,
        ignore: np.ndarray | None = None,
        *,
        exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
        separate_errors: bool = True,
    ) -> None:
        if gt.ndim != 2:
            raise ValueError(f"gt must be H×W, got {gt.shape}")
        if ignore is not None and ignore.shape != gt.shape:
            raise ValueError(f"ignore is {ignore.shape}, gt is {gt.shape}")
        if exclusion_radius is not None and exclusion_radius < 0:
            raise ValueError(f"exclusion_radius must be >= 0 or None, got {exclusion_radius}")
        self.labels = gt.astype(np.int32)
        self.valid = None if ignore is None else ~ignore.astype(bool)
        self.exclusion_radius = exclusion_radius
        self.separate_errors = separate_errors
        self.not_clicked = np.ones(gt.shape, dtype=bool)
        self.clicks: list[Click] = []

    @property
    def object_ids(self) -> list[int]:
        return [int(v) for v in np.unique(self.labels) if v > 0]

    def first_click(self, object_id: int) -> Click | None:
        """The deepest non-ignored pixel of the object; None if it has none.

        The excluded zone is not consulted: each object's first click is its own GT's centre,
        independent of the other objects' first clicks (DynaMITe computes them per object).
        """
        region = self._valid(self.labels == object_id)
        dist = padded_distance(region)
        if dist.max() <= 0:
            return None
        return self._place(*first_argmax(dist))

    def next_click(self, object_id: int, pred: np.ndarray) -> Click | None:
        """A corrective click for one object given its predicted H×W bool mask.

        None when no error pixel is left outside the ignored and excluded zones (then RITM and
        DynaMITe would click at pixel (0, 0); we refuse instead, see :mod:`.clicker`).
        """
        gt = self.labels == object_id
        pred = pred.astype(bool)
        if self.separate_errors:
            fn = self._clickable(padded_distance(self._valid(gt & ~pred)))
            fp = self._clickable(padded_distance(self._valid(~gt & pred)))
            best = fn if fn.max() > fp.max() else fp
        else:
            best = self._clickable(padded_distance(self._valid(gt != pred)))
        if best.max() <= 0:
            return None
        return self._place(*first_argmax(best))

    def next_click_global(self, pred_labels: np.ndarray) -> Click | None:
        """DynaMITe's ``max_dt``: one click at the deepest point of all errors together.

        ``pred_labels``: H×W int predicted instance map (0 background). The error region is
        every pixel whose predicted label differs from the GT label.
        """
        errors = self._valid(pred_labels.astype(np.int32) != self.labels)
        dist = self._clickable(padded_distance(errors))
        if dist.max() <= 0:
            return None
        return self._place(*first_argmax(dist))

    def get_state(self) -> tuple[list[Click], np.ndarray]:
        return list(self.clicks), self.not_clicked.copy()

    def set_state(self, state: tuple[list[Click], np.ndarray]) -> None:
        clicks, not_clicked = state
        self.clicks, self.not_clicked = list(clicks), not_clicked.copy()

    def _valid(self, region: np.ndarray) -> np.ndarray:
        return region if self.valid is None else region & self.valid

    def _clickable(self, dist: np.ndarray) -> np.ndarray:
        return dist if self.exclusion_radius is None else dist * self.not_clicked

    def _place(self, x: int, y: int) -> Click:
        owner = int(self.labels[y, x])
        placed = Click(x=x, y=y, positive=owner != 0, object_id=owner)
        if self.exclusion_radius is not None:
            exclude_disk(self.not_clicked, x=x, y=y, radius=self.exclusion_radius)
        self.clicks.append(placed)
        return placed


def exclude_disk(not_clicked: np.ndarray, *, x: int, y: int, radius: int) -> None:
    """Set to False, in place, the pixels of ``not_clicked`` (H×W bool) within ``radius`` of
    (x, y)."""
    height, width = not_clicked.shape
    top, bottom = max(0, y - radius), min(height, y + radius + 1)
    left, right = max(0, x - radius), min(width, x + radius + 1)
    yy, xx = np.ogrid[top:bottom, left:right]
    inside = (xx - x) ** 2 + (yy - y) ** 2 <= radius * radius
    not_clicked[top:bottom, left:right] &= ~inside


class Clicker:
    """Single-object clicker in RITM's shape: ``make_next_click(pred)`` then ``clicks``.

    ``gt``: H×W bool. The first call (``pred`` None or empty) gives the object's centre.
    """

    def __init__(
        self,
        gt: np.ndarray,
        ignore: np.ndarray | None = None,
        *,
        exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
        separate_errors: bool = True,
    ) -> None:
        self._sim = ClickSimulator(
            gt.astype(bool),
            ignore,
            exclusion_radius=exclusion_radius,
            separate_errors=separate_errors,
        )

    @property
    def clicks(self) -> list[Click]:
        """The clicks so far, in order (positive on the object, negative on background)."""
        return list(self._sim.clicks)

    def make_next_click(self, pred: np.ndarray | None = None) -> Click | None:
        """Add and return the next click for H×W bool ``pred``; None if no error is clickable."""
        if pred is None:
            pred = np.zeros(self._sim.labels.shape, dtype=bool)
        return self._sim.next_click(1, pred)

    def get_state(self) -> tuple[list[Click], np.ndarray]:
        return self._sim.get_state()

    def set_state(self, state: tuple[list[Click], np.ndarray]) -> None:
        self._sim.set_state(state)

    def __len__(self) -> int:
        return len(self._sim.clicks)
