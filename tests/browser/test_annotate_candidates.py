"""Tab through a method's ranked masks in the annotate view, on the real stack.

uvicorn serves the page and its socket with the test plugin ``toy_method`` as the only method
(disks of 5, 10 and 15 px around a click, scored 0.93, 0.81, 0.52), and a real interactive
worker that loaded the same plugin answers. The session sticks to that worker (it holds the
task's images), so a worker of another test, without the plugin, never sees these requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.annotation.segmentation.interactive import toy_method
from tests.browser.conftest import _page_on, login, plugin_stack
from tests.browser.test_annotate import (
    CANVAS,
    annotate,
    click_pixel,
    make_task,
    masks_count,
    shot,
    wait_for_mask,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

PLUGIN = toy_method.__name__
SCORES = list(toy_method.SCORES)


@pytest.fixture
def toy_stack(monkeypatch, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, worker hostname): uvicorn and an interactive worker, both with the plugin."""
    with plugin_stack(monkeypatch, tmp_path, PLUGIN, toy_method.NAME, "toy-browser") as stack:
        yield stack


@pytest.fixture
def toy_page(
    browser: Browser, toy_stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page on the toy stack (a screenshot when the test failed; page errors fail it)."""
    yield from _page_on(browser, toy_stack[0], tmp_path, request)


def candidates(page: Page) -> dict:
    return annotate(page, "objects")[0]["candidates"]


def press_and_wait(page: Page, key: str) -> None:
    before = masks_count(page)
    page.keyboard.press(key)
    wait_for_mask(page, before, timeout=60_000)


def test_tab_cycles_the_ranked_masks_and_undo_takes_a_choice_back(
    toy_stack, toy_page: Page, tmp_path: Path
) -> None:
    from annotation.segmentation.interactive import dispatch

    page, (_url, worker) = toy_page, toy_stack
    data = make_task()
    for image_id in data.image_ids:  # the open image and the task's next one (prefetched)
        dispatch.claim(image_id, toy_method.NAME, "none", worker)
    login(page, "anna")
    page.goto(f"/#/tasks/{data.task.id}/images/{data.image_ids[0]}")
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
    status = page.locator(".candidate-status")
    expect(status).to_be_hidden()

    before = masks_count(page)
    click_pixel(page, 150, 110)
    wait_for_mask(page, before, timeout=60_000)
    (obj,) = annotate(page, "objects")
    oid, small = obj["id"], obj["area"]
    assert obj["candidates"] == {"count": 3, "index": 0, "scores": SCORES}, obj
    expect(status).to_be_visible()
    expect(status).to_contain_text(f"#{oid} · mask 1 of 3 · score 0.93")
    assert annotate(page, "maskAt", 158, 110) == 0  # 8 px off the click: outside 5 px

    # Tab: the next (larger) mask, and the panel says which
    press_and_wait(page, "Tab")
    expect(status).to_contain_text("mask 2 of 3 · score 0.81")
    middle = annotate(page, "objects")[0]["area"]
    assert middle > small and annotate(page, "maskAt", 158, 110) == oid
    assert candidates(page)["index"] == 1
    shot(page, tmp_path, "candidate-2-of-3")

    # reopened, the object still knows its ranked masks: Tab goes on from the one chosen
    page.reload()
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
    assert candidates(page) == {"count": 3, "index": 1, "scores": SCORES}
    page.locator(".object-row", has_text=f"#{oid}").locator(".object-name").click()
    expect(status).to_contain_text(f"#{oid} · mask 2 of 3 · score 0.81")
    press_and_wait(page, "Tab")
    expect(status).to_contain_text("mask 3 of 3 · score 0.52")
    press_and_wait(page, "Shift+Tab")
    expect(status).to_contain_text("mask 2 of 3 · score 0.81")
    assert annotate(page, "objects")[0]["area"] == middle

    # Shift+Tab: back to the best one; it wraps around the other way
    press_and_wait(page, "Shift+Tab")
    expect(status).to_contain_text("mask 1 of 3 · score 0.93")
    press_and_wait(page, "Shift+Tab")
    expect(status).to_contain_text("mask 3 of 3 · score 0.52")
    assert annotate(page, "objects")[0]["area"] > middle

    # each choice is a prompt of the object's log, those before the reopen too: undo takes
    # them back one by one (logged: 2, then 3, 2, 1, 3 of 3)
    for shown in (1, 2, 3, 2):
        press_and_wait(page, "Control+z")
        expect(status).to_contain_text(f"mask {shown} of 3 · score {SCORES[shown - 1]}")
    assert annotate(page, "objects")[0]["area"] == middle
    press_and_wait(page, "Control+z")
    expect(status).to_contain_text("mask 1 of 3 · score 0.93")
    assert annotate(page, "objects")[0]["area"] == small

    # the help panel lists the key
    page.keyboard.press("?")
    help_panel = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_panel).to_contain_text("Tab")
    expect(help_panel).to_contain_text("Next mask of the selected object")
    page.keyboard.press("Escape")
    expect(help_panel).to_be_hidden()

    # from a focused control Tab moves the focus, as on any page, and chooses nothing
    masks_toggle = page.locator("#annotate-show-masks")
    masks_toggle.focus()
    applied = masks_count(page)
    page.keyboard.press("Tab")
    expect(masks_toggle).not_to_be_focused()
    page.wait_for_timeout(500)
    assert masks_count(page) == applied and candidates(page)["index"] == 0
    assert page.locator(CANVAS).get_attribute("data-pending") == "0"
