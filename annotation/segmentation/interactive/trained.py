"""Projects' trained models on the interactive worker: a ready model's file, looked up once.

Torch-free to import; the method's registered ``load_trained`` loads the network.
"""

from __future__ import annotations

import threading
from typing import Any

from annotation.modelstore.files import local_model_file
from annotation.modelstore.selectors import model_file


class LoadedModels:
    """Ready models' files, looked up once per worker. The method's ``load_trained`` keeps the
    network loaded once and shares it; each image gets its own predictor around it."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._files: dict[int, tuple[str, str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def new_predictor(self, model_id: int, method: str) -> Any:
        """A fresh predictor (its own image state) around the network of ready model
        ``model_id``; LookupError if the model is not usable or is not a ``method`` model."""
        with self._lock:
            if model_id not in self._files:
                row = model_file(model_id)
                if row is None:
                    raise LookupError(f"model {model_id} is not a ready model")
                self._files[model_id] = row
            kind, relative, config = self._files[model_id]
        if kind != method:
            raise LookupError(f"model {model_id} is a {kind} model, not {method}")
        from .methods import registry

        # On a remote media store the file comes through this worker's checked cache; the
        # network is loaded (once, by path) inside the block, while the entry is pinned.
        with local_model_file(relative) as path:
            return registry().load_trained(kind, path, dict(config or {}), self.device)
