"""Which model checkpoints each interactive worker has on its own disk, and where the others go.

Some methods serve only with a published checkpoint on the worker that computes them (they say
which, per backbone, in their registered ``MethodInfo.checkpoints``; nothing is ever downloaded).
Workers do not share a disk, so each one looks for itself:

* worker side: :func:`discover` resolves every variant's model id with
  :func:`inference.weights.resolve_weights` and measures each folder found;
  :func:`encode` is what the heartbeat (:func:`.worker.start_heartbeat`) writes to
  ``mw:iworker-weights:<hostname>`` (:func:`.keys.weights`) with the alive key's expiry, so a
  report lives exactly as long as its worker;
* web side (torch-free): :func:`.dispatch.checkpoint_reports` reads the reports of the workers
  alive now; :func:`present` is what the method menu (:func:`.methods.offered`) offers from
  them and where a click may go (:func:`.dispatch.choose_worker`), and :func:`overview` is
  ``GET /api/checkpoints/``.

A report (JSON)::

    {"device": "cuda:0", "weights_dir": "/models", "checked_at": 1765000000.0,
     "found": {"sam/vit-b": {"method": "sam", "variant": "vit-b",
                             "model_id": "facebook/sam-vit-base",
                             "path": "/models/facebook--sam-vit-base", "bytes": 375042383,
                             "device": "cuda:0"}, ...},
     "missing": {"sam/vit-l": {"method": "sam", "variant": "vit-l",
                               "model_id": "facebook/sam-vit-large",
                               "folder": "/models/facebook--sam-vit-large"}, ...}}

``folder`` is where to put the checkpoint: the worker's own ``$MASKWRIGHT_WEIGHTS_DIR`` when
set, else the variable's name (the worker has none yet).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from . import keys

log = logging.getLogger(__name__)

RESCAN_S = 30.0  # a checkpoint folder put on a running worker is offered within this delay
WEIGHTS_DIR_VAR = "$MASKWRIGHT_WEIGHTS_DIR"  # inference.weights.WEIGHTS_DIR_ENV, as people type it


def needs_weights() -> dict[tuple[str, str], str]:
    """(method, backbone) → model id, for every backbone a worker serves only with its
    checkpoint on local disk (the methods' registered ``checkpoints``; imports no torch)."""
    from .library import registry

    return {
        (info.name, backbone): model_id
        for info in registry().method_infos()
        for backbone, model_id in info.checkpoints
    }


def folder_name(model_id: str) -> str:
    """The folder name ``resolve_weights`` tries first: ``facebook/sam3`` → ``facebook--sam3``."""
    return model_id.replace("/", "--")


def folder_for(model_id: str, weights_dir: str | Path | None = None) -> str:
    """Where ``model_id``'s checkpoint folder goes: under ``weights_dir`` (a worker's
    ``$MASKWRIGHT_WEIGHTS_DIR``) when known, else under the variable's name."""
    base = str(weights_dir) if weights_dir else WEIGHTS_DIR_VAR
    return f"{base.rstrip('/')}/{folder_name(model_id)}"


def folder_size(path: str | Path) -> int:
    """Bytes on disk of the files under ``path``, links followed and each file counted once
    (a Hugging Face cache snapshot links its files to shared blobs)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for parent, _dirs, files in os.walk(path, followlinks=True):
        for name in files:
            try:
                st = os.stat(os.path.join(parent, name))
            except OSError:  # a dangling link (an interrupted download): not part of the size
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def discover(
    device: str,
    *,
    root: str | Path | None = None,
    hf_cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """This machine's report (the module docstring's format): every variant of
    :func:`needs_weights`, found (folder, size) or missing (the folder to use).

    Args:
        device: the device the worker computes on (``INTERACTIVE_DEVICE``), reported as is.
        root: the weights folder; default ``$MASKWRIGHT_WEIGHTS_DIR``.
        hf_cache_dir: the Hugging Face hub cache; default huggingface_hub's own.
    """
    from inference.weights import WeightsNotFound, resolve_weights, weights_dir

    base = Path(root).expanduser() if root is not None else weights_dir()
    found: dict[str, dict[str, Any]] = {}
    missing: dict[str, dict[str, Any]] = {}
    for (method, variant), model_id in needs_weights().items():
        entry: dict[str, Any] = {"method": method, "variant": variant, "model_id": model_id}
        try:
            path = resolve_weights(model_id, root=base, hf_cache_dir=hf_cache_dir)
        except WeightsNotFound:
            missing[f"{method}/{variant}"] = {**entry, "folder": folder_for(model_id, base)}
            continue
        found[f"{method}/{variant}"] = {
            **entry,
            "path": str(path),
            "bytes": folder_size(path),
            "device": device,
        }
    return {
        "device": device,
        "weights_dir": str(base) if base is not None else None,
        "checked_at": time.time(),
        "found": found,
        "missing": missing,
    }


def encode(report: dict[str, Any]) -> str:
    """The report as the heartbeat stores it under :func:`.keys.weights`."""
    return json.dumps(report, sort_keys=True)


def publish(hostname: str, report: dict[str, Any]) -> None:
    """Store ``hostname``'s report until the alive key would expire (the heartbeat does this
    every beat; here for a one-off)."""
    keys.redis_client().set(keys.weights(hostname), encode(report), ex=keys.ALIVE_TTL_S)


# -- web side ----------------------------------------------------------------------------------
def present(found_by: dict[str, dict[str, Any] | None]) -> set[tuple[str, str]]:
    """The (method, variant) pairs whose checkpoint some worker of ``found_by`` has."""
    have: set[tuple[str, str]] = set()
    for report in found_by.values():
        for entry in ((report or {}).get("found") or {}).values():
            have.add((entry["method"], entry["variant"]))
    return have


def why_missing(model_ids: list[str], any_worker: bool) -> str:
    """Why a method needing one of ``model_ids`` (default first) is not offered."""
    first = model_ids[0]
    others = " or of any other variant" if len(model_ids) > 1 else ""
    where = f"put the checkpoint folder at {folder_for(first)} on a worker"
    if not any_worker:
        return f"no interactive worker is running; {where} (for {first}) and start it"
    return f"no worker has the weights of {first}{others}: {where}"


def overview(found_by: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Per worker of ``found_by`` (:func:`.dispatch.checkpoint_reports`): hostname, device,
    weights folder, the checkpoints found (sorted by method and variant) and the missing ones
    with their folder (``GET /api/checkpoints/``)."""
    order = {key: i for i, key in enumerate(needs_weights())}

    def ranked(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            entries.values(),
            key=lambda e: order.get((e["method"], e["variant"]), len(order)),
        )

    out = []
    for hostname in sorted(found_by):
        report = found_by[hostname] or {}
        out.append(
            {
                "hostname": hostname,
                "reported": bool(report),
                "device": report.get("device"),
                "weights_dir": report.get("weights_dir"),
                "checked_at": report.get("checked_at"),
                "found": ranked(report.get("found") or {}),
                "missing": ranked(report.get("missing") or {}),
            }
        )
    return out
