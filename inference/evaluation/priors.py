"""Priors for the single-object protocol with ``--prior``: the ground truth degraded the way an
import or a pseudo label is wrong, so that ``maskwright eval`` measures how a method refines an
existing mask (the platform's click on an imported mask) against starting from nothing.

* ``part``: the lower 40 % of the object's box is missing (a mask that missed a region, as
  M2N2 missed the astronaut's suit);
* ``coarse``: the object dilated by 6 % of √area (a coarse outline that leaks into the
  background).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PRIORS = ("part", "coarse")


def degraded(gt: np.ndarray, kind: str) -> np.ndarray:
    """``gt`` (H×W bool) degraded as ``kind`` says (see the module docstring); H×W bool."""
    gt = gt.astype(bool)
    if kind not in PRIORS:
        raise ValueError(f"unknown prior {kind!r}; one of {', '.join(PRIORS)}")
    if not gt.any():
        return gt.copy()
    if kind == "part":
        rows = np.flatnonzero(gt.any(axis=1))
        cut = int(rows[0] + 0.6 * (rows[-1] - rows[0]))
        out = gt.copy()
        out[cut:] = False
        return out
    radius = max(2, int(0.06 * np.sqrt(gt.sum())))
    return ndimage.binary_dilation(gt, iterations=radius)
