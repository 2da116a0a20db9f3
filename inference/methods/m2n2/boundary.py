"""Optional full-resolution boundary refinement of a coarse mask (not in the M2N2 paper).

M2N2's masks come from maps computed on a coarse token grid (8 px cells at 512 px for
effnet-lite0); their boundaries are only as good as the joint bilateral upsampling.
:func:`~inference.imaging.refine_band` re-decides a band around the boundary with a
colour-model graph cut (MIS uses it too, so it lives in :mod:`inference.imaging`).
"""

from ...imaging import refine_band

__all__ = ["refine_band"]
