"""Batch jobs a method offers, declared beside its builder and read without torch.

A method lists its batch jobs in ``MethodInfo.batch``. Each :class:`BatchJob` names a job kind,
one of the :data:`CAPABILITIES` (what goes in, what comes out), its settings as
:class:`Param` s (typed, bounded, with a label and a default, so a launcher's form and its
validation come from one place) and the ``"module:function"`` that does the work. The platform
runs every job of a capability with one generic runner; it never names a method.

The entry points, by capability (``params``: the job's settings, parsed by
:meth:`BatchJob.parse`; ``progress(done, total, stage, extra=None)``: called now and then)::

    proposals     run(params, device) -> Proposals
                  Proposals.propose(rgb: H×W×3 uint8, seed: int) -> [(H×W bool, score)], best
                  first; Proposals.model_name names what made them (a backbone, a checkpoint).
    pseudo_masks  run(objects_json, work_dir, images_dir, params, device, progress) -> PseudoMasks
                  objects_json: COCO json, per object a ``bbox`` and, when an annotator gave
                  them, ``extreme_points`` ({"left": [x, y], "right", "top", "bottom"});
                  PseudoMasks.masks_json: COCO json of one RLE mask per object id, with a score.
                  Resumes from ``work_dir`` after a restart.
    train         run(train_json, images_dir, work_dir, params, init, device, progress)
                      -> Trained
                  train_json: COCO json of masks; init: (model file, its stored config) to
                  start from, or None. Resumes from ``work_dir``. Trained.model_file and
                  model_config load through the method's TrainedWeights (so the platform
                  evaluates any method's result the same way, on held-back images).
    text_masks    run(params, device) -> TextMasks
                  TextMasks.find(rgb: H×W×3 uint8, texts: [str], seed: int)
                      -> [(text, H×W bool, score)]: every instance found of each text (a
                  label's name), the texts in the order given, best score first within each;
                  TextMasks.model_name names the checkpoint. The platform passes the names of
                  the labels chosen in its own ``label_ids`` parameter and labels each mask.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CAPABILITIES = {
    "proposals": "class-agnostic region proposals of every image, as pseudo labels",
    "pseudo_masks": "a mask for every outlined object (extreme points or a box), as pseudo labels",
    "train": "a model of the method trained on a dataset's masks, then evaluated",
    "text_masks": "a mask for every instance of each chosen label, found from the label's name,"
    " as labelled pseudo labels",
}
PARAM_KINDS = ("int", "float", "bool", "choice", "text", "id", "ids")

# progress(done, total, stage, extra) — extra: figures worth showing (loss, s/step, ETA)
Progress = Callable[..., None]


@dataclass(frozen=True)
class Param:
    """One setting of a job. ``kind``: int, float, bool, choice (one of ``choices``, pairs of
    value and text), text (trimmed, at most ``maximum`` characters), id (a row the caller
    must check, of what ``refers`` names; None or "" for none) or ids (a list of such rows,
    duplicates dropped, order kept; ``minimum``/``maximum`` bound how many; None or "" for
    none). ``step`` (int): values are ``minimum + k·step``. ``label`` is what a form shows;
    ``help`` says why it matters."""

    name: str
    label: str
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    # choices that need weights on the worker: a deployment offers only those it has
    weights: bool = False
    refers: str = ""  # kind id / ids: what the ids are of ("label", "model")
    # choices accepted but not offered in a form (small random networks for tests)
    unlisted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"param {self.name}: kind must be one of {PARAM_KINDS}")

    def parse(self, value: Any) -> Any:
        """``value`` converted and checked; ValueError naming the parameter otherwise."""
        if self.kind == "id" and value in (None, ""):
            return None
        try:
            out = self._convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be {self._expected()}, got {value!r}") from None
        if self.kind == "ids":
            low, high = self.minimum or 0, math.inf if self.maximum is None else self.maximum
            if not low <= len(out) <= high:
                raise ValueError(f"{self.name} must be {self._expected()}, got {value!r}")
        if self.kind in ("int", "float"):
            low = -math.inf if self.minimum is None else self.minimum
            high = math.inf if self.maximum is None else self.maximum
            stepped = self.step is None or (out - (self.minimum or 0)) % self.step == 0
            if not (low <= out <= high) or not stepped:
                raise ValueError(f"{self.name} must be {self._expected()}, got {value!r}")
        if self.kind == "choice" and out not in [c for c, _ in self.choices] + list(self.unlisted):
            known = ", ".join(c for c, _ in self.choices)
            raise ValueError(f"{self.name} must be one of {known}, got {value!r}")
        return out

    def _convert(self, value: Any) -> Any:
        if self.kind == "ids":
            if value in (None, ""):
                return []
            if not isinstance(value, (list, tuple)):
                raise ValueError
            # a launcher may repeat a row; each counts once, in the order first given
            return list(dict.fromkeys(Param(self.name, "", "id", None)._convert(v) for v in value))
        if self.kind in ("int", "id"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value)
            if self.kind == "id" and not 1 <= out < 2**63:  # a database id, bounded before SQL
                raise ValueError
            return out
        if self.kind == "float":
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        text = str(value).strip()
        if self.kind == "text" and self.maximum is not None:
            text = text[: int(self.maximum)]
        return text

    def _expected(self) -> str:
        if self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            bounds = f" in [{_num(self.minimum)}, {_num(self.maximum)}]"
            step = f" in steps of {_num(self.step)}" if self.step else ""
            return what + bounds + step
        if self.kind == "id":
            return f"the id of a {self.refers or 'row'}"
        if self.kind == "ids":
            high = "" if self.maximum is None else f" to {_num(self.maximum)}"
            return f"a list of {_num(self.minimum or 0)}{high} ids of a {self.refers or 'row'}"
        return {"bool": "true or false", "text": "text", "choice": "a choice"}[self.kind]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, for a launcher's form."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "default": list(self.default) if self.kind == "ids" else self.default,
            "min": self.minimum,
            "max": self.maximum,
            "step": self.step,
            "choices": [list(c) for c in self.choices if c[0] not in self.unlisted],
            "help": self.help,
            "weights": self.weights,
            "refers": self.refers,
        }


def _num(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_params(params: tuple[Param, ...], raw: dict[str, Any], what: str) -> dict[str, Any]:
    """Every param's value from ``raw`` (its default where missing), checked. A name no param
    has, or a value a param refuses, is a ValueError naming it (``what``: whose parameters)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{what} parameters must be an object")  # noqa: TRY004 (one error type)
    known = {p.name for p in params}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown {what} parameters {unknown} (known: {sorted(known)})")
    return {p.name: p.parse(raw[p.name]) if p.name in raw else p.default for p in params}


@dataclass(frozen=True)
class BatchJob:
    """A batch job of a method: the platform registers ``kind`` (unique over all methods) and
    runs it with its generic runner for ``capability``, calling ``run`` on a batch worker."""

    kind: str
    capability: str
    label: str
    run: str  # "module:function", imported only on a batch worker
    params: tuple[Param, ...] = ()
    summary: str = ""
    # the unit a job's progress counts in, for its progress text (image, object, step)
    unit: str = "image"
    # (stage, what it means) of the stages ``progress`` reports, for a progress text
    stages: tuple[tuple[str, str], ...] = ()
    # "module:function": the same work from the command line, ``main(argv) -> exit code``
    # (``maskwright <capability>``), on files instead of a dataset; "" for none
    cli: str = ""

    def __post_init__(self) -> None:
        if self.capability not in CAPABILITIES:
            raise ValueError(f"batch job {self.kind}: capability must be one of {CAPABILITIES}")
        if ":" not in self.run:
            raise ValueError(f"batch job {self.kind}: run must be 'module:function'")

    def parse(self, raw: dict[str, Any]) -> dict[str, Any]:
        return parse_params(self.params, raw, self.label)

    def entry(self) -> Callable[..., Any]:
        """The ``run`` function (imports the method's modules, torch included)."""
        return _resolve(self.run)

    def command(self) -> Callable[[list[str]], int] | None:
        """The ``cli`` function, or None."""
        return _resolve(self.cli) if self.cli else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "capability": self.capability,
            "label": self.label,
            "summary": self.summary,
            "unit": self.unit,
            "stages": dict(self.stages),
            "params": [p.as_dict() for p in self.params],
        }


def _resolve(path: str) -> Callable[..., Any]:
    module, _, attribute = path.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


@dataclass
class Proposals:
    """What a ``proposals`` entry returns: a per-image function and the name of its model."""

    propose: Callable[..., list[tuple[Any, float]]]
    model_name: str


@dataclass
class PseudoMasks:
    """What a ``pseudo_masks`` entry returns. ``model_file``: a trained model worth keeping
    (loadable by the method's ``TrainedWeights``), with its ``model_config``; ``stats``: figures
    for the job's result (JSON-safe)."""

    masks_json: Path
    model_name: str
    model_file: Path | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trained:
    """What a ``train`` entry returns: the model file and config to store, its figures."""

    model_file: Path
    model_config: dict[str, Any]
    metrics: dict[str, Any]
    resumed_from: int | None = None
    description: str = ""  # e.g. the backbone, for the model's default name


@dataclass
class TextMasks:
    """What a ``text_masks`` entry returns: ``find(rgb, texts, seed)`` → (text, H×W bool mask,
    score in [0, 1]) of every instance of each text, the texts in the order given, best first
    within each; ``model_name``: the checkpoint that found them."""

    find: Callable[..., list[tuple[str, Any, float]]]
    model_name: str
