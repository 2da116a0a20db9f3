"""What the platform knows about methods: only what each one declares when it registers
(``inference.register_method``), read here without loading torch.

The annotation page's menu, the tools its canvas enables, the prompt kinds the socket accepts
and which objects a worker computes together all come from this metadata; no platform code
branches on a method's name, so adding a method is one registration (plus its module in
``MASKWRIGHT["METHOD_PLUGINS"]`` when it lives outside ``inference``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

NO_BACKBONE = "none"  # the backbone name of a method that takes none (stored in model names)
TRAINED_PREFIX = "model-"  # a "backbone" naming a project's trained model: model-<id>
EDIT = "edit"  # manual brush strokes: the platform applies them on top of any method's mask
# "Show candidate i of the object's newest prediction" (a method's ranked alternatives, e.g.
# SAM's three masks): the platform picks it from the method's answer, whatever the method.
CANDIDATE = "candidate"
PLATFORM_KINDS = (EDIT, CANDIDATE)  # logged like prompts, read by no method
MAX_CANDIDATES = 8  # candidates offered per answer; a chosen index is below this


def registry():
    """The ``inference`` package with the deployment's plugin methods registered."""
    import inference

    inference.load_plugins(settings.MASKWRIGHT["METHOD_PLUGINS"])
    return inference


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


def offered(trained: list[tuple[str, int, str]] = ()) -> list[dict[str, Any]]:
    """The annotation page's menu: every interactive method that runs without a trained model,
    with the backbones this deployment has weights for (``INTERACTIVE_BACKBONES``), then the
    project's ``trained`` models, ``(method, model id, model name)``, for methods that need one.
    ``INTERACTIVE_METHODS``, when set, narrows the menu and orders it. The first is the default."""
    infos = {i.name: i for i in registry().method_infos() if i.interactive}
    wanted = settings.MASKWRIGHT["INTERACTIVE_METHODS"]
    names = [n for n in wanted if n in infos] if wanted else list(infos)
    have = set(settings.MASKWRIGHT["INTERACTIVE_BACKBONES"])
    out = []
    for name in names:
        found = infos[name]
        if found.trained is not None:
            continue  # offered with a project's model below
        backbones = [b for b in found.backbones if b in have] if found.backbones else [NO_BACKBONE]
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


def catalog() -> list[dict[str, Any]]:
    """Every registered method's metadata, JSON-safe (``GET /api/methods/``)."""
    return [found.as_dict() for found in registry().method_infos()]


def trained_info(method: str):
    """The ``TrainedWeights`` of a method that takes a project's model file, else None."""
    found = info(method)
    return found.trained if found is not None else None
