"""Maskwright's inference library: interactive segmentation predictors, pure numpy + torch.

Public surface (used as is by outside evaluation scripts)::

    from inference import build_predictor, Click
    p = build_predictor("m2n2", backbone="effnet-lite0")
    p.set_image(rgb)                                  # H×W×3 uint8
    result = p.predict([Click(x=120, y=80, positive=True)])
    result.mask                                       # H×W bool

Several objects at once: ``p.predict_objects([Click(..., object_id=1), Scribble(...,
object_id=2), ...])`` → ``{object_id: MaskResult}``. What each method accepts is in
:func:`method_infos` (reading it imports no torch).

No Django, Celery or Channels here: the platform calls this library, never the reverse.
"""

from .jobs import BatchJob, Param
from .predictor import Predictor, PredictorNotReady, TextFinding
from .registry import (
    MethodInfo,
    TrainedWeights,
    batch_jobs,
    build_predictor,
    build_text_finder,
    convert_trained,
    list_methods,
    load_plugins,
    load_trained,
    method_info,
    method_infos,
    register_method,
    text_finders,
)
from .structures import (
    PRIOR_KIND,
    PROMPT_KINDS,
    Box,
    Click,
    ExtremePoints,
    MaskResult,
    PriorMask,
    Prompt,
    Scribble,
    Text,
    clicks_from_prompts,
    prompt_clicks,
)

__all__ = [
    "PRIOR_KIND",
    "PROMPT_KINDS",
    "BatchJob",
    "Box",
    "Click",
    "ExtremePoints",
    "MaskResult",
    "MethodInfo",
    "Param",
    "Predictor",
    "PredictorNotReady",
    "PriorMask",
    "Prompt",
    "Scribble",
    "Text",
    "TextFinding",
    "TrainedWeights",
    "batch_jobs",
    "build_predictor",
    "build_text_finder",
    "clicks_from_prompts",
    "convert_trained",
    "list_methods",
    "load_plugins",
    "load_trained",
    "method_info",
    "method_infos",
    "prompt_clicks",
    "register_method",
    "text_finders",
]
