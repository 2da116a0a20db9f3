"""Methods by name, each with the metadata a caller needs before building it.

A method package registers itself in its ``__init__`` with a :class:`MethodInfo` and the dotted
path of its builder, so that listing methods and reading what they accept imports no torch::

    register_method(MethodInfo("m2n2", "M2N2 (clicks)", prompts=("click",)),
                    builder="inference.methods.m2n2.predictor:build_m2n2")

``@register_method(info)`` on a builder function works too, and so does the short
``@register_method("name")`` (label = name, clicks only). Plugins register the same way from
their own modules: :func:`load_plugins` imports them, and setuptools entry points of the group
``maskwright.methods`` are imported on the first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .jobs import BatchJob

if TYPE_CHECKING:  # the predictor contract imports numpy only, but keep this module bare
    from .predictor import Predictor, TextFinding

ENTRY_POINT_GROUP = "maskwright.methods"

Builder = Callable[..., "Predictor"]


@dataclass(frozen=True)
class TrainedWeights:
    """A method whose interactive use needs a trained model file of the project.

    ``load`` and ``convert`` are ``"module:function"`` paths, imported only when called:
    ``load(path: Path, config: dict, device: str) -> Predictor`` and
    ``convert(source: Path, target: Path, config: dict) -> dict`` (load ``source`` strictly,
    write safetensors at ``target``, return the config to store beside it).
    """

    description: str  # e.g. "a DynaMITe checkpoint (.safetensors, or the official .pth)"
    suffixes: tuple[str, ...]
    load: str
    convert: str
    # Architectures an upload may name (``config["backbone"]`` for ``convert``); () = none to
    # choose, the file alone says what it is.
    backbones: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "suffixes": list(self.suffixes),
            "backbones": list(self.backbones),
        }


@dataclass(frozen=True)
class MethodInfo:
    """What a method is and accepts, readable without building it (or importing torch).

    ``prompts``: the prompt kinds it reads (see ``inference.structures.PROMPT_KINDS``).
    ``multi_object``: its ``predict_objects`` answers for every object at once from all
    prompts. ``backbones``: those it can take, default first; () = it takes none.
    ``trained``: set when interactive use needs a trained model file. ``interactive``: False
    for batch-only methods. ``batch``: the batch jobs it offers (``inference.jobs``).
    ``checkpoints``: (backbone, model id) of the backbones it serves only with that published
    checkpoint on the worker's own disk (``inference.weights``; never downloaded), so that a
    platform offers each only where it was found. ``text_finder``: set when the method finds
    every instance of a described thing ("find every <label>"): the ``"module:function"`` path
    of a builder called as ``function(backbone=..., device=...)`` that returns a
    :class:`~inference.predictor.TextFinding` (:func:`build_text_finder`; imported only then).
    """

    name: str
    label: str
    prompts: tuple[str, ...]
    multi_object: bool = False
    backbones: tuple[str, ...] = ()
    trained: TrainedWeights | None = None
    interactive: bool = True
    summary: str = ""
    batch: tuple[BatchJob, ...] = ()
    checkpoints: tuple[tuple[str, str], ...] = ()
    text_finder: str = ""

    def __post_init__(self) -> None:
        if self.text_finder and ":" not in self.text_finder:
            raise ValueError(f"text_finder must be 'module:function', got {self.text_finder!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description for the platform's method list."""
        return {
            "name": self.name,
            "label": self.label,
            "prompts": list(self.prompts),
            "multi_object": self.multi_object,
            "backbones": list(self.backbones),
            "default_backbone": self.backbones[0] if self.backbones else None,
            "needs_trained_model": self.trained is not None,
            "trained": self.trained.as_dict() if self.trained is not None else None,
            "summary": self.summary,
            "batch": [job.as_dict() for job in self.batch],
            "checkpoints": dict(self.checkpoints),
            "finds_text": bool(self.text_finder),
        }


# name → builder, or its "module:function" path until first built. The source of truth for
# what is registered (tests drop a name with ``_BUILDERS.pop(name)``).
_BUILDERS: dict[str, Builder | str] = {}
_INFOS: dict[str, MethodInfo] = {}

# Packages whose import registers the built-in methods (torch-free: builders are strings).
_METHOD_MODULES = (
    "inference.methods.m2n2",
    "inference.methods.mis",
    "inference.methods.salt",
    "inference.methods.dynamite",
    "inference.methods.exits",
    "inference.methods.grabcut",
    "inference.methods.sam",
)
_loaded = False


def _add(info: MethodInfo, builder: Builder | str) -> None:
    if info.name in _BUILDERS:
        raise ValueError(f"method {info.name!r} is registered twice")
    taken = {job.kind for other in _INFOS.values() for job in other.batch}
    for job in info.batch:
        if job.kind in taken:
            raise ValueError(f"batch job kind {job.kind!r} of {info.name!r} is taken")
    _BUILDERS[info.name] = builder
    _INFOS[info.name] = info


@overload
def register_method(info: MethodInfo | str, builder: str) -> None: ...


@overload
def register_method(
    info: MethodInfo | str, builder: None = None
) -> Callable[[Builder], Builder]: ...


def register_method(
    info: MethodInfo | str, builder: str | None = None
) -> Callable[[Builder], Builder] | None:
    """Register a method: ``register_method(info, builder="pkg.module:function")`` lazily, or
    as a decorator ``@register_method(info)`` on the builder. A bare name stands for
    ``MethodInfo(name, label=name, prompts=("click",))``.

    A builder is called as ``builder(device=..., **kwargs)`` (``backbone=`` when given) and
    returns a :class:`~inference.predictor.Predictor`.
    """
    if isinstance(info, str):
        info = MethodInfo(name=info, label=info, prompts=("click",))
    if builder is not None:
        if ":" not in builder:
            raise ValueError(f"builder must be 'module:function', got {builder!r}")
        _add(info, builder)
        return None
    resolved = info

    def wrap(function: Builder) -> Builder:
        _add(resolved, function)
        return function

    return wrap


def load_plugins(modules: Iterable[str]) -> None:
    """Import ``modules`` (dotted names), whose import registers further methods."""
    for module in modules:
        importlib.import_module(module)


def _load_all() -> None:
    """Import the built-in method packages and the ``maskwright.methods`` entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first, so that a plugin that looks methods up does not recurse
    load_plugins(_METHOD_MODULES)
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()


def _resolve(path: str) -> Callable[..., Any]:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def method_info(name: str) -> MethodInfo:
    """The metadata of method ``name``; KeyError listing the registered names if unknown."""
    _load_all()
    if name not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS)) or "none yet"
        raise KeyError(f"unknown method {name!r}; registered: {known}")
    return _INFOS[name]


def method_infos() -> list[MethodInfo]:
    """Every registered method's metadata, by name. Imports no torch."""
    _load_all()
    return [_INFOS[name] for name in sorted(_BUILDERS)]


def batch_jobs() -> list[tuple[MethodInfo, BatchJob]]:
    """Every batch job of every registered method, with its method. Imports no torch."""
    return [(info, job) for info in method_infos() for job in info.batch]


def list_methods() -> list[str]:
    _load_all()
    return sorted(_BUILDERS)


def build_predictor(
    method: str, *, backbone: str | None = None, device: str = "cpu", **kwargs: Any
) -> Predictor:
    """Build the predictor of ``method`` (see :func:`list_methods`)."""
    method_info(method)  # KeyError for an unknown name
    builder = _BUILDERS[method]
    if isinstance(builder, str):
        builder = _BUILDERS[method] = _resolve(builder)
    if backbone is not None:
        kwargs["backbone"] = backbone
    return builder(device=device, **kwargs)


def text_finders() -> list[MethodInfo]:
    """The registered methods that find objects by text (``text_finder`` set), by name.
    Imports no torch."""
    return [info for info in method_infos() if info.text_finder]


def build_text_finder(
    method: str, *, backbone: str | None = None, device: str = "cpu"
) -> TextFinding:
    """The text finder of ``method`` on ``backbone`` (default: the method's first) and
    ``device``. KeyError for an unknown method, ValueError for one that finds nothing by text;
    whatever the method's builder raises otherwise (``WeightsNotFound`` for a checkpoint that
    is not on local disk)."""
    info = method_info(method)
    if not info.text_finder:
        finders = ", ".join(i.name for i in text_finders()) or "none"
        raise ValueError(f"method {method!r} finds nothing by text; those that do: {finders}")
    if backbone is None and info.backbones:
        backbone = info.backbones[0]
    finder: TextFinding = _resolve(info.text_finder)(backbone=backbone, device=device)
    return finder


def _trained(name: str) -> TrainedWeights:
    trained = method_info(name).trained
    if trained is None:
        raise ValueError(f"method {name!r} takes no trained model file")
    return trained


def load_trained(name: str, path: Path, config: dict[str, Any], device: str) -> Predictor:
    """A predictor of method ``name`` around the converted model file ``path`` and its stored
    ``config`` (what :func:`convert_trained` returned)."""
    predictor: Predictor = _resolve(_trained(name).load)(Path(path), dict(config or {}), device)
    return predictor


def convert_trained(
    name: str, source: Path, target: Path, config: dict[str, Any]
) -> dict[str, Any]:
    """Load an uploaded model file ``source`` of method ``name`` strictly (``config``: what the
    uploader said about it, e.g. ``{"backbone": ...}``), write it as safetensors at ``target``
    and return the config to store with it. Raises on a file that does not fit the method."""
    stored: dict[str, Any] = _resolve(_trained(name).convert)(
        Path(source), Path(target), dict(config or {})
    )
    return stored
