"""What the generic batch runners share: the methods' batch jobs read from their metadata, a
job's parameters (the method's and the platform's, one form, one validation), the device and
the work folder.

A capability module (``proposals``, ``text_masks``, ``pseudo_masks``, ``train``) calls
:func:`register_kinds` at import with its runner and its own parameters; every registered
method's batch job of that capability becomes a job kind (:func:`register_all` again picks up
methods registered later). Torch-free: the web process validates launches with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.common.exceptions import ApplicationError
from annotation.jobs.engine import JobContext, register_runner
from annotation.segmentation.interactive import methods

# capability → place in the Jobs page's menu (the pipeline's order)
ORDER = {"proposals": 10, "text_masks": 15, "pseudo_masks": 20, "train": 30}
MAX_ERRORS = 200  # failed images or objects listed in a job's result


@dataclasses.dataclass(frozen=True)
class Kind:
    """One registered batch kind: the method's metadata, its job and the platform's own
    parameters for the capability (``inference.Param`` s)."""

    info: Any  # inference.MethodInfo
    job: Any  # inference.BatchJob
    extra: tuple[Any, ...]

    @property
    def method(self) -> str:
        return str(self.info.name)

    def params(self) -> tuple[Any, ...]:
        """Every parameter, the method's narrowed to what this deployment has."""
        return tuple(_deployed(p) for p in self.job.params) + self.extra

    def parse(self, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the method's values, the platform's values) of a launcher's ``raw`` parameters;
        :class:`ApplicationError` naming what is wrong."""
        from inference.jobs import parse_params

        try:
            values = parse_params(self.params(), raw, self.job.label)
        except ValueError as exc:
            raise ApplicationError(str(exc)) from exc
        own = {p.name for p in self.job.params}
        return (
            {k: v for k, v in values.items() if k in own},
            {k: v for k, v in values.items() if k not in own},
        )

    def form(self) -> dict[str, Any]:
        """The kind on the Jobs page (see ``jobs.engine.register_runner``)."""
        return {
            "label": self.job.label,
            "capability": self.job.capability,
            "method": self.method,
            "summary": self.job.summary,
            "unit": self.job.unit,
            "stages": dict(self.job.stages),
            "order": ORDER.get(self.job.capability, 50),
            "params": [_as_form(p, self.method) for p in self.params()],
        }


def _deployed(param: Any) -> Any:
    """A parameter whose choices need weights keeps those this deployment has
    (``BATCH_BACKBONES``); its default becomes the first kept when its own is not."""
    if not param.weights:
        return param
    have = settings.MASKWRIGHT["BATCH_BACKBONES"]
    choices = tuple(c for c in param.choices if c[0] in have)
    values = [c[0] for c in choices]
    default = param.default if param.default in values else (values[0] if values else None)
    return dataclasses.replace(param, choices=choices, default=default)


def _as_form(param: Any, method: str) -> dict[str, Any]:
    out: dict[str, Any] = param.as_dict()
    if param.kind == "id":  # the form picks a label, or a model of this method
        out["kind"] = param.refers
        out["method"] = method
    if param.kind == "ids":  # the form picks several: "labels"
        out["kind"] = f"{param.refers}s"
        out["method"] = method
    return out


Runner = Callable[[JobContext, Kind], dict[str, Any]]
Validator = Callable[[Kind, dict[str, Any], dict[str, Any], Any], None]
Extra = Callable[[Any], tuple[Any, ...]]
# capability → how the platform runs it (as register_kinds was given it)
CAPABILITY_RUNNERS: dict[str, tuple[Runner, Validator, Extra]] = {}


def register_kinds(capability: str, run: Runner, validate: Validator, extra: Extra) -> list[Kind]:
    """Register a job kind for every method's batch job of ``capability``.

    ``run(ctx, kind)`` does the work; ``validate(kind, method_values, own_values, dataset)``
    adds the launch-time checks of the platform's parameters; ``extra(info)`` builds those
    parameters (``inference.Param`` s) for a method."""
    CAPABILITY_RUNNERS[capability] = (run, validate, extra)
    kinds = []
    for info, job in methods.registry().batch_jobs():
        if job.capability != capability:
            continue
        kind = Kind(info, job, extra(info))
        clash = {p.name for p in job.params} & {p.name for p in kind.extra}
        if clash:
            raise ValueError(f"batch job {job.kind}: parameters {sorted(clash)} are the platform's")

        def check(raw: dict[str, Any], dataset: Any, kind: Kind = kind) -> None:
            mine, own = kind.parse(raw)
            validate(kind, mine, own, dataset)

        register_runner(job.kind, queue="batch", validate=check, form=kind.form)(
            lambda ctx, kind=kind: run(ctx, kind)
        )
        kinds.append(kind)
    return kinds


def register_all() -> list[Kind]:
    """Register (again) the kinds of every capability, for the methods registered now."""
    return [
        kind
        for capability, (run, validate, extra) in CAPABILITY_RUNNERS.items()
        for kind in register_kinds(capability, run, validate, extra)
    ]


def batch_device() -> str:
    """Where batch jobs run their models: MASKWRIGHT BATCH_DEVICE, else CUDA when present."""
    configured = settings.MASKWRIGHT.get("BATCH_DEVICE")
    if configured:
        return str(configured)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def work_dir(job_id: int, kind: str) -> Path:
    """The job's own folder under MEDIA_ROOT (a resumed job finds what it wrote there)."""
    path = Path(settings.MEDIA_ROOT) / "jobs" / str(job_id) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_model(
    ctx: JobContext,
    kind: Kind,
    dataset: Any,
    *,
    file: Path,
    config: dict[str, Any],
    metrics: dict[str, Any],
    name: str = "",
) -> int:
    """Store what a job trained as a ready model of the project (of the kind's method), once
    per job; its id. ``name`` defaults to the method's label, the dataset and the job."""
    from annotation.modelstore.services import model_register_trained

    return int(
        model_register_trained(
            project_id=dataset.project_id,
            method=kind.method,
            name=name or f"{kind.info.label} · {dataset.name} (job {ctx.job_id})",
            source=Path(file),
            config=config,
            metrics=metrics,
            job_id=ctx.job_id,
        ).id
    )


def failure(image_id: int, name: str, exc: BaseException) -> dict[str, Any]:
    """One failed image, as a job's result lists it."""
    return {"image_id": image_id, "name": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
