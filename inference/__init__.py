"""Maskwright's inference library: interactive segmentation predictors, pure numpy + torch.

Public surface (used as is by outside evaluation scripts)::

    from inference import build_predictor, Click
    p = build_predictor("m2n2", backbone="effnet-lite0")
    p.set_image(rgb)                                  # H×W×3 uint8
    result = p.predict([Click(x=120, y=80, positive=True)])
    result.mask                                       # H×W bool

No Django, Celery or Channels here: the platform calls this library, never the reverse.
"""
from .predictor import Predictor, PredictorNotReady
from .registry import build_predictor, list_methods, register_method
from .structures import Click, ExtremePoints, MaskResult, Scribble

__all__ = [
    "Click",
    "ExtremePoints",
    "MaskResult",
    "Predictor",
    "PredictorNotReady",
    "Scribble",
    "build_predictor",
    "list_methods",
    "register_method",
]
