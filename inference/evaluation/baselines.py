"""Where the ``opencv-grabcut`` baseline used to live; it is a method now
(:mod:`inference.methods.grabcut`), registered like the others. Kept as a re-export."""

from ..methods.grabcut.predictor import GrabCutPredictor, build_opencv_grabcut

__all__ = ["GrabCutPredictor", "build_opencv_grabcut"]
