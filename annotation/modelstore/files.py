"""A model file as a real file on this machine, for the worker that loads it (torch, safetensors).

On the local store it is the stored file; on a remote store it is this process's cache entry
(``annotation.common.media.local_file``), checked against what the database says of the file:
its sha256 where the stored bytes are the ones hashed (an upload not yet imported, a model
trained here), else its size (an imported upload is rewritten as safetensors after hashing) and
the digest the cache recorded when it fetched it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from annotation.common import media

from .models import TrainedModel


def expected_checksum(relative: str) -> tuple[str | None, int | None]:
    """(sha256, size in bytes) the stored ``relative`` must have; None where unknown."""
    row = (
        TrainedModel.objects.filter(file=relative)
        .values("sha256", "size_bytes", "origin", "state")
        .first()
    )
    if row is None:
        return None, None
    hashed_as_stored = (
        row["origin"] == TrainedModel.Origin.TRAINED or row["state"] == TrainedModel.State.IMPORTING
    )
    sha = row["sha256"] if hashed_as_stored and len(row["sha256"]) == 64 else None
    return sha, (int(row["size_bytes"]) or None)


@contextmanager
def local_model_file(relative: str) -> Iterator[Path]:
    """A path holding the model file ``relative``, valid inside the ``with`` block."""
    if media.is_local():
        with media.local_file(relative) as path:
            yield path
        return
    sha, size = expected_checksum(relative)
    limit = settings.MASKWRIGHT["MAX_MODEL_BYTES"]
    with media.local_file(relative, sha256=sha, size_bytes=size, max_bytes=limit) as path:
        yield path
