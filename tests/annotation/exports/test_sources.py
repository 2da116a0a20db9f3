"""Which masks an export ships: the filter by review state whatever the source, masks without
a label (skipped and counted with their images, or exported under a chosen label), the counts
in the job's result, and the form that offers all of it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.common.exceptions import ApplicationError
from annotation.exports.records import FILTERS, SKIP_REASONS, ExportParams
from annotation.exports.runners import export_form
from annotation.exports.services import safe_stem
from annotation.jobs.models import Job
from annotation.projects.services import label_create, project_create
from tests.annotation.exports.helpers import mixed_world, open_zip, read_coco, run


def _ann_ids(job, tmp_path) -> set[int]:
    return set(read_coco(open_zip(job), tmp_path).getAnnIds())


@pytest.mark.django_db
def test_all_ships_pending_pseudo_labels_and_needs_fix_accepted_does_not(tmp_path):
    m = mixed_world()
    accepted_job = run(m.world, format="coco", filter="accepted")
    accepted = _ann_ids(accepted_job, tmp_path)
    # accepted: manual and imported masks, nothing pending, nothing rejected
    assert accepted == set(m.accepted) and m.imported in accepted
    everything_job = run(m.world, format="coco", filter="all")
    everything = _ann_ids(everything_job, tmp_path)
    assert everything == set(m.accepted) | {m.pending, m.needs_fix}
    assert everything != accepted and m.rejected not in everything
    # the unlabelled proposals are in neither, and both results say so
    for job in (accepted_job, everything_job):
        assert job.result["skipped"].get("no_label", 0) == (2 if job is everything_job else 0)
    assert accepted_job.result["left_out"] == {"needs_fix": 1, "pending": 3, "rejected": 1}
    assert everything_job.result["left_out"] == {"rejected": 1}


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_all_differs_from_accepted_in_every_format(fmt):
    m = mixed_world()
    w = m.world
    counts = {}
    for flt in FILTERS:
        job = run(w, format=fmt, filter=flt)
        open_zip(job)
        counts[flt] = job.result["annotations"]
        Job.objects.all().delete()
    assert counts == {"accepted": len(m.accepted), "all": len(m.accepted) + 2}


@pytest.mark.django_db
def test_unlabeled_masks_are_skipped_counted_and_pointed_at(tmp_path):
    m = mixed_world()
    job = run(m.world, format="coco", filter="all")
    r = job.result
    assert r["skipped"] == {"no_label": 2}
    assert r["skipped_why"] == {"no_label": SKIP_REASONS["no_label"]}
    images = {m.world.assigned_image.id, m.world.other_image.id}
    assert set(r["skipped_images"]["no_label"]) == images
    assert r["unlabeled_label_id"] is None
    assert not set(m.pending_unlabeled) & _ann_ids(job, tmp_path)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo"])
def test_unlabeled_masks_export_under_the_chosen_label(fmt, tmp_path):
    m = mixed_world()
    w = m.world
    job = run(w, format=fmt, filter="all", unlabeled_label_id=m.cat.id)
    zf = open_zip(job)
    assert "no_label" not in job.result["skipped"]
    assert job.result["annotations"] == len(m.accepted) + 4
    assert job.result["unlabeled_label_id"] == m.cat.id
    if fmt == "coco":
        coco = read_coco(zf, tmp_path)
        for ann in coco.loadAnns(m.pending_unlabeled):
            assert ann["category_id"] == 2  # cat
    elif fmt == "voc":
        stem = safe_stem(w.assigned_image.id, w.assigned_image.original_name)
        cls = np.array(PILImage.open(io.BytesIO(zf.read(f"SegmentationClass/{stem}.png"))))
        assert cls[38, 20] == 2  # the proposal's centre, painted as a cat
    else:
        stem = safe_stem(w.other_image.id, w.other_image.original_name)
        classes = [line.split()[0] for line in zf.read(f"labels/{stem}.txt").decode().splitlines()]
        # bird box, pending cat, imported cat, needs-fix cat, the proposal as a cat
        assert sorted(classes) == ["0", "1", "1", "1", "1"]


@pytest.mark.django_db
def test_a_label_of_another_project_is_refused():
    m = mixed_world()
    stranger = project_create(name="other", owner=m.world.users["outsider"])
    theirs = label_create(project=stranger, name="x", color="#000000")
    job = run(m.world, format="coco", unlabeled_label_id=theirs.id)
    assert job.state == "failed" and "not a label of this project" in job.error


def test_params_accept_a_label_or_nothing_for_unlabeled_masks():
    assert ExportParams.parse({"unlabeled_label_id": ""}).unlabeled_label_id is None
    assert ExportParams.parse({"unlabeled_label_id": None}).unlabeled_label_id is None
    assert ExportParams.parse({"unlabeled_label_id": 7}).unlabeled_label_id == 7
    assert ExportParams.parse({"format": "yolo"}).format == "yolo"
    for bad in ("7", 0, True, 1.5):
        with pytest.raises(ApplicationError, match="unlabeled_label_id must be"):
            ExportParams.parse({"unlabeled_label_id": bad})


def test_the_form_offers_yolo_the_filters_explained_and_the_unlabeled_choice():
    params = {p["name"]: p for p in export_form()["params"]}
    assert ["yolo", "YOLO segmentation"] in params["format"]["choices"]
    assert params["filter"]["default"] == "accepted"
    texts = dict(params["filter"]["choices"])
    assert "pending pseudo labels" in texts["all"] and "not rejected" in texts["all"]
    assert "imported" in texts["accepted"]
    unlabeled = params["unlabeled_label_id"]
    assert unlabeled["kind"] == "label" and unlabeled["default"] is None
    assert unlabeled["choices"][0][0] == ""  # skip them: the default


@pytest.mark.django_db
def test_the_jobs_api_lists_the_form_and_checks_the_label():
    from rest_framework.test import APIClient

    m = mixed_world()
    api = APIClient()
    api.force_login(m.world.users["owner"])
    kinds = {k["kind"]: k for k in api.get("/api/jobs/kinds/").json()}
    assert "unlabeled_label_id" in [p["name"] for p in kinds["export"]["params"]]
    stranger = project_create(name="other", owner=m.world.users["outsider"])
    theirs = label_create(project=stranger, name="x", color="#000000")
    response = api.post(
        f"/api/projects/{m.world.project.id}/jobs/",
        {
            "dataset_id": m.world.dataset.id,
            "kind": "export",
            "params": {"format": "yolo", "unlabeled_label_id": theirs.id},
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "not a label of this project" in response.content.decode()
