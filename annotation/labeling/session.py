"""What one annotation socket has open (:class:`Session`), and the checks and object views
that every service behind the socket shares (:mod:`.live`, :mod:`.finding`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotation.common import rle
from annotation.common.exceptions import ApplicationError, NotFound
from annotation.projects.access import role_of
from annotation.projects.models import Role

from . import permissions
from .models import Instance, Prompt
from .saves import history


@dataclass
class Session:
    """What one socket has open. Kept by the consumer; passed to every service call."""

    user: Any
    reply_channel: str
    image_id: int | None = None
    width: int = 0
    height: int = 0
    project_id: int | None = None
    method: str = ""
    backbone: str = ""
    worker: str | None = None  # the worker this session sticks to
    next_image_id: int | None = None  # the task's next image (prefetched when idle)
    # (cancel key, image) of that prefetch until the next prompt, which calls it off or stops
    # it (prefetching.cancel_queued)
    prefetch_pending: tuple[str, int] | None = None
    sent: dict[int, int] = field(default_factory=dict)  # instance → newest rev queued
    finding: int | None = None  # the seq of this socket's Find all in flight (.finding)
    seqs: dict[int, dict[int, tuple[int, float]]] = field(
        default_factory=dict
    )  # instance → {rev: (seq, received_at)}


def prompts_of(instance_ids: list[int]) -> dict[int, list[Prompt]]:
    out: dict[int, list[Prompt]] = {i: [] for i in instance_ids}
    for p in Prompt.objects.filter(instance_id__in=instance_ids).order_by("instance_id", "seq"):
        out[p.instance_id].append(p)
    return out


def candidates_of(instance: Instance) -> dict[str, Any] | None:
    """The ranked masks behind the object's stored mask (``{"count", "index", "scores"}``),
    or None when the mask has been written since they were stored (or never had any)."""
    stored = instance.candidates
    if not isinstance(stored, dict) or stored.get("version") != instance.version:
        return None
    return {k: stored[k] for k in ("count", "index", "scores") if k in stored}


def object_out(instance: Instance, prompts: list[Prompt], *, with_mask: bool) -> dict[str, Any]:
    active = [p for p in prompts if not p.undone]
    out = {
        "id": instance.id,
        "label_id": instance.label_id,
        "version": instance.version,
        "source": instance.source,
        "review_state": instance.review_state,
        "pseudo": instance.pseudo,  # pending and pseudo: a proposal the canvas hides by default
        # when its newest prompt was logged (ms since the epoch; null with none): Ctrl+Z with
        # no object selected undoes on the object edited last
        "edited_at": max((int(p.created_at.timestamp() * 1000) for p in prompts), default=None),
        "prompts": [
            {"seq": p.seq, "kind": p.kind, "payload": p.payload, "method": p.method} for p in active
        ],
        **history([p.undone for p in prompts]),
        "candidates": candidates_of(instance),
    }
    if with_mask:
        out["box"], out["rle"] = rle.crop_stored(instance.mask) if instance.area else (None, None)
    return out


def require_open(session: Session) -> None:
    if session.image_id is None:
        raise ApplicationError("open an image first")


def role_now(session: Session) -> Role:
    """The user's role in the open image's project, read now, not at open: a member removed
    meanwhile gets 404, as a non-member does."""
    role = role_of(session.user, session.project_id)
    if role is None:
        raise NotFound(f"image {session.image_id} not found")
    return role


def may(session: Session, action: str) -> None:
    """403 unless the user's role may ``action`` (``permissions``: the rule REST applies too).
    The role is read now, not at open: a member demoted or removed meanwhile is refused."""
    permissions.require(role_now(session), action)
