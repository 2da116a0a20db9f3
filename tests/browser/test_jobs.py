"""The Jobs page (``#/projects/{id}/jobs``) in Debian's Chromium over the live stack (uvicorn +
a real Celery worker): an owner launches an MIS job with the tiny backbone and watches it reach
100 %, exports COCO and downloads the zip; an annotator gets no launch form."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from annotation.datasets.services import Upload, dataset_create, dataset_upload
from annotation.labeling.models import Instance
from annotation.projects.models import Membership, Role
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, export_coco, login, run_mis

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.full((96, 128, 3), 30, dtype=np.uint8)
    arr[20:70, 30:90] = rng.integers(180, 255, size=3, dtype=np.uint8)  # one bright block
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def world():
    owner = User.objects.create_user(username="olga", password=PASSWORD)
    annotator = User.objects.create_user(username="adam", password=PASSWORD)
    project = project_create(name="Jobs project", owner=owner)
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    label_create(project=project, name="thing", color="#00aa00")
    dataset = dataset_create(project=project, name="photos")
    dataset_upload(
        dataset=dataset, uploads=[Upload(f"p{i}.png", io.BytesIO(_png(i))) for i in range(3)]
    )
    return project, dataset


def test_owner_runs_mis_then_downloads_a_coco_export(stack_page: Page, world, tmp_path: Path):
    project, dataset = world
    page = stack_page
    login(page, "olga")
    page.goto(f"/#/projects/{project.id}")
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_url(f"**/#/projects/{project.id}/jobs")
    for name in ("max_per_image", "min_fraction", "score_threshold"):  # one line high, not 160 px
        field = page.locator(f"input[name={name}]")
        expect(field).to_be_visible()
        assert field.bounding_box()["height"] < 48, (name, field.bounding_box())
    # what a training job may learn from: accepted, every registered method's pseudo labels, all
    page.get_by_label("Job kind").select_option("train")
    train_on = page.get_by_label("Train on")
    expect(train_on.locator("option[value=mis]")).to_have_text(
        "MIS proposals: pseudo labels (not rejected)"
    )
    values = train_on.locator("option").evaluate_all("options => options.map((o) => o.value)")
    assert values[0] == "accepted" and values[-1] == "all" and {"mis", "exits"} <= set(values), (
        values
    )
    expect(train_on).to_have_value("accepted")
    mis_row = run_mis(page, dataset.id, label="thing", max_per_image=4)
    expect(mis_row).to_contain_text("100 % — 3 / 3 images")
    expect(mis_row).to_contain_text("proposals stored (tiny-effnet)")
    assert Instance.objects.filter(image__dataset=dataset, source="mis").count() > 0

    names, coco = export_coco(page, tmp_path, filter="all")
    assert "annotations/instances_default.json" in names
    # "every source": the pending pseudo labels too, under their label
    assert len(coco["images"]) == 3 and len(coco["annotations"]) > 0
    assert [c["name"] for c in coco["categories"]] == ["thing"]


def test_an_annotator_sees_no_launch_form(stack_page: Page, world):
    project, _ = world
    page = stack_page
    login(page, "adam")
    page.goto(f"/#/projects/{project.id}")
    expect(page.locator(".page-head h1")).to_have_text("Jobs project")
    expect(page.get_by_role("link", name="Jobs", exact=True)).to_have_count(0)
    page.goto(f"/#/projects/{project.id}/jobs")
    expect(page.locator(".empty")).to_contain_text(
        "Only the project's owners, managers and reviewers"
    )
    expect(page.get_by_role("form", name="Launch a job")).to_have_count(0)
    expect(page.get_by_role("button", name="Launch")).to_have_count(0)


def test_each_running_job_shows_its_workers_lease_and_a_dead_one_is_failed_with_the_reason(
    stack_page: Page, world
):
    import re
    from datetime import timedelta

    from django.utils import timezone

    from annotation.jobs.models import Job

    project, dataset = world
    other = dataset_create(project=project, name="big")
    now = timezone.now()
    alive = Job.objects.create(
        project=project,
        dataset=dataset,
        kind="mis",
        state="running",
        done=2,
        total=10,
        worker="batch-1@host",
        attempts=1,
        started_at=now,
        heartbeat_at=now - timedelta(seconds=2),
        lease_until=now + timedelta(seconds=120),
    )
    # the crash of issue 16: an export whose worker was killed at 2000/10008, out of runs
    dead = Job.objects.create(
        project=project,
        dataset=other,
        kind="export",
        state="running",
        done=2000,
        total=10008,
        worker="batch-2@host",
        attempts=3,
        started_at=now,
        heartbeat_at=now - timedelta(minutes=5),
        lease_until=now - timedelta(minutes=4),
    )
    page = stack_page
    login(page, "olga")
    page.goto(f"/#/projects/{project.id}/jobs")
    row = page.locator(f'tr[data-job-id="{alive.id}"]')
    expect(row.locator(".job-lease")).to_have_text(re.compile(r"worker alive, last beat \d+ s ago"))
    dead_row = page.locator(f'tr[data-job-id="{dead.id}"]')
    expect(dead_row).to_have_attribute("data-state", "failed")
    expect(dead_row).to_contain_text(
        "Failed: its worker batch-2@host stopped at 2000/10008; resumed 2 times"
    )
