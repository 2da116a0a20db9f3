"""Find a model's checkpoint on local disk; never download.

A model id (``"facebook/dinov2-base"``) resolves to a local folder, trying in order:

1. the id itself, when it is an existing folder (an explicit path always wins);
2. ``$MASKWRIGHT_WEIGHTS_DIR/<owner>--<name>`` (the id with ``/`` replaced by ``--``, the same
   spelling as the Hugging Face cache's ``models--<owner>--<name>``, so two owners' models of the
   same name cannot collide), e.g. ``$MASKWRIGHT_WEIGHTS_DIR/facebook--dinov2-base``;
3. ``$MASKWRIGHT_WEIGHTS_DIR/<name>`` (the id's last part), e.g. ``.../dinov2-base``, for folders
   made with ``hf download <id> --local-dir <dir>/<name>``;
4. the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``), through
   ``huggingface_hub.snapshot_download(..., local_files_only=True)``.

Nothing here opens a network connection: the cache lookup always passes ``local_files_only=True``,
whatever ``HF_HUB_OFFLINE`` says. A miss raises :class:`WeightsNotFound`, naming the id, every
place tried and the ``MASKWRIGHT_WEIGHTS_DIR`` setting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

WEIGHTS_DIR_ENV = "MASKWRIGHT_WEIGHTS_DIR"


class WeightsNotFound(FileNotFoundError):
    """No local checkpoint for a model id (the message says where it looked and what to set)."""

    def __init__(self, model_id: str, tried: list[str]) -> None:
        self.model_id = model_id
        self.tried = tried
        local_name = model_id.replace("/", "--")
        super().__init__(
            f"no local weights for model {model_id!r} (nothing is ever downloaded). Looked in: "
            f"{'; '.join(tried) or 'nowhere'}. Put the checkpoint folder (diffusers or "
            f"transformers layout) at $MASKWRIGHT_WEIGHTS_DIR/{local_name} and set "
            f"{WEIGHTS_DIR_ENV} to its parent folder, or pre-fill the Hugging Face cache "
            f"(e.g. `hf download {model_id}` on a machine with network access)."
        )


def weights_dir() -> Path | None:
    """The folder named by ``$MASKWRIGHT_WEIGHTS_DIR``, or None when unset or empty."""
    value = os.environ.get(WEIGHTS_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def resolve_weights(
    model_id: str,
    *,
    root: str | Path | None = None,
    hf_cache_dir: str | Path | None = None,
) -> Path:
    """The local folder holding ``model_id``'s checkpoint (see the module docstring for the order).

    Args:
        model_id: a Hugging Face id (``"owner/name"``) or a path to a checkpoint folder.
        root: the weights folder to search; default ``$MASKWRIGHT_WEIGHTS_DIR``.
        hf_cache_dir: the Hugging Face hub cache to search; default huggingface_hub's own
            (``HF_HUB_CACHE``, i.e. ``~/.cache/huggingface/hub``).

    Returns:
        An existing folder.

    Raises:
        WeightsNotFound: no candidate exists.
    """
    tried: list[str] = []
    as_path = Path(model_id).expanduser()
    if as_path.is_dir():
        return as_path
    if as_path.is_absolute() or model_id.startswith((".", "~")):
        raise WeightsNotFound(model_id, [f"{as_path} (not a folder)"])

    base = Path(root).expanduser() if root is not None else weights_dir()
    if base is None:
        tried.append(f"${WEIGHTS_DIR_ENV} (unset)")
    else:
        for name in dict.fromkeys([model_id.replace("/", "--"), model_id.rsplit("/", 1)[-1]]):
            candidate = base / name
            if candidate.is_dir():
                return candidate
            tried.append(str(candidate))

    cached = _from_hf_cache(model_id, hf_cache_dir)
    if cached is not None:
        return cached
    tried.append(f"Hugging Face cache ({hf_cache_dir or 'default location'})")
    raise WeightsNotFound(model_id, tried)


def _from_hf_cache(model_id: str, cache_dir: str | Path | None) -> Path | None:
    """The cached snapshot folder of ``model_id``, or None; local files only."""
    if model_id.count("/") != 1:
        return None  # not a hub id (e.g. a missing path): the hub would reject it anyway
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:  # the hub client comes with transformers/diffusers; without them, no cache
        return None
    try:
        folder = snapshot_download(repo_id=model_id, cache_dir=cache_dir, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError):
        return None
    return Path(folder)


_LOADED: dict[tuple[str, int, str], Any] = {}
_LOADED_LOCK = threading.Lock()


def load_once(path: str | Path, device: str, load: Callable[[Path, str], Any]) -> Any:
    """``load(path, device)``, once per (file, modification time, device): a worker serves many
    images with one network, and a file rewritten in place is loaded again."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, device)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load(path, device)
        return _LOADED[key]
