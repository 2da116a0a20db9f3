"""The Box tool of the annotate view: drag a rectangle, then refine it with clicks.

Two tests, as in test_annotate.py:

* a scripted socket (the page's half of the contract): the tool follows the method's declared
  prompts, R selects it, a drag sends one ``box`` with sorted corners clamped to the image, a
  slip or Esc sends nothing, the help panel lists the key;
* the real stack: uvicorn and an interactive worker with the test plugin ``toy_box_method``
  (mask = the box, plus a disc around each positive click, minus one around each negative
  click), so the mask the page shows, undo / redo and the prompt log in Postgres are checked
  against a mask computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from annotation.labeling.models import Prompt
from tests.annotation.segmentation.interactive import toy_box_method
from tests.browser.conftest import _page_on, login, plugin_stack
from tests.browser.test_annotate import (
    CANVAS,
    HEIGHT,
    PROMPT_METHODS,
    WIDTH,
    annotate,
    click_pixel,
    make_task,
    mask_reply,
    masks_count,
    next_frame,
    object_state,
    open_page,  # noqa: F401  (a fixture)
    rect_mask,
    screen,
    shot,
    start_scripted,
    wait_for_mask,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

PLUGIN = toy_box_method.__name__


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at image pixel ``start``, move to ``end`` in steps, release (screen coordinates
    from the page's own transform: the centre of each pixel)."""
    page.mouse.move(*screen(page, *start))
    page.mouse.down()
    page.mouse.move(*screen(page, *end), steps=6)
    page.mouse.up()


def overlay_pixel(page: Page, x: float, y: float) -> list[int]:
    """RGBA of the overlay canvas (markers, the box being dragged) at image point (x, y)."""
    return page.evaluate(
        """([x, y]) => { const c = document.querySelector('canvas.annotate-overlay');
            const p = window.__annotate.toScreen(x - 0.5, y - 0.5);
            const r = c.getBoundingClientRect();
            const k = c.width / r.width;
            return Array.from(c.getContext('2d').getImageData("""
        """Math.floor((p.x - r.left) * k), Math.floor((p.y - r.top) * k), 1, 1).data); }""",
        [x, y],
    )


def test_box_tool_follows_the_method_and_sends_sorted_clamped_boxes(
    live_server,
    open_page: Callable[..., Page],  # noqa: F811
    tmp_path: Path,
) -> None:
    data = make_task()
    page, server = start_scripted(
        open_page, live_server.url, data, method="salt", methods=PROMPT_METHODS
    )
    stage, flash = page.locator(".annotate-stage"), page.locator(".annotate-flash")
    box_tool = page.locator(".tool-button[data-tool=box]")

    # SALT takes no boxes: the tool is off and says why; R only shows that reason.
    expect(box_tool).to_be_disabled()
    expect(box_tool).to_have_attribute("title", "Box (R) — SALT (scribbles) takes no boxes")
    page.keyboard.press("r")
    expect(flash).to_contain_text("SALT (scribbles) takes no boxes")
    expect(stage).to_have_attribute("data-tool", "click")

    # EXITS declares boxes: R picks the tool.
    page.get_by_label("Method").select_option("exits")
    chosen = server.expect("set_method")
    server.reply({"type": "method", "seq": chosen["seq"], "method": "exits", "backbone": "model-7"})
    expect(box_tool).to_be_enabled()
    expect(box_tool).to_have_attribute("title", "Box (R)")
    page.keyboard.press("r")
    expect(box_tool).to_have_attribute("aria-pressed", "true")
    expect(stage).to_have_attribute("data-tool", "box")

    # A slip of a few screen pixels, and a drag that Esc cancels, send nothing at all.
    sx, sy = screen(page, 40, 40)
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(sx + 3, sy + 3, steps=3)
    page.mouse.up()
    page.mouse.move(*screen(page, 40, 40))
    page.mouse.down()
    page.mouse.move(*screen(page, 150, 120), steps=6)
    # meanwhile the overlay draws the rectangle: its left edge passes through x = 40.5
    next_frame(page)
    r, g, b, a = overlay_pixel(page, 40.5, 80.5)
    assert a > 150 and b > g > r and b > r + 80, (r, g, b, a)  # the box colour, #38bdf8
    assert overlay_pixel(page, 95.5, 80.5)[3] == 0  # inside: nothing drawn
    page.keyboard.press("Escape")
    next_frame(page)
    assert overlay_pixel(page, 40.5, 80.5)[3] == 0  # Esc took it away
    page.mouse.up()
    next_frame(page)
    page.wait_for_timeout(300)
    server.nothing_more("new_object")
    server.nothing_more("box")

    # Dragged from bottom right to top left: with nothing selected, one new object and one
    # box, corners sorted (x0 < x1, y0 < y1), at the pixel centres the pointer went through.
    drag(page, (250, 180), (60, 40))
    new = server.expect("new_object")
    server.reply({"type": "object", "seq": new["seq"], "object": object_state(701)})
    sent = server.expect("box")
    assert sent["object_id"] == 701, sent
    corners = [sent[k] for k in ("x0", "y0", "x1", "y1")]
    assert corners == pytest.approx([60.5, 40.5, 250.5, 180.5], abs=0.05), sent
    server.reply(mask_reply(sent["seq"], 701, rect_mask(60, 40, 251, 181)))
    expect(page.locator(CANVAS)).to_have_attribute("data-pending", "0")
    assert annotate(page, "objects")[0]["box"] == [60, 40, 191, 141]
    shot(page, tmp_path, "box-scripted")

    # The next box goes to the selected object; one dragged past the image's corner is
    # clamped inside it (the server refuses a corner outside).
    drag(page, (300, 220), (WIDTH + 60, HEIGHT + 40))
    server.nothing_more("new_object")
    sent = server.expect("box")
    assert sent["object_id"] == 701, sent
    corners = [sent[k] for k in ("x0", "y0", "x1", "y1")]
    assert corners == pytest.approx([300.5, 220.5, WIDTH - 0.01, HEIGHT - 0.01], abs=0.05)

    # The help panel lists the key.
    page.keyboard.press("?")
    help_panel = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_panel.locator("tr", has_text="Box tool").locator("kbd")).to_have_text("R")


# ---- The real stack ------------------------------------------------------------------------


@pytest.fixture
def box_stack(monkeypatch, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, worker hostname): uvicorn offering only the plugin's method, and an
    interactive worker that loaded the plugin."""
    with plugin_stack(monkeypatch, tmp_path, PLUGIN, toy_box_method.NAME, "toy-box") as stack:
        yield stack


@pytest.fixture
def box_page(
    browser: Browser, box_stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    yield from _page_on(browser, box_stack[0], tmp_path, request)


def logged(object_id: int) -> list[tuple[str, dict, bool]]:
    """The object's prompt log in Postgres: (kind, payload, undone), oldest first."""
    rows = Prompt.objects.filter(instance_id=object_id).order_by("seq")
    return list(rows.values_list("kind", "payload", "undone"))


def expected_area(object_id: int) -> int:
    """What the plugin answers for the object's active prompts, as logged."""
    active = [(kind, p) for kind, p, undone in logged(object_id) if not undone]
    boxes = [(p["x0"], p["y0"], p["x1"], p["y1"]) for kind, p in active if kind == "box"]
    clicks = [(p["x"], p["y"], p["positive"]) for kind, p in active if kind == "click"]
    return int(toy_box_method.expected_mask(HEIGHT, WIDTH, boxes, clicks).sum())


def test_a_dragged_box_is_the_mask_and_clicks_refine_it(
    box_stack, box_page: Page, tmp_path: Path
) -> None:
    from annotation.segmentation.interactive import dispatch

    page, (_url, worker) = box_page, box_stack
    data = make_task()
    for image_id in data.image_ids:  # the open image and the task's next one (prefetched)
        dispatch.claim(image_id, toy_box_method.NAME, "none", worker)
    login(page, "anna")
    page.goto(f"/#/tasks/{data.task.id}/images/{data.image_ids[0]}")
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
    expect(page.get_by_label("Method")).to_have_value(toy_box_method.NAME)
    box_tool = page.locator(".tool-button[data-tool=box]")
    expect(box_tool).to_be_enabled()
    page.keyboard.press("r")
    expect(page.locator(".annotate-stage")).to_have_attribute("data-tool", "box")

    # Drag from pixel (210, 170) to pixel (90, 50): the mask is that rectangle, corner pixels
    # included, whatever way it was dragged.
    before = masks_count(page)
    drag(page, (210, 170), (90, 50))
    wait_for_mask(page, before, timeout=60_000)
    (obj,) = annotate(page, "objects")
    oid = obj["id"]
    x, y, w, h = obj["box"]
    assert abs(x - 90) <= 1 and abs(y - 50) <= 1, obj
    assert abs(x + w - 211) <= 1 and abs(y + h - 171) <= 1, obj
    ((kind, payload, undone),) = logged(oid)
    assert kind == "box" and not undone
    assert [payload[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx(
        [90.5, 50.5, 210.5, 170.5], abs=0.05
    )
    boxed = obj["area"]
    assert boxed == expected_area(oid) and boxed > 0
    shot(page, tmp_path, "box-real")

    # Clicks refine the same object: a negative one inside takes a disc out, a positive one
    # outside adds one.
    page.keyboard.press("c")
    before = masks_count(page)
    click_pixel(page, 150, 110, button="right")
    wait_for_mask(page, before, timeout=60_000)
    (obj,) = annotate(page, "objects")
    holed = obj["area"]
    assert obj["id"] == oid and holed < boxed and holed == expected_area(oid)
    assert annotate(page, "maskAt", 150, 110) == 0 and annotate(page, "maskAt", 100, 60) == oid
    before = masks_count(page)
    click_pixel(page, 260, 200)
    wait_for_mask(page, before, timeout=60_000)
    (obj,) = annotate(page, "objects")
    assert obj["area"] > holed and obj["area"] == expected_area(oid)
    assert annotate(page, "maskAt", 260, 200) == oid
    assert [k for k, _p, _u in logged(oid)] == ["box", "click", "click"]

    # Undo takes the clicks back one by one, then the box; redo brings the box back.
    for area in (holed, boxed, 0):
        before = masks_count(page)
        page.keyboard.press("Control+z")
        wait_for_mask(page, before, timeout=60_000)
        assert annotate(page, "objects")[0]["area"] == area
    assert [u for _k, _p, u in logged(oid)] == [True, True, True]
    before = masks_count(page)
    page.keyboard.press("Control+Shift+z")
    wait_for_mask(page, before, timeout=60_000)
    assert annotate(page, "objects")[0]["area"] == boxed
    assert [(k, u) for k, _p, u in logged(oid)] == [
        ("box", False),
        ("click", True),
        ("click", True),
    ]

    # Reopened: the stored mask is the box's again.
    page.reload()
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
    (obj,) = annotate(page, "objects")
    assert obj["id"] == oid and obj["area"] == boxed
