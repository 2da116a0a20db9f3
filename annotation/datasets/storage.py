"""Where image files live: under MEDIA_ROOT, addressed by dataset and content digest."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings


def media_path(relative: str) -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    # Stored paths are written by us, but a row edited by hand must still not escape MEDIA_ROOT.
    if root not in path.parents:
        raise ValueError(f"{relative!r} is outside the media folder")
    return path


def read_rgb(relative: str) -> np.ndarray:
    """A stored (upright) image as a writable H×W×3 uint8 RGB array."""
    from PIL import Image as PILImage

    with PILImage.open(media_path(relative)) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def image_relpath(dataset_id: int, sha256: str, ext: str) -> str:
    return f"datasets/{dataset_id}/{sha256[:2]}/{sha256}.{ext}"


def thumbnail_relpath(dataset_id: int, sha256: str) -> str:
    return f"thumbnails/{dataset_id}/{sha256[:2]}/{sha256}.jpg"


def scratch_file() -> tuple[int, Path]:
    """A temporary file on the media disk, so that the final move is a cheap rename."""
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="ingest-")
    return fd, Path(name)


def move_into_place(src: Path, relative: str) -> Path:
    dest = media_path(relative)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


def remove_quietly(*relatives: str) -> None:
    for rel in relatives:
        if rel:
            try:
                media_path(rel).unlink()
            except FileNotFoundError:
                pass
