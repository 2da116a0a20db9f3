"""The whole admin flow in Debian's Chromium over the live stack (uvicorn + a real Celery
worker): an owner uploads a zip through the dataset page and reads the per-file refusal report,
launches an MIS job on the Jobs page and watches it reach 100 %, bulk-accepts the pseudo labels
above a threshold on the review page, then exports COCO with the "accepted" filter, downloads
the zip and finds exactly the accepted annotations and every image in it."""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from annotation.datasets.models import Image
from annotation.datasets.services import dataset_create
from annotation.labeling.models import Instance, ReviewState
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, export_coco, login, run_mis

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

GOOD = ["a.png", "b.png", "c.png"]


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.full((96, 128, 3), 30, dtype=np.uint8)
    arr[20:70, 30:90] = rng.integers(180, 255, size=3, dtype=np.uint8)  # one bright block
    arr[75:90, 5:25] = rng.integers(120, 200, size=3, dtype=np.uint8)  # and a smaller one
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for i, name in enumerate(GOOD):
            archive.writestr(name, _png(i))
        archive.writestr("broken.png", np.random.default_rng(7).bytes(2048))
        archive.writestr("../evil.png", _png(9))
    return path


def test_owner_uploads_runs_mis_reviews_and_exports(stack_page: Page, tmp_path: Path) -> None:
    page = stack_page
    owner = User.objects.create_user(username="olga", password=PASSWORD)
    project = project_create(name="Dashboard flow", owner=owner)
    label_create(project=project, name="thing", color="#00aa00")
    dataset = dataset_create(project=project, name="photos")
    archive = _zip(tmp_path / "batch.zip")

    # 1. Upload the zip through the dataset page; the report names each refused member.
    login(page, "olga")
    page.goto(f"/#/datasets/{dataset.id}")
    expect(page.locator(".thumb-grid")).to_contain_text("No images yet — drop images or a zip here")
    page.locator("input[type=file][name=files]").set_input_files(archive)
    page.get_by_role("button", name="Upload 1 file").click()
    report = page.locator(".report")
    expect(report).to_have_attribute("data-accepted", "3")
    expect(report).to_have_attribute("data-refused", "2")
    expect(report.locator(".report-counts")).to_contain_text("3 accepted")
    expect(report.locator(".report-counts")).to_contain_text("2 refused")
    rows = report.get_by_role("table", name="Refused files").locator("tbody tr")
    expect(rows).to_have_count(2)
    refused = {
        rows.nth(i).locator("td.file-name").inner_text(): rows.nth(i)
        .locator("td.reason")
        .inner_text()
        for i in range(2)
    }
    # Members refused while reading the archive are named inside it ("batch.zip/…").
    assert set(refused) == {"broken.png", "batch.zip/../evil.png"}, refused
    assert re.search(r"corrupt|not an image", refused["broken.png"], re.IGNORECASE), refused
    assert re.search(r"path traversal", refused["batch.zip/../evil.png"], re.IGNORECASE), refused
    expect(page.locator(".thumb-grid img")).to_have_count(3)
    expect(page.locator(".count-badge")).to_have_text("3 images")
    assert (
        sorted(Image.objects.filter(dataset=dataset).values_list("original_name", flat=True))
        == GOOD
    )

    # 2. The Jobs page: an MIS job with the tiny backbone and the label, followed to 100 %.
    page.goto(f"/#/projects/{project.id}/jobs")
    mis_row = run_mis(page, dataset.id, label="thing")
    expect(mis_row).to_contain_text("100 % — 3 / 3 images")
    pseudo = Instance.objects.filter(image__dataset=dataset, source="mis")
    scores = sorted(s for s in pseudo.values_list("score", flat=True) if s is not None)
    assert scores, "MIS stored no scored proposals"
    assert pseudo.filter(review_state=ReviewState.PENDING).count() == pseudo.count()

    # 3. The review page: bulk-accept every pending pseudo label at or above a threshold.
    threshold = f"{math.floor(scores[len(scores) // 2] * 1000) / 1000:.3f}"  # about half of them
    page.goto(f"/#/projects/{project.id}/review")
    pending_cell = page.locator('.review-counts tr[data-source="mis"] td[data-state="pending"]')
    accepted_cell = page.locator('.review-counts tr[data-source="mis"] td[data-state="accepted"]')
    expect(pending_cell).to_have_text(str(pseudo.count()))
    expect(accepted_cell).to_have_text("0")
    page.get_by_label("Score threshold").fill(threshold)
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", on_dialog)
    page.get_by_role("button", name="Accept all pending ≥ t").click()
    expect(page.locator(".review-bulk")).to_have_attribute(
        "data-changed", re.compile(r"^[1-9]\d*$")
    )
    accepted = pseudo.filter(review_state=ReviewState.ACCEPTED).count()
    assert accepted == int(page.locator(".review-bulk").get_attribute("data-changed"))
    assert accepted == sum(1 for s in scores if s >= float(threshold))
    assert dialogs and f"with score ≥ {threshold}" in dialogs[0], dialogs
    expect(accepted_cell).to_have_text(str(accepted))
    expect(pending_cell).to_have_text(str(pseudo.count() - accepted))

    # 4. Back on the Jobs page: a COCO export of the accepted masks, downloaded.
    page.goto(f"/#/projects/{project.id}/jobs")
    names, coco = export_coco(page, tmp_path, filter="accepted", dataset_id=dataset.id)
    assert (
        len(coco["annotations"])
        == accepted
        == Instance.objects.filter(
            image__dataset=dataset, review_state=ReviewState.ACCEPTED
        ).count()
    )
    assert [c["name"] for c in coco["categories"]] == ["thing"]
    assert len(coco["images"]) == 3
    assert sorted(f"images/{im['file_name']}" for im in coco["images"]) == sorted(
        n for n in names if n.startswith("images/")
    )
    image_ids = set(Image.objects.filter(dataset=dataset).values_list("id", flat=True))
    assert {a["image_id"] for a in coco["annotations"]} <= image_ids
