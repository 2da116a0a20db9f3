"""An annotator's day on the real stack (issue 19), in Debian's Chromium driven by Playwright:
``live_stack`` (uvicorn with websockets, a Celery worker running M2N2 on the tiny backbone).

A new task over images that already hold imported masks and pending proposals (pseudo labels)
starts at 0 / N; proposals are hidden on the canvas until the toggle shows them (with their
count), and a click inside one selects it rather than starting a duplicate; marking an image
done moves the progress to 1 / N; Submit with images left asks, naming them; after a reopen
Ctrl+Z undoes the object edited last, and says why when there is nothing to undo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotation.common import rle
from annotation.datasets.models import Image as StoredImage
from annotation.labeling.models import Instance, Task, TaskImageDone
from tests.browser.conftest import login
from tests.browser.test_annotate import (
    CANVAS,
    HEIGHT,
    MODEL_TIMEOUT_MS,
    SQUARE,
    WIDTH,
    annotate,
    click_pixel,
    make_task,
    masks_count,
    wait_for_mask,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

IMPORTED = (10, 10, 60, 50)  # x0, y0, x1, y1 of each image's imported mask
# each image's proposals: the bright square (the "person"), a background block, another one
PROPOSALS = (SQUARE, (220, 20, 300, 100), (20, 150, 80, 220))


def _box(x0: int, y0: int, x1: int, y1: int) -> dict:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[y0:y1, x0:x1] = True
    return rle.encode(mask)


def _instance(image_id: int, box: tuple[int, int, int, int], **fields) -> Instance:
    mask = _box(*box)
    area, bbox = rle.area_and_bbox(mask)
    return Instance(image_id=image_id, mask=mask, area=area, bbox=bbox, **fields)


def _with_imports_and_proposals(image_ids: list[int]) -> None:
    """As an import and a batch job leave them (rows written directly: the services' pushes
    to the channel layer cannot run on Playwright's event-loop thread)."""
    rows = []
    for image_id in image_ids:
        rows.append(_instance(image_id, IMPORTED, source="import", review_state="accepted"))
        rows += [
            _instance(image_id, box, source="mis", score=0.9 - i / 10, pseudo=True, z_order=i + 1)
            for i, box in enumerate(PROPOSALS)
        ]
    Instance.objects.bulk_create(rows)


def _ready(page: Page) -> None:
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)


def test_an_annotators_day(stack_page: Page, tmp_path: Path) -> None:
    data = make_task(images=3)
    _with_imports_and_proposals(data.image_ids)
    first, *others = data.image_ids
    names = {i: StoredImage.objects.get(pk=i).original_name for i in data.image_ids}
    page = stack_page
    login(page, "anna")

    # 0 / 3 on the project page and on the canvas: imports and proposals are not work done
    page.goto(f"/#/projects/{data.project.id}")
    link = page.get_by_role("link", name=f"Annotate {data.task.name}")
    expect(page.locator("tr", has=link)).to_contain_text("0 / 3")
    link.click()
    page.wait_for_url(f"**/#/tasks/{data.task.id}/images/{first}")
    _ready(page)
    progress = page.locator(".annotate-progress")
    expect(progress).to_have_text("0 / 3 done")

    # proposals are hidden by default; the toggle shows them, with their count
    objects = annotate(page, "objects")
    proposals = [o["id"] for o in objects if o["pseudo"]]
    assert len(proposals) == 3 and all(o["hidden"] for o in objects if o["pseudo"]), objects
    assert not any(o["hidden"] for o in objects if not o["pseudo"]), objects
    count = page.locator(".proposal-count")
    expect(count).to_have_text("3 proposals hidden")
    assert annotate(page, "maskAt", 250, 60) == 0
    page.get_by_label("Proposals").check()
    expect(count).to_have_text("3 proposals")
    assert not any(o["hidden"] for o in annotate(page, "objects"))
    assert annotate(page, "maskAt", 250, 60) in proposals
    page.get_by_label("Proposals").uncheck()
    expect(count).to_have_text("3 proposals hidden")

    # a click inside a hidden proposal selects it (no duplicate, no prompt); A accepts it
    (background,) = [o["id"] for o in objects if o["box"] == [220, 20, 80, 80]]
    click_pixel(page, 250, 60)
    assert annotate(page, "selected") == background
    page.wait_for_function("() => window.__annotate.pending() === 0")  # `select_object` only
    assert len(annotate(page, "objects")) == 4 and masks_count(page) == 0
    expect(page.locator(".proposal-bar")).to_be_visible()
    page.keyboard.press("a")
    expect(page.locator(".annotate-flash")).to_contain_text(f"Proposal #{background} accepted")
    adopted = Instance.objects.get(pk=background)
    assert (adopted.pseudo, adopted.review_state, adopted.author.username) == (
        False,
        "accepted",
        "anna",
    )
    expect(count).to_have_text("2 proposals hidden")
    page.keyboard.press("Escape")

    # marking the image done (D, listed in the help panel) moves the progress to 1 / 3
    page.keyboard.press("h")
    expect(page.locator(".annotate-help")).to_contain_text("Mark this image done")
    page.keyboard.press("h")
    page.keyboard.press("d")
    expect(progress).to_have_text("1 / 3 done")
    expect(page.get_by_role("button", name="✓ Done")).to_have_attribute("aria-pressed", "true")
    assert TaskImageDone.objects.filter(task=data.task, image_id=first).exists()

    # a new object on the square (N, then a click: the proposal under it stays apart)
    page.keyboard.press("n")
    page.wait_for_function("() => window.__annotate.selected() !== null")
    made = annotate(page, "selected")
    before = masks_count(page)
    click_pixel(page, 150, 110)
    wait_for_mask(page, before, timeout=MODEL_TIMEOUT_MS)
    assert annotate(page, "maskAt", 150, 110) == made

    # reopen: nothing is selected, and Ctrl+Z undoes the object edited last
    page.reload()
    _ready(page)
    assert annotate(page, "selected") is None
    before = masks_count(page)
    page.keyboard.press("Control+z")
    expect(page.locator(".annotate-flash")).to_contain_text(f"object #{made}, the one edited last")
    wait_for_mask(page, before, timeout=60_000)
    assert annotate(page, "selected") == made
    assert annotate(page, "maskAt", 150, 110) != made
    # with nothing left to undo, the page says why
    page.keyboard.press("Control+z")
    expect(page.locator(".annotate-flash")).to_contain_text(f"Nothing to undo on object #{made}")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+z")
    expect(page.locator(".annotate-flash")).to_contain_text("no object on this image has a prompt")

    # Submit with images left asks, naming them; "Keep working" changes nothing
    page.get_by_role("button", name="Submit", exact=True).click()
    dialog = page.get_by_role("dialog", name="Submit with images left?")
    expect(dialog).to_contain_text("2 images of this task are not done yet")
    for image_id in others:
        expect(dialog.get_by_role("link", name=names[image_id])).to_be_visible()
    expect(dialog.get_by_role("link", name=names[first])).to_have_count(0)
    dialog.get_by_role("button", name="Keep working").click()
    expect(dialog).to_have_count(0)
    assert Task.objects.get(pk=data.task.id).state == Task.State.TODO
    page.get_by_role("button", name="Submit", exact=True).click()
    dialog.get_by_role("button", name="Submit anyway").click()
    expect(page.locator(".task-state")).to_have_text("submitted")
    assert Task.objects.get(pk=data.task.id).state == Task.State.SUBMITTED
    # submitting marked nothing: progress counts only what was marked
    assert TaskImageDone.objects.filter(task=data.task).count() == 1
    page.screenshot(path=str(tmp_path / "annotate-day.png"), full_page=True)
