"""Exports on the Jobs page over the live stack (issue 19): the form offers YOLO, explains the
filters and lets unlabelled masks be skipped (the default) or exported under a label; a
finished export says how many masks it skipped, why, and on which images; the YOLO zip holds
the polygons Ultralytics reads."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotation.common import rle
from annotation.labeling.services import instance_create
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login
from tests.factories import add_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)


def _box(image, x0: int, y0: int, x1: int, y1: int) -> dict:
    mask = np.zeros((image.height, image.width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return rle.encode(mask)


@pytest.fixture
def world():
    """Two images: a labelled accepted box on each, and on the second a class-agnostic
    pending MIS proposal (no label)."""
    from annotation.datasets.services import dataset_create

    owner = User.objects.create_user(username="olga", password=PASSWORD)
    project = project_create(name="Export project", owner=owner)
    thing = label_create(project=project, name="thing", color="#00aa00")
    dataset = dataset_create(project=project, name="photos")
    first, second = add_images(dataset, 2)
    for image in (first, second):
        instance_create(image=image, mask=_box(image, 2, 2, 12, 10), label_id=thing.id)
    proposal = instance_create(
        image=second, mask=_box(second, 20, 15, 30, 25), source="mis", pseudo=True
    )
    return project, dataset, second, proposal


def _launch(page: Page, *, fmt: str, filter: str, unlabeled: str | None) -> None:
    form = page.get_by_role("form", name="Launch a job")
    form.get_by_label("Job kind").select_option("export")
    form.get_by_label("Format").select_option(fmt)
    form.get_by_label("Filter").select_option(filter)
    if unlabeled is not None:
        form.get_by_label("Unlabeled").select_option(label=unlabeled)
    form.get_by_role("button", name="Launch").click()


def test_yolo_export_skips_then_ships_unlabelled_masks(stack_page: Page, world, tmp_path: Path):
    project, _dataset, second, _proposal = world
    page = stack_page
    login(page, "olga")
    page.goto(f"/#/projects/{project.id}/jobs")
    form = page.get_by_role("form", name="Launch a job")
    form.get_by_label("Job kind").select_option("export")
    expect(form.get_by_label("Format").locator("option[value=yolo]")).to_have_text(
        "YOLO segmentation"
    )
    expect(form.get_by_label("Filter").locator("option[value=all]")).to_contain_text(
        "pending pseudo labels"
    )
    unlabeled = form.get_by_label("Unlabeled")
    expect(unlabeled.locator("option").first).to_have_text("skip them (counted in the result)")
    expect(unlabeled.locator("option", has_text="thing")).to_have_count(1)
    expect(unlabeled).to_have_value("")

    # 1. Every mask not rejected, unlabelled ones skipped (the default): the row says so.
    _launch(page, fmt="yolo", filter="all", unlabeled=None)
    row = page.locator("tr[data-kind=export]").first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(row).to_contain_text("YOLO · polygon · all · 2 images, 2 masks")
    expect(row.locator(".export-skipped summary")).to_have_text("1 mask skipped")
    reason = row.locator(".export-skipped li[data-reason=no_label]")
    expect(reason).to_contain_text("1 had no label")
    expect(reason.get_by_role("link", name=f"image {second.id}")).to_have_attribute(
        "href", f"#/images/{second.id}"
    )

    # 2. Accepted only, the proposal under "thing": nothing skipped, the filter left it out.
    _launch(page, fmt="yolo", filter="accepted", unlabeled="thing")
    expect(page.locator("tr[data-kind=export]")).to_have_count(2)
    row = page.locator("tr[data-kind=export]").first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(row.locator(".export-skipped")).to_have_count(0)
    expect(row.locator(".export-left-out")).to_have_text("Left out by the filter: 1 pending.")

    # 3. Every mask, the proposal under "thing": downloaded, three polygons of class 0.
    _launch(page, fmt="yolo", filter="all", unlabeled="thing")
    expect(page.locator("tr[data-kind=export]")).to_have_count(3)
    row = page.locator("tr[data-kind=export]").first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(row).to_contain_text("2 images, 3 masks")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    target = tmp_path / "yolo.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        lines = [
            line
            for name in names
            if name.startswith("labels/")
            for line in archive.read(name).decode().splitlines()
        ]
        assert "data.yaml" in names and sum(n.startswith("images/") for n in names) == 2
        assert '0: "thing"' in archive.read("data.yaml").decode()
    assert len(lines) == 3 and all(line.split()[0] == "0" for line in lines)
