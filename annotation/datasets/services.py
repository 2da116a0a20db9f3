"""Writes for datasets: create, delete, and upload (images, zip archives, COCO json)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction

from annotation.common.exceptions import ApplicationError
from annotation.projects.models import Project

from . import storage
from .archives import ArchiveError, InflateBudget, iter_members, open_archive, open_member
from .coco_apply import coco_apply
from .coco_import import CocoError, CocoPlan, coco_parse
from .coco_labels import category_preview, check_category_map
from .ingest import (
    FileReport,
    Refused,
    ingest_stream,
    looks_like_image_name,
)
from .ingest_pipeline import IngestPipeline
from .models import Dataset, Image


@dataclass
class Upload:
    """One uploaded file: a name and a readable binary stream positioned at its start."""

    name: str
    stream: BinaryIO


@dataclass
class UploadReport:
    files: list[FileReport] = field(default_factory=list)
    coco: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": sum(f.status == "accepted" for f in self.files),
            "refused": sum(f.status == "refused" for f in self.files),
            "duplicates": sum(f.duplicate for f in self.files),
            "files": [f.as_dict() for f in self.files],
            "coco": self.coco,
        }


def dataset_create(*, project: Project, name: str) -> Dataset:
    name = name.strip()
    if not name:
        raise ApplicationError("a dataset needs a name")
    return Dataset.objects.create(project=project, name=name[:200])


def dataset_delete(*, dataset: Dataset) -> None:
    rels = list(Image.objects.filter(dataset=dataset).values_list("file", "thumbnail"))
    with transaction.atomic():
        dataset.delete()
    # Files go only after the rows are gone for good.
    for file_rel, thumb_rel in rels:
        storage.remove_quietly(file_rel, thumb_rel)


def _is_zip(upload: Upload) -> bool:
    if upload.name.lower().endswith(".zip"):
        return True
    head = upload.stream.read(4)
    upload.stream.seek(0)
    return head == b"PK\x03\x04"


def _coco_from_archives(
    uploads: list[Upload], budgets: dict[int, InflateBudget]
) -> CocoPlan | None:
    """A COCO json found inside an uploaded zip (the layout CVAT and others export). It is read
    under the same guards as the images (safe name, ratio, the archive's inflate budget) and
    refused by its declared size before a byte is inflated."""
    plans = []
    limit = settings.MASKWRIGHT["MAX_COCO_JSON_BYTES"]
    for upload in uploads:
        if not _is_zip(upload):
            continue
        try:
            archive = open_archive(upload.stream)
        except ArchiveError:
            continue  # reported when the archive is ingested
        with archive:
            for member in iter_members(archive, lambda name, reason: None):  # reported on ingest
                if not member.name.lower().endswith(".json"):
                    continue
                where = f"{upload.name}/{member.name}"
                if member.info.file_size > limit:
                    raise CocoError(
                        f"{where} is larger than the limit of {limit:,} bytes for a COCO json"
                    )
                try:
                    with open_member(archive, member, budgets[id(upload)]) as reader:
                        plans.append(coco_parse(reader, where))  # type: ignore[arg-type]
                except Refused as exc:
                    raise CocoError(f"{where}: {exc}") from exc
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise CocoError(f"{where}: corrupt archive member: {exc}") from exc
        upload.stream.seek(0)
    if len(plans) > 1:
        raise ApplicationError(
            "more than one json file in the archives: upload the COCO json on its own"
        )
    return plans[0] if plans else None


def _ingest_archive(
    dataset: Dataset,
    upload: Upload,
    report: UploadReport,
    progress: Callable[[FileReport], None],
    budget: InflateBudget,
) -> None:
    def emit(item: FileReport) -> None:
        report.files.append(item)
        progress(item)

    try:
        archive = open_archive(upload.stream)
    except ArchiveError as exc:
        emit(FileReport(f"{upload.name}/", "refused", str(exc)))
        return
    # on a bucket, members' writes overlap the checking of the next ones; reports and rows
    # still come in member order (IngestPipeline)
    with archive, IngestPipeline(dataset, emit) as pipe:

        def refuse(name: str, reason: str) -> None:
            pipe.add(FileReport(f"{upload.name}/{name}", "refused", reason))

        for member in iter_members(archive, refuse):
            if member.name.lower().endswith(".json"):
                continue  # read before ingest, as the COCO file
            if not looks_like_image_name(member.name):
                refuse(member.name, "not an image file (by extension)")
                continue
            try:
                with open_member(archive, member, budget) as reader:
                    pipe.ingest(member.name, reader)  # type: ignore[arg-type]
            except Refused as exc:
                pipe.add(FileReport(member.name, "refused", str(exc)))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                pipe.add(FileReport(member.name, "refused", f"corrupt archive member: {exc}"))


def _read_plan(
    uploads: list[Upload], coco: Upload | None
) -> tuple[CocoPlan | None, dict[int, InflateBudget]]:
    """The COCO json (given on its own or found inside a zip), parsed, and the inflate budget
    of each archive (one per archive, shared by its COCO json and its images)."""
    budgets = {id(u): InflateBudget.for_stream(u.stream) for u in uploads if _is_zip(u)}
    plan = coco_parse(coco.stream, coco.name) if coco else _coco_from_archives(uploads, budgets)
    return plan, budgets


def coco_preview(*, dataset: Dataset, uploads: list[Upload], coco: Upload | None) -> dict[str, Any]:
    """The categories of the COCO json in an upload, read before the upload is made, so that
    the form can map each to a label or drop it. Stores nothing; a bad json is refused as the
    upload would refuse it. ``categories`` is empty when the upload has no json."""
    plan, _ = _read_plan(uploads, coco)
    if plan is None:
        return {"source": None, "images": 0, "annotations": 0, "categories": [], "labels": []}
    return category_preview(plan, dataset.project)


def dataset_upload(
    *,
    dataset: Dataset,
    uploads: list[Upload],
    coco: Upload | None = None,
    category_map: dict[int, str | int] | None = None,
    author: Any = None,
    progress: Callable[[FileReport], None] = lambda item: None,
) -> UploadReport:
    """Store images (single files and zip archives) and import COCO annotations.

    The COCO json and ``category_map`` (``{category id: "new" | "drop" | label id}``, see
    :mod:`.coco_labels`) are validated before any image is stored, so a bad file or map
    changes nothing. Each image is then stored in its own transaction: a refused file is
    reported and never fails the others. The annotations are then added to the images they
    name, skipping those already there (:mod:`.coco_apply`): uploading the same zip twice adds
    nothing the second time.
    """
    plan, budgets = _read_plan(uploads, coco)
    choices = None
    if plan is not None:
        choices = check_category_map(plan, category_map or {}, dataset.project)
    elif category_map:
        raise ApplicationError(
            "a category map needs a COCO json in the upload", extra={"field": "category_map"}
        )
    report = UploadReport()
    for upload in uploads:
        if _is_zip(upload):
            _ingest_archive(dataset, upload, report, progress, budgets[id(upload)])
        elif upload.name.lower().endswith(".json"):
            report.files.append(
                FileReport(upload.name, "refused", "send COCO json in the 'coco' field")
            )
        else:
            item = ingest_stream(dataset, upload.name, upload.stream)
            report.files.append(item)
            progress(item)
    if plan is not None:
        report.coco = coco_apply(
            plan, dataset, author, choices=choices, uploaded=list(report.files)
        )
    return report
