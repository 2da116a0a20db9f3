"""Find all (issue 20) in the annotate view: the annotator names a label, every instance found
in the image becomes a shown, pending object of that label, kept (A, Keep all) or deleted
(Delete, Delete all) one by one or together.

Three tests:

* a scripted socket (test_annotate.py's fake): the page's half of the contract, message by
  message: the label is matched by name (trimmed, any case) and a name that matches none sends
  nothing; the button says "Finding…" until the ``found`` (or an ``error`` with its seq);
  found objects are shown though batch proposals stay hidden, the first one selected; Keep all
  adopts through the REST call Accept makes (checked in Postgres); Delete all sends one
  ``delete_object`` each; count 0 and ``skipped`` are said; ``opened.find_all.available``
  false disables the control with its ``why``;
* the real web server with no worker holding SAM 3's weights: the control is disabled and says
  why;
* the real stack: uvicorn and an interactive worker whose weights folder holds a tiny random
  SAM 3 (``inference.methods.sam.text_tiny``): its masks mean nothing and score about 0.25, so
  the threshold is 0; what is checked is the flow and the rows in Postgres.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from annotation.common import rle
from annotation.labeling.models import Instance
from tests.browser.conftest import _page_on, login, plugin_stack
from tests.browser.test_annotate import (
    CANVAS,
    FakeServer,
    Setup,
    annotate,
    crop,
    make_task,
    object_state,
    open_page,  # noqa: F401  (a fixture)
    opened,
    rect_mask,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

AVAILABLE = {"available": True, "method": "sam3", "why": None}
WHY = (
    "no worker has the weights of facebook/sam3: put the checkpoint folder at "
    "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3 on a worker"
)
FIND_TIMEOUT_MS = 180_000  # the first find loads the model on the worker


# ---- Data and page helpers ------------------------------------------------------------------


def _proposal(image_id: int, box: tuple[int, int, int, int], **fields: Any) -> Instance:
    """A pending pseudo label over the rectangle ``box`` (x0, y0, x1, y1), written directly:
    the services' pushes to the channel layer cannot run on Playwright's event-loop thread."""
    mask = rle.encode(rect_mask(*box))
    area, bbox = rle.area_and_bbox(mask)
    return Instance.objects.create(
        image_id=image_id, mask=mask, area=area, bbox=bbox, pseudo=True, **fields
    )


def _state(instance: Instance) -> dict[str, Any]:
    """The instance as the socket's object state (``opened``, ``object``, ``found``)."""
    box, crop_rle = crop(rle.decode(instance.mask).astype(bool))
    return object_state(
        instance.id,
        instance.label_id,
        version=instance.version,
        source=instance.source,
        pseudo=True,
        review_state="pending",
        box=box,
        rle=crop_rle,
    )


def _found(seq: int, label: Any, objects: list[Instance], skipped: int = 0) -> dict[str, Any]:
    return {
        "type": "found",
        "seq": seq,
        "label_id": label.id,
        "text": label.name,
        "objects": [_state(o) for o in objects],
        "count": len(objects),
        "skipped": skipped,
        "model_ms": 812.5,
        "worker": "w1",
    }


def _start(
    open_page: Callable[..., Page],  # noqa: F811
    url: str,
    data: Setup,
    objects: list[dict[str, Any]],
    find_all: dict[str, Any],
) -> tuple[Page, FakeServer]:
    page = open_page(url, fake_socket=True)
    login(page, "anna")
    page.goto(f"/#/tasks/{data.task.id}/images/{data.image_ids[0]}")
    server = FakeServer(page)
    msg = server.expect("open")
    server.reply({**opened(data, data.image_ids[0], msg["seq"], objects), "find_all": find_all})
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible()
    return page, server


def _objects(page: Page) -> dict[int, dict[str, Any]]:
    return {o["id"]: o for o in annotate(page, "objects")}


def _wait_for_review_state(instance_id: int, page: Page, state: str) -> Instance:
    """Poll Postgres (the adopt call is the page's own REST request) until the row has it."""
    for _ in range(100):
        row = Instance.objects.get(pk=instance_id)
        if row.review_state == state:
            return row
        page.wait_for_timeout(100)
    raise AssertionError(f"instance {instance_id} is {row.review_state}, not {state}")


def _find(page: Page, name: str) -> None:
    field = page.get_by_label("Label to find")
    field.fill(name)
    field.press("Enter")


# ---- The page's half of the contract ---------------------------------------------------------


def test_find_all_on_a_scripted_socket(live_server, open_page, tmp_path: Path) -> None:  # noqa: F811
    data = make_task()
    image_id = data.image_ids[0]
    box_label, ball = data.labels
    batch = _proposal(image_id, (20, 150, 80, 220), source="mis", score=0.7)
    rects = [(100, 60, 200, 160), (220, 20, 300, 100), (10, 10, 60, 50)]
    found = [_proposal(image_id, r, source="sam3", score=0.6, label=ball) for r in rects]
    page, server = _start(open_page, live_server.url, data, [_state(batch)], AVAILABLE)
    canvas, section = page.locator(CANVAS), page.get_by_role("region", name="Find all")
    field, button = page.get_by_label("Label to find"), section.locator(".find-button")
    message, status = section.locator(".find-message"), section.locator(".find-status")
    status_text = status.locator(".find-status-text")
    expect(section).to_have_attribute("data-state", "ready")
    expect(field).to_be_enabled()
    expect(section.locator(".find-note")).to_be_hidden()
    assert page.eval_on_selector_all(
        "#annotate-find-labels option", "os => os.map(o => o.value)"
    ) == ["box", "ball"]
    assert _objects(page)[batch.id]["hidden"]  # a batch job's proposal: hidden by default

    # L puts the keys in the field; a name of no label says so and sends nothing
    page.keyboard.press("l")
    expect(field).to_be_focused()
    page.keyboard.type("dog")
    page.keyboard.press("Enter")
    expect(message).to_have_text("No label “dog” in this project. Pick one from the list.")
    server.nothing_more("find_all")

    # the name matches trimmed and in any case; the button waits for the answer
    field.fill("  BALL ")
    expect(message).to_be_hidden()
    button.click()
    sent = server.expect("find_all")
    assert sent == {"type": "find_all", "seq": sent["seq"], "label_id": ball.id}
    expect(button).to_be_disabled()
    expect(button).to_have_text("Finding…")
    expect(section).to_have_attribute("data-state", "busy")
    expect(field).to_have_value("ball")
    server.reply(_found(sent["seq"], ball, found, skipped=2))
    expect(button).to_be_enabled()
    expect(button).to_have_text("Find")
    expect(status).to_contain_text(
        "Found 3 “ball” (2 already there) — keep (A) or delete (Delete) each"
    )
    expect(status).to_have_attribute("title", re.compile(r"model 813 ms · round trip \d+ ms"))

    # shown (the batch proposal stays hidden), labelled, the first one selected
    objects = _objects(page)
    for f in found:
        assert not objects[f.id]["hidden"] and objects[f.id]["label_id"] == ball.id, objects
        assert objects[f.id]["pseudo"] and objects[f.id]["review_state"] == "pending"
    assert objects[batch.id]["hidden"]
    expect(canvas).to_have_attribute("data-selected", str(found[0].id))
    expect(canvas).to_have_attribute("data-objects", "4")
    assert annotate(page, "maskAt", 250, 60) == found[1].id  # drawn: a visible mask
    assert annotate(page, "maskAt", 50, 180) == 0  # the hidden batch proposal is not
    expect(page.locator(".proposal-count")).to_have_text("4 proposals, 1 hidden")
    expect(page.locator(".proposal-bar")).to_contain_text(f"Proposal #{found[0].id} (sam3)")
    shot(page, tmp_path, "found-3")

    # A keeps the selected one (Accept's REST call)
    page.keyboard.press("a")
    kept = _wait_for_review_state(found[0].id, page, "accepted")
    assert not kept.pseudo and kept.author.username == "anna"
    # Delete removes another: one delete_object
    page.locator(f".object-row[data-object-id='{found[1].id}'] .object-name").click()
    page.keyboard.press("Delete")
    gone = server.expect("delete_object")
    assert gone["object_id"] == found[1].id
    server.reply({"type": "object_deleted", "seq": gone["seq"], "object_id": found[1].id})
    expect(canvas).to_have_attribute("data-objects", "3")
    # Keep all: the one left pending, adopted like Accept; the batch proposal is not touched
    status.get_by_role("button", name="Keep all").click()
    _wait_for_review_state(found[2].id, page, "accepted")
    expect(status).to_contain_text("Kept 1 “ball”")
    expect(status.get_by_role("button", name="Keep all")).to_be_hidden()
    expect(status.get_by_role("button", name="Delete all")).to_be_hidden()
    row = Instance.objects.get(pk=batch.id)
    assert row.pseudo and row.review_state == "pending"
    assert not _objects(page)[found[2].id]["pseudo"]

    # Delete all: one delete_object for each found object still pending
    more = [_proposal(image_id, r, source="sam3", label=box_label) for r in rects[:2]]
    _find(page, "Box")
    sent = server.expect("find_all")
    assert sent["label_id"] == box_label.id
    server.reply(_found(sent["seq"], box_label, more))
    expect(status).to_contain_text("Found 2 “box” — keep (A) or delete (Delete) each")
    status.get_by_role("button", name="Delete all").click()
    gone = [server.expect("delete_object"), server.expect("delete_object")]
    assert sorted(g["object_id"] for g in gone) == sorted(m.id for m in more)
    server.nothing_more("delete_object")
    for g in gone:
        server.reply({"type": "object_deleted", "seq": g["seq"], "object_id": g["object_id"]})
    expect(canvas).to_have_attribute("data-objects", "3")
    expect(status).to_contain_text("Deleted 2 “box”")
    expect(status.get_by_role("button", name="Delete all")).to_be_hidden()

    # nothing found, and what was already there
    _find(page, "ball")
    sent = server.expect("find_all")
    server.reply(_found(sent["seq"], ball, [], skipped=2))
    expect(status_text).to_have_text("No “ball” found (2 already there)")
    expect(canvas).to_have_attribute("data-objects", "3")

    # an error with the find's seq ends it, and says why
    _find(page, "ball")
    sent = server.expect("find_all")
    expect(button).to_have_text("Finding…")
    server.reply({"type": "error", "seq": sent["seq"], "code": "server_error", "message": "boom"})
    expect(button).to_have_text("Find")
    expect(button).to_be_enabled()
    expect(message).to_have_text("Find all “ball” failed: boom")

    # the help panel lists the key
    page.locator(".annotate-stage").focus()
    page.keyboard.press("?")
    help_panel = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_panel.locator("tr", has_text="Find all")).to_contain_text("L")
    page.keyboard.press("Escape")

    # after a reconnect, `opened` says no worker can find: the control is off and says why
    page.evaluate("() => window.__fake.drop()")
    msg = server.expect("open")
    server.reply(
        {
            **opened(data, image_id, msg["seq"], []),
            "find_all": {"available": False, "method": None, "why": WHY},
        }
    )
    expect(section).to_have_attribute("data-state", "unavailable")
    expect(field).to_be_disabled()
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", WHY)
    expect(section.locator(".find-note")).to_have_text(f"Unavailable: {WHY}")
    page.keyboard.press("l")
    expect(page.locator(".annotate-flash")).to_contain_text("Find all is unavailable")
    server.nothing_more("find_all")
    shot(page, tmp_path, "unavailable")


# ---- The real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder where ``facebook/sam3`` resolves to a tiny random SAM 3."""
    from inference.methods.sam.text_tiny import save_tiny_sam3

    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


def test_without_weights_find_all_is_disabled_and_says_why(
    browser: Browser, monkeypatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from inference.weights import WEIGHTS_DIR_ENV
    from tests.conftest import uvicorn_server

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "no-weights"))
    data = make_task()
    # M2N2 offered (no worker needed to open an image); no worker holds SAM 3's weights
    with uvicorn_server(tmp_path, MASKWRIGHT_INTERACTIVE_METHODS="m2n2") as (url, _log):
        pages = _page_on(browser, url, tmp_path, request)
        page = next(pages)
        try:
            login(page, "anna")
            page.goto(f"/#/tasks/{data.task.id}/images/{data.image_ids[0]}")
            section = page.get_by_role("region", name="Find all")
            expect(section).to_have_attribute("data-state", "unavailable", timeout=60_000)
            expect(page.get_by_label("Label to find")).to_be_disabled()
            button = section.locator(".find-button")
            expect(button).to_be_disabled()
            expect(button).to_have_attribute("title", re.compile("sam3"))
            why = button.get_attribute("title")
            expect(section.locator(".find-note")).to_have_text(f"Unavailable: {why}")
        finally:
            next(pages, None)


@pytest.fixture
def sam3_stack(monkeypatch, tmp_path: Path, weights_root: Path) -> Iterator[tuple[str, str]]:
    """(base URL, worker hostname): an interactive worker whose weights folder holds the tiny
    SAM 3, and uvicorn offering SAM 3 (no plugin); random weights score about 0.25."""
    from inference.weights import WEIGHTS_DIR_ENV

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_root))
    monkeypatch.setenv("MASKWRIGHT_FIND_ALL_THRESHOLD", "0")
    monkeypatch.setenv("MASKWRIGHT_FIND_ALL_MAX", "5")
    with plugin_stack(monkeypatch, tmp_path, "", "sam3", "find-all-browser") as stack:
        yield stack


@pytest.fixture
def sam3_page(
    browser: Browser, sam3_stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    yield from _page_on(browser, sam3_stack[0], tmp_path, request)


def _found_rows(image_id: int, label: Any) -> list[Instance]:
    return list(Instance.objects.filter(image_id=image_id, label=label).order_by("id"))


def test_find_all_keep_all_and_delete_all_on_the_real_stack(
    sam3_stack, sam3_page: Page, tmp_path: Path
) -> None:
    page = sam3_page
    data = make_task()
    image_id = data.image_ids[0]
    box_label, ball = data.labels
    login(page, "anna")
    page.goto(f"/#/tasks/{data.task.id}/images/{image_id}")
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
    section = page.get_by_role("region", name="Find all")
    status = section.locator(".find-status")
    expect(section).to_have_attribute("data-state", "ready")

    # find every "ball": objects of that label, pending pseudo labels in Postgres, shown
    # (the tiny model's masks may repeat: those after the first are "already there")
    _find(page, "Ball")
    expect(status).to_contain_text("“ball”", timeout=FIND_TIMEOUT_MS)
    text = status.locator(".find-status-text").inner_text()
    match = re.match(r"Found (\d+) “ball”(?: \((\d+) already there\))? — keep", text)
    assert match, text
    considered = int(match.group(1)) + int(match.group(2) or 0)  # at most FIND_ALL_MAX
    rows = _found_rows(image_id, ball)
    assert len(rows) == int(match.group(1)) > 0 and considered <= 5, (text, rows)
    assert all(r.pseudo and r.review_state == "pending" and r.source == "sam3" for r in rows)
    assert all(r.model_version == "find-all" and r.model_name == "facebook/sam3" for r in rows)
    objects = _objects(page)
    for r in rows:
        assert r.id in objects and not objects[r.id]["hidden"], objects
        assert objects[r.id]["label_id"] == ball.id
        assert objects[r.id]["area"] == r.area > 0
    expect(page.locator(CANVAS)).to_have_attribute("data-selected", str(rows[0].id))
    shot(page, tmp_path, "found-on-the-stack")

    # Keep all: every one adopted (accepted, no longer pseudo), author anna
    status.get_by_role("button", name="Keep all").click()
    expect(status).to_contain_text(f"Kept {len(rows)} “ball”")
    for r in rows:
        row = _wait_for_review_state(r.id, page, "accepted")
        assert not row.pseudo and row.author.username == "anna"

    # the same find again: the same masks, all already there, are not stored twice
    _find(page, "ball")
    expect(status.locator(".find-status-text")).to_have_text(
        f"No “ball” found ({considered} already there)", timeout=FIND_TIMEOUT_MS
    )
    assert len(_found_rows(image_id, ball)) == len(rows)

    # find every "box", then Delete all: the rows go, the kept balls stay
    _find(page, "box")
    expect(status).to_contain_text("“box”", timeout=FIND_TIMEOUT_MS)
    boxes = _found_rows(image_id, box_label)
    assert boxes and status.inner_text().startswith(f"Found {len(boxes)} “box”")
    status.get_by_role("button", name="Delete all").click()
    expect(page.locator(CANVAS)).to_have_attribute("data-objects", str(len(rows)))
    for _ in range(100):
        if not _found_rows(image_id, box_label):
            break
        page.wait_for_timeout(100)
    assert _found_rows(image_id, box_label) == []
    assert [r.id for r in _found_rows(image_id, ball)] == [r.id for r in rows]
