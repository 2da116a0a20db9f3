"""Uploading a COCO export through the upload page (issue 19): the categories are read before
the upload, one is mapped to an existing label and one dropped, the report lists the new labels
and what was skipped, and the same zip uploaded again adds nothing.

On pytest-django's live server (real Postgres, real HTTP): an upload needs no worker and no
websocket, and the whole stack's Celery worker could take over a minute to start here."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from annotation.datasets.models import Image
from annotation.datasets.services import dataset_create
from annotation.labeling.models import Instance
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)
W, H = 50, 40


def _png(seed: int) -> bytes:
    """Noise: incompressible, so that the zip is far larger than its json."""
    pixels = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _box(x: int) -> list[list[int]]:
    return [[x, 5, x + 10, 5, x + 10, 30, x, 30]]


def _export_zip(path: Path) -> None:
    """Two images under images/ and a COCO json: sparrow ×2, crow ×1, pigeon ×1."""
    coco = {
        "images": [
            {"id": 1, "file_name": "images/a.png", "width": W, "height": H},
            {"id": 2, "file_name": "images/b.png", "width": W, "height": H},
        ],
        "categories": [
            {"id": 1, "name": "sparrow"},
            {"id": 2, "name": "crow"},
            {"id": 3, "name": "pigeon"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": _box(2)},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": _box(2)},
            {"id": 3, "image_id": 1, "category_id": 2, "segmentation": _box(20)},
            {"id": 4, "image_id": 2, "category_id": 3, "segmentation": _box(30)},
        ],
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/a.png", _png(90))
        zf.writestr("images/b.png", _png(140))
        zf.writestr("annotations/instances_default.json", json.dumps(coco))


def test_upload_a_coco_zip_map_categories_and_upload_it_again(page: Page, tmp_path: Path):
    User.objects.create_user(username="uma", password=PASSWORD)
    owner = User.objects.get(username="uma")
    project = project_create(name="Birds", owner=owner)
    bird = label_create(project=project, name="bird", color="#ff0000")
    dataset = dataset_create(project=project, name="export")
    archive = tmp_path / "export.zip"
    _export_zip(archive)

    login(page, "uma")
    page.goto(f"/#/datasets/{dataset.id}")
    files = page.locator("input[type=file][name=files]")

    # The categories are read before the upload; each gets a select. Only the json member,
    # cut out of the zip by the browser, is sent for that: not the images.
    with page.expect_request("**/upload/preview/") as preview:
        files.set_input_files(archive)
    sent = int(preview.value.all_headers()["content-length"])
    assert sent < 3000 < archive.stat().st_size, (sent, archive.stat().st_size)
    table = page.get_by_role("table", name="COCO categories")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table).to_contain_text("sparrow")
    expect(table).to_contain_text("2 annotations")
    sparrow = page.get_by_label("Label for category sparrow")
    crow = page.get_by_label("Label for category crow")
    pigeon = page.get_by_label("Label for category pigeon")
    expect(pigeon).to_have_value("new")
    sparrow.select_option(str(bird.id))
    crow.select_option("drop")
    page.screenshot(path=str(tmp_path / "mapping.png"), full_page=True)
    page.get_by_role("button", name="Upload 1 file").click()

    report = page.locator(".report")
    expect(report).to_have_attribute("data-accepted", "2")
    summary = report.locator(".coco-summary")
    expect(summary).to_contain_text("3 masks created")
    expect(summary).to_contain_text("1 dropped")
    expect(summary.locator(".new-labels")).to_have_text("New labels: pigeon")
    expect(summary.locator(".dropped-categories")).to_have_text("Dropped categories: crow")
    expect(page.locator(".thumb-card")).to_have_count(2)
    expect(page.locator(".thumb-grid")).to_contain_text("a.png")
    expect(page.locator(".thumb-grid")).not_to_contain_text("images/")
    page.screenshot(path=str(tmp_path / "first-report.png"), full_page=True)
    imported = Instance.objects.filter(image__dataset=dataset, source="import")
    assert sorted(imported.values_list("label__name", flat=True)) == ["bird", "bird", "pigeon"]
    assert sorted(project.labels.values_list("name", flat=True)) == ["bird", "pigeon"]
    assert sorted(Image.objects.filter(dataset=dataset).values_list("source_path", flat=True)) == [
        "images/a.png",
        "images/b.png",
    ]

    # The same zip again: the last choices come back by themselves, and nothing is added.
    files.set_input_files(archive)
    expect(page.get_by_label("Label for category sparrow")).to_have_value(str(bird.id))
    expect(page.get_by_label("Label for category crow")).to_have_value("drop")
    pigeon_id = project.labels.get(name="pigeon").id
    expect(page.get_by_label("Label for category pigeon")).to_have_value(str(pigeon_id))
    page.get_by_role("button", name="Upload 1 file").click()
    report = page.locator(".report")
    expect(report).to_have_attribute("data-accepted", "0")
    expect(report).to_have_attribute("data-duplicates", "2")
    expect(report.locator(".report-counts")).to_contain_text("0 accepted")
    expect(report.locator(".report-counts")).to_contain_text("2 already in the dataset")
    expect(report.locator(".refused-table")).to_have_count(0)
    summary = report.locator(".coco-summary")
    expect(summary).to_contain_text("0 masks created")
    expect(summary).to_contain_text("3 already there")
    expect(summary.locator(".new-labels")).to_have_text("No new labels")
    page.screenshot(path=str(tmp_path / "again-report.png"), full_page=True)
    assert Image.objects.filter(dataset=dataset).count() == 2
    assert imported.count() == 3
    assert project.labels.count() == 2
