"""The ``export`` job kind: runs on the CPU ``default`` queue, one zip per job."""

from __future__ import annotations

from typing import Any

from annotation.datasets.models import Dataset
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.models import Job

from .records import ExportParams
from .services import export_relpath, export_write


def _choice(name: str, label: str, choices: list[list[str]]) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "kind": "choice",
        "default": choices[0][0],
        "choices": choices,
        "help": "",
    }


def export_form() -> dict[str, Any]:
    """The export on the Jobs page (``tolerance`` and ``void_border`` keep their defaults)."""
    return {
        "label": "Export",
        "capability": None,
        "method": None,
        "unit": "step",
        "stages": {},
        "order": 100,  # after the jobs that make masks
        "params": [
            _choice("format", "Format", [["coco", "COCO"], ["voc", "Pascal VOC"]]),
            _choice("masks", "Masks", [["rle", "RLE"], ["polygon", "Polygons"]]),
            _choice("filter", "Filter", [["accepted", "Accepted only"], ["all", "Every source"]]),
        ],
    }


@register_runner(
    "export", validate=lambda params, dataset: ExportParams.parse(params), form=export_form
)
def export_dataset(ctx: JobContext) -> dict[str, Any]:
    """Write the dataset's export zip; params: see :class:`ExportParams`.

    ``Job.result_file`` is set only once the zip is complete and in place; the engine marks
    the job succeeded right after.
    """
    params = ExportParams.parse(ctx.params)
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    relpath = export_relpath(dataset.project_id, dataset.id, ctx.job_id, params.format)
    result = export_write(
        dataset=dataset, params=params, relpath=relpath, progress=ctx.save_progress
    )
    Job.objects.filter(pk=ctx.job_id).update(result_file=relpath)
    return result
