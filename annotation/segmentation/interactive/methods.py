"""What the platform knows about methods: only what each one declares when it registers
(``inference.register_method``), read here without loading torch.

The annotation page's menu, the tools its canvas enables, the prompt kinds the socket accepts
and which objects a worker computes together all come from this metadata; no platform code
branches on a method's name, so adding a method is one registration (plus its module in
``MASKWRIGHT["METHOD_PLUGINS"]`` when it lives outside ``inference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from .library import registry

NO_BACKBONE = "none"  # the backbone name of a method that takes none (stored in model names)
TRAINED_PREFIX = "model-"  # a "backbone" naming a project's trained model: model-<id>
EDIT = "edit"  # manual brush strokes: the platform applies them on top of any method's mask
# "Show candidate i of the object's newest prediction" (a method's ranked alternatives, e.g.
# SAM's three masks): the platform picks it from the method's answer, whatever the method.
CANDIDATE = "candidate"
PLATFORM_KINDS = (EDIT, CANDIDATE)  # logged like prompts, read by no method
MAX_CANDIDATES = 8  # candidates offered per answer; a chosen index is below this


def info(method: str):
    """The registered :class:`inference.MethodInfo` of ``method``, or None."""
    try:
        return registry().method_info(method)
    except KeyError:
        return None


def is_multi_object(method: str) -> bool:
    found = info(method)
    return bool(found and found.multi_object)


def accepts(method: str, kind: str) -> bool:
    """Whether a prompt of ``kind`` may be logged while ``method`` is chosen (the platform's
    own kinds, brush edits and candidate choices, always)."""
    if kind in PLATFORM_KINDS:
        return True
    found = info(method)
    return bool(found and kind in found.prompts)


def trained_model_id(backbone: str) -> int | None:
    """The model id a ``model-<id>`` backbone names, else None."""
    if backbone.startswith(TRAINED_PREFIX) and backbone[len(TRAINED_PREFIX) :].isdigit():
        return int(backbone[len(TRAINED_PREFIX) :])
    return None


def _entry(found, backbones: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": found.name,
        "label": found.label,
        "backbones": backbones,
        "multi_object": found.multi_object,
        "prompts": list(found.prompts),
        **extra,
    }


Reports = dict[str, dict[str, Any] | None]  # hostname → checkpoints report (.checkpoints)


def _menu_names() -> tuple[dict[str, Any], list[str]]:
    """The interactive methods by name, and the names the menu may show, in order."""
    infos = {i.name: i for i in registry().method_infos() if i.interactive}
    wanted = settings.MASKWRIGHT["INTERACTIVE_METHODS"]
    return infos, ([n for n in wanted if n in infos] if wanted else list(infos))


def offered(
    trained: Sequence[tuple[str, int, str]] = (),
    reports: Reports | None = None,
) -> list[dict[str, Any]]:
    """The annotation page's menu: every interactive method that runs without a trained model,
    with the backbones this deployment has weights for, then the project's ``trained`` models,
    ``(method, model id, model name)``, for methods that need one. ``INTERACTIVE_METHODS``,
    when set, narrows the menu and orders it. The first is the default.

    A backbone has weights when it is in ``INTERACTIVE_BACKBONES``, except a variant whose
    checkpoint must be on the worker's disk (the SAM families, :mod:`.checkpoints`): that one
    is offered exactly when some alive worker reports its checkpoint, whatever the setting
    says (a worker that has none could only fail). ``reports``: the workers' checkpoint
    reports; default, those of the workers alive now (read from Redis only when needed).
    """
    from . import checkpoints, dispatch

    infos, names = _menu_names()
    have = set(settings.MASKWRIGHT["INTERACTIVE_BACKBONES"])
    needs = checkpoints.needs_weights()
    present: set[tuple[str, str]] = set()  # (method, variant) with a checkpoint on a worker
    if any((n, b) in needs for n in names for b in infos[n].backbones):
        present = checkpoints.present(dispatch.checkpoint_reports() if reports is None else reports)

    def usable(name: str, backbone: str) -> bool:
        if (name, backbone) in needs:
            return (name, backbone) in present
        return backbone in have

    out = []
    for name in names:
        found = infos[name]
        if found.trained is not None:
            continue  # offered with a project's model below
        backbones = (
            [b for b in found.backbones if usable(name, b)] if found.backbones else [NO_BACKBONE]
        )
        if backbones:
            out.append(_entry(found, backbones))
    for method, model_id, model_name in trained:
        found = infos.get(method)
        if found is None or found.trained is None or method not in names:
            continue
        out.append(
            _entry(
                found,
                [f"{TRAINED_PREFIX}{model_id}"],
                label=f"{found.label} · {model_name}",
                model_id=model_id,
            )
        )
    return out


def unavailable(
    offered_now: list[dict[str, Any]], reports: Reports | None = None
) -> list[dict[str, Any]]:
    """The menu's methods that :func:`offered` left out for want of a checkpoint on any
    worker: ``{"name", "label", "why"}`` each, ``why`` naming the model id and the folder to
    put it in (the page shows them disabled, ``why`` as their title). ``offered_now``: what
    :func:`offered` returned; ``reports``: as there."""
    from . import checkpoints, dispatch

    infos, names = _menu_names()
    needs = checkpoints.needs_weights()
    taken = {m["name"] for m in offered_now}
    out = []
    found_by: Reports | None = reports
    for name in names:
        found = infos[name]
        ids = [needs[(name, b)] for b in found.backbones if (name, b) in needs]
        if name in taken or found.trained is not None or not ids:
            continue
        if found_by is None:
            found_by = dispatch.checkpoint_reports()
        why = checkpoints.why_missing(ids, any_worker=bool(found_by))
        out.append({"name": name, "label": found.label, "why": why})
    return out


def text_finding(reports: Reports | None = None) -> dict[str, Any]:
    """Who answers "Find all" here: the first registered method that finds objects by text
    (``MethodInfo.text_finder``) with a backbone a worker can serve, as for the menu (a
    variant needing a checkpoint only where an alive worker reports it). ``{"available",
    "method", "backbone", "model_id", "why"}``: ``model_id`` is the checkpoint's id (what the
    found masks' ``model_name`` says), else ``<method>/<backbone>``; when none is available,
    method, backbone and model id are None and ``why`` names the model id and the folder to
    put it in. ``reports``: as for :func:`offered`."""
    from . import checkpoints, dispatch

    finders = registry().text_finders()
    needs = checkpoints.needs_weights()
    found_by: Reports = {}
    if any((i.name, b) in needs for i in finders for b in i.backbones):
        found_by = dispatch.checkpoint_reports() if reports is None else reports
    present = checkpoints.present(found_by)
    have = set(settings.MASKWRIGHT["INTERACTIVE_BACKBONES"])
    for found in finders:
        for backbone in found.backbones or (NO_BACKBONE,):
            key = (found.name, backbone)
            if key in present or (
                key not in needs and (backbone == NO_BACKBONE or backbone in have)
            ):
                model_id = needs.get(key, f"{found.name}/{backbone}")
                return {
                    "available": True,
                    "method": found.name,
                    "backbone": backbone,
                    "model_id": model_id,
                    "why": None,
                }
    ids = [needs[(i.name, b)] for i in finders for b in i.backbones if (i.name, b) in needs]
    why = (
        checkpoints.why_missing(ids, any_worker=bool(found_by))
        if ids
        else "no method that finds objects by text is installed"
    )
    return {"available": False, "method": None, "backbone": None, "model_id": None, "why": why}


def catalog() -> list[dict[str, Any]]:
    """Every registered method's metadata, JSON-safe (``GET /api/methods/``)."""
    return [found.as_dict() for found in registry().method_infos()]


def trained_info(method: str):
    """The ``TrainedWeights`` of a method that takes a project's model file, else None."""
    found = info(method)
    return found.trained if found is not None else None
