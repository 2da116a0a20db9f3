"""Speed and quality benchmarks of the inference library (``maskwright bench <method>``)."""
from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "MASKWRIGHT_SHARED"


def shared_dir() -> Path:
    """The shared data folder: ``$MASKWRIGHT_SHARED``, else ``shared/`` beside the repository
    (``<repo>/../shared``), where ``data/grabcut`` and ``data/coco_sample128`` live."""
    configured = os.environ.get(SHARED_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared"
