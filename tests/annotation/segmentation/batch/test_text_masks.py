"""The ``sam3_text`` job (SAM 3's text_masks batch job, run by the generic text-masks runner):
every instance of each chosen label, found from the label's name, stored as a labelled pending
pseudo label, on a tiny random SAM 3 checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotation.common import rle
from annotation.datasets.storage import read_rgb
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance
from annotation.projects.services import label_create, project_create
from tests.factories import add_images, make_world

PARAMS = {"score_threshold": 0.0, "max_per_label": 3}  # random weights score near 0.25


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """A weights folder where ``facebook/sam3`` resolves to a tiny random SAM 3."""
    from inference.methods.sam.text_tiny import save_tiny_sam3

    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


@pytest.fixture
def world(settings, monkeypatch, weights_root):
    from inference.weights import WEIGHTS_DIR_ENV

    # The job row is not committed (one test transaction): the lease's heartbeat thread, on its
    # own connection, cannot see it and would report the lease lost after a third of a lease.
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_LEASE_S": 3600, "BATCH_DEVICE": "cpu"}
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_root))
    w = make_world()
    w.cat = label_create(project=w.project, name="cat", color="#00ff00")
    add_images(w.dataset, 1, start_seed=900)
    return w


def _found(dataset_id: int) -> list[Instance]:
    return list(Instance.objects.filter(image__dataset_id=dataset_id, source="sam3").order_by("id"))


def _launch(w, params: dict, user: str = "manager"):
    client = APIClient()
    client.force_login(w.users[user])
    return client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "sam3_text", "params": params},
        format="json",
    )


@pytest.mark.django_db
def test_labelled_pending_pseudo_labels_per_image_and_resume_adds_nothing(world, weights_root):
    from inference.methods.sam.text import TextFinder

    w = world
    labels = {"bird": w.label.id, "cat": w.cat.id}
    response = _launch(w, {**PARAMS, "label_ids": [w.label.id, w.cat.id]})
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    assert job_execute(job_id) == "succeeded"
    job = Job.objects.get(pk=job_id)
    assert (job.done, job.total) == (3, 3)
    found = _found(w.dataset.id)
    assert len(found) == job.result["instances"] > 0 and job.result["failed"] == 0
    assert job.result["per_label"] == {
        str(i): sum(1 for f in found if f.label_id == i) for i in labels.values()
    }
    assert all(i.pseudo and i.review_state == "pending" and 0 <= i.score <= 1 for i in found)
    assert all(
        i.model_name == "facebook/sam3" and i.model_version == f"job-{job_id}" for i in found
    )
    assert {i.label_id for i in found} == set(labels.values())

    # each image holds what SAM 3 finds for each label's name, in that order, best first
    finder = TextFinder.from_folder(weights_root / "facebook--sam3")
    for image in w.dataset.images.order_by("id"):
        finder.set_image(read_rgb(image.file))
        expected = [
            (labels[name], r.mask, r.score)
            for name in ("bird", "cat")
            for r in finder.find(name, threshold=0.0, max_instances=3)
            if r.mask.any()
        ]
        stored = [f for f in found if f.image_id == image.id]
        assert [f.label_id for f in stored] == [e[0] for e in expected]
        for instance, (_, mask, score) in zip(stored, expected, strict=True):
            np.testing.assert_array_equal(rle.decode(instance.mask), mask)
            assert instance.score == pytest.approx(score, abs=1e-6)

    # they wait in the review queue with their labels
    client = APIClient()
    client.force_login(w.users["reviewer"])
    queue = client.get(f"/api/projects/{w.project.id}/review/?source=sam3&limit=100").json()
    assert queue["count"] == len(found)
    assert {row["label"] for row in queue["results"]} == set(labels.values())

    # a redelivered task that lost its cursor duplicates nothing
    Job.objects.filter(pk=job_id).update(state="running", cursor={})
    assert job_execute(job_id) == "succeeded"
    assert len(_found(w.dataset.id)) == len(found)
    assert Job.objects.get(pk=job_id).result["skipped"] == 3


@pytest.mark.django_db
def test_cancel_stops_between_images_and_keeps_what_was_done(world, monkeypatch):
    from inference.methods.sam.text import TextFinder

    w = world
    job = Job.objects.create(
        project=w.project,
        dataset=w.dataset,
        kind="sam3_text",
        params={**PARAMS, "label_ids": [w.cat.id]},
    )
    real = TextFinder.set_image
    calls: list[int] = []

    def first_then_cancel(self, image):
        calls.append(1)
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        return real(self, image)

    monkeypatch.setattr(TextFinder, "set_image", first_then_cancel)
    assert job_execute(job.id) == "cancelled"
    job.refresh_from_db()
    assert len(calls) == 1 and (job.done, job.total) == (1, 3)
    found = _found(w.dataset.id)
    assert found and {i.image_id for i in found} == {w.assigned_image.id}
    assert all(i.label_id == w.cat.id for i in found)


@pytest.mark.django_db
def test_labels_are_checked_at_launch_and_the_form_picks_several(world):
    w = world
    elsewhere = project_create(name="Cars", owner=w.users["outsider"])
    foreign = label_create(project=elsewhere, name="car", color="#0000ff")
    for params, reason in (
        ({"label_ids": [w.label.id, foreign.id]}, f"label {foreign.id} is not a label of this"),
        ({"label_ids": []}, "label_ids must be a list of 1 to 100 ids of a label"),
        ({}, "choose at least one label to find (label_ids)"),
        ({"label_ids": [w.label.id], "score_threshold": 2}, "score_threshold must be a number"),
        ({"label_ids": [w.label.id], "checkpoint": "/tmp"}, "checkpoint must be one of"),
    ):
        response = _launch(w, params)
        assert response.status_code == 400, response.json()
        assert reason in response.json()["error"]["message"], response.json()
    assert not Job.objects.filter(dataset=w.dataset).exists()
    # a label that went to another project after the launch fails the run, before any work
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="sam3_text", params={"label_ids": [foreign.id]}
    )
    assert job_execute(job.id) == "failed"
    assert f"label {foreign.id} is not a label of this project" in Job.objects.get(pk=job.pk).error
    assert not _found(w.dataset.id)

    client = APIClient()
    client.force_login(w.users["manager"])
    kinds = {k["kind"]: k for k in client.get("/api/jobs/kinds/").json()}
    form = {p["name"]: p for p in kinds["sam3_text"]["params"]}
    assert kinds["sam3_text"]["capability"] == "text_masks"
    assert form["label_ids"]["kind"] == "labels" and form["label_ids"]["default"] == []
    assert form["score_threshold"]["default"] == 0.5 and form["max_per_label"]["default"] == 50


@pytest.mark.django_db
def test_missing_weights_fail_the_job_with_the_id_and_the_folder(world, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from inference.weights import WEIGHTS_DIR_ENV

    w = world
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    response = _launch(w, {"label_ids": [w.label.id]})
    assert response.status_code == 201, response.json()
    assert job_execute(response.json()["id"]) == "failed"
    error = Job.objects.get(pk=response.json()["id"]).error
    assert "WeightsNotFound: no local weights for model 'facebook/sam3'" in error
    assert str(tmp_path / "facebook--sam3") in error
    assert not _found(w.dataset.id)


@pytest.mark.django_db
def test_masks_per_image_are_bounded_keeping_the_best_scores(world, monkeypatch):
    from annotation.segmentation.batch import text_masks

    w = world
    monkeypatch.setattr(text_masks, "MAX_PER_IMAGE", 2)
    response = _launch(w, {**PARAMS, "label_ids": [w.label.id, w.cat.id]})
    assert job_execute(response.json()["id"]) == "succeeded"
    job = Job.objects.get(pk=response.json()["id"])
    found = _found(w.dataset.id)
    assert len(found) == job.result["instances"] == 6 and job.result["dropped"] > 0
    for image in w.dataset.images.all():
        here = [f for f in found if f.image_id == image.id]
        assert len(here) == 2
    # what was kept outscores what was dropped: unbounded, the same job stores a superset
    monkeypatch.setattr(text_masks, "MAX_PER_IMAGE", 500)
    Instance.objects.filter(source="sam3").delete()
    again = _launch(w, {**PARAMS, "label_ids": [w.label.id, w.cat.id]}).json()["id"]
    assert job_execute(again) == "succeeded"
    for image in w.dataset.images.all():
        everything = sorted(f.score for f in _found(w.dataset.id) if f.image_id == image.id)
        kept = sorted(f.score for f in found if f.image_id == image.id)
        assert kept == pytest.approx(everything[-2:])


@pytest.mark.django_db
def test_a_later_job_skips_images_where_every_label_was_found_unless_told_not_to(world):
    w = world
    first = _launch(w, {**PARAMS, "label_ids": [w.label.id]}).json()["id"]
    assert job_execute(first) == "succeeded"
    before = len(_found(w.dataset.id))
    assert before > 0
    with_masks = {i.image_id for i in _found(w.dataset.id)}

    # the same label again: images that hold its masks are skipped, nothing is duplicated
    again = _launch(w, {**PARAMS, "label_ids": [w.label.id]}).json()["id"]
    assert job_execute(again) == "succeeded"
    assert Job.objects.get(pk=again).result["skipped"] == len(with_masks)
    assert len(_found(w.dataset.id)) == before

    # a label not asked before: every image is asked again, for both labels
    both = _launch(w, {**PARAMS, "label_ids": [w.label.id, w.cat.id]}).json()["id"]
    assert job_execute(both) == "succeeded"
    assert Job.objects.get(pk=both).result["skipped"] == 0
    assert any(i.label_id == w.cat.id for i in _found(w.dataset.id))

    # told not to skip: the images are asked again
    forced = _launch(w, {**PARAMS, "label_ids": [w.label.id], "skip_existing": False}).json()["id"]
    assert job_execute(forced) == "succeeded"
    result = Job.objects.get(pk=forced).result
    assert result["skipped"] == 0 and result["instances"] > 0
