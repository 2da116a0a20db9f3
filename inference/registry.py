"""Methods by name: ``@register_method("m2n2")`` on a builder, ``build_predictor("m2n2")``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .predictor import Predictor

_BUILDERS: dict[str, Callable[..., Predictor]] = {}


def register_method(name: str) -> Callable[[Callable[..., Predictor]], Callable[..., Predictor]]:
    def wrap(builder: Callable[..., Predictor]) -> Callable[..., Predictor]:
        if name in _BUILDERS:
            raise ValueError(f"method {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return wrap


# Modules whose import registers methods; imported on first lookup so that importing
# `inference` stays cheap.
_METHOD_MODULES = (
    "inference.methods.m2n2",
    "inference.methods.mis",
    "inference.methods.salt",
    "inference.methods.dynamite",
    "inference.methods.exits",
    "inference.evaluation.baselines",
)


def _load_all() -> None:
    import importlib

    for module in _METHOD_MODULES:
        importlib.import_module(module)


def list_methods() -> list[str]:
    _load_all()
    return sorted(_BUILDERS)


def build_predictor(method: str, *, backbone: str | None = None, device: str = "cpu", **kwargs: Any) -> Predictor:
    """Build the predictor of ``method`` (see :func:`list_methods`)."""
    _load_all()
    if method not in _BUILDERS:
        known = ", ".join(list_methods()) or "none yet"
        raise KeyError(f"unknown method {method!r}; registered: {known}")
    if backbone is not None:
        kwargs["backbone"] = backbone
    return _BUILDERS[method](device=device, **kwargs)
