"""The ``export`` job kind: runs on the CPU ``default`` queue, one zip per job."""

from __future__ import annotations

from typing import Any

from annotation.datasets.models import Dataset
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.models import Job

from .records import FILTERS, ExportParams
from .services import export_relpath, export_write


def _choice(name: str, label: str, choices: list[list[str]], help: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "kind": "choice",
        "default": choices[0][0],
        "choices": choices,
        "help": help,
    }


def export_form() -> dict[str, Any]:
    """The export on the Jobs page (``tolerance`` and ``void_border`` keep their defaults).

    ``unlabeled_label_id`` is a ``label`` field: the page lists the project's labels after
    the "skip" choice declared here (as for a batch job's label)."""
    return {
        "label": "Export",
        "capability": None,
        "method": None,
        "unit": "step",
        "stages": {},
        "order": 100,  # after the jobs that make masks
        "params": [
            _choice(
                "format",
                "Format",
                [["coco", "COCO"], ["voc", "Pascal VOC"], ["yolo", "YOLO segmentation"]],
                "YOLO: Ultralytics labels/*.txt polygons and data.yaml",
            ),
            _choice(
                "masks",
                "Masks",
                [["rle", "RLE"], ["polygon", "Polygons"]],
                "COCO only: VOC writes PNGs, YOLO always polygons",
            ),
            _choice("filter", "Filter", [[key, text] for key, text in FILTERS.items()]),
            {
                "name": "unlabeled_label_id",
                "label": "Unlabeled",
                "kind": "label",
                "default": None,
                "choices": [["", "skip them (counted in the result)"]],
                "help": "masks without a label (e.g. a batch job's class-agnostic proposals): "
                "skip them, or export them under the label chosen here",
            },
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
