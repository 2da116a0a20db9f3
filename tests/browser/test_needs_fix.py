"""Needs fix in the browser, over the whole stack (uvicorn with websockets + a Celery worker):
a reviewer's queue updates live when a pseudo label arrives; the reviewer sends one to fix
(to the image's task annotator by default; an image in no task is refused with the reason);
the annotator finds it under "To fix" on the project page (which updates live), opens it on the
canvas with the mask selected, corrects it with a click, and the reviewer's queue shows it
pending again without a reload."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from annotation.datasets.services import dataset_create
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create, task_create
from annotation.projects.models import Membership, Role
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login
from tests.factories import add_images, box_mask

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

CANVAS = "canvas.annotate-canvas"


def _pseudo(image, score: float, x: int = 4) -> Instance:
    return instance_create(
        image=image, mask=box_mask(image, x, 4, x + 20, 24), source="mis", score=score, pseudo=True
    )


def _elsewhere(fn) -> None:
    """Run ``fn`` in another thread, as a worker would: its pushes after commit need a thread
    without Playwright's event loop."""
    from django.db import connection

    def run() -> None:
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)


def test_reviewer_sends_a_label_to_fix_and_the_annotator_corrects_it(
    stack_page: Page, browser: Browser, live_stack, tmp_path: Path
) -> None:
    users = {
        name: User.objects.create_user(username=name, password=PASSWORD)
        for name in ("olga", "rita", "anna")
    }
    project = project_create(name="Terns", owner=users["olga"])
    Membership.objects.create(project=project, user=users["rita"], role=Role.REVIEWER)
    Membership.objects.create(project=project, user=users["anna"], role=Role.ANNOTATOR)
    label_create(project=project, name="tern", color="#1f77b4")
    tasked, loose = add_images(dataset_create(project=project, name="beach"), 2)
    task = task_create(
        project=project,
        dataset=tasked.dataset,
        name="Terns 1",
        assignee_id=users["anna"].id,
        image_ids=[tasked.id],
    )
    to_fix = _pseudo(tasked, 0.9)
    _pseudo(loose, 0.8)

    # The reviewer's queue, live: a proposal written meanwhile shows up without a reload.
    page = stack_page
    login(page, "rita")
    page.goto(f"/#/projects/{project.id}/review")
    items = page.locator(".review-item")
    expect(items).to_have_count(2)
    expect(page.locator(".live-note")).to_have_text("live")
    _elsewhere(lambda: _pseudo(tasked, 0.3, x=30))  # as an MIS job would
    expect(items).to_have_count(3)
    expect(
        page.locator('.review-counts tr[data-source="mis"] td[data-state="pending"]')
    ).to_have_text("3")

    # Needs fix on the image in no task: refused, with the reason. On the tasked one: sent to anna.
    page.locator('.review-item:has-text("0.80")').get_by_role("button", name="Needs fix").click()
    expect(page.get_by_role("alert").first).to_contain_text("no single annotator")
    row = page.locator(f'.review-item[data-instance-id="{to_fix.id}"]')
    row.get_by_role("button", name="Needs fix").click()
    expect(row).to_have_attribute("data-state", "needs_fix")
    expect(row.locator(".fix-assignee")).to_have_text("to fix: anna")
    to_fix.refresh_from_db()
    assert to_fix.review_state == "needs_fix" and to_fix.assignee_id == users["anna"].id

    # The annotator: "To fix (1)" on the project page, a link to the canvas with the mask selected.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_stack.url)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    anna = context.new_page()
    anna.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login(anna, "anna")
        anna.goto(f"/#/projects/{project.id}")
        fixes = anna.get_by_role("region", name="To fix (1)")
        expect(fixes).to_be_visible()
        expect(fixes.locator(".fix-item")).to_have_attribute("data-instance-id", str(to_fix.id))
        # a second one sent meanwhile joins the list live, without a reload
        page.locator('.review-item:has-text("0.30")').get_by_role(
            "button", name="Needs fix"
        ).click()
        fixes = anna.get_by_role("region", name="To fix (2)")
        expect(fixes.locator(".fix-item")).to_have_count(2)
        fixes.locator(f'.fix-item[data-instance-id="{to_fix.id}"]').get_by_role("link").click()
        anna.wait_for_url(f"**/#/tasks/{task.id}/images/{tasked.id}/objects/{to_fix.id}")
        canvas = anna.locator(CANVAS)
        expect(anna.locator(f"{CANVAS}[data-state=ready]")).to_be_visible(timeout=60_000)
        expect(canvas).to_have_attribute("data-selected", str(to_fix.id))
        anna.screenshot(path=str(tmp_path / "to-fix-canvas.png"))

        # A click on it: the worker saves the corrected mask, which goes back to the queue.
        before = int(canvas.get_attribute("data-masks") or 0)
        p = anna.evaluate("() => window.__annotate.toScreen(12, 12)")
        anna.mouse.click(p["x"], p["y"])
        anna.wait_for_function(
            "n => { const c = document.querySelector('canvas.annotate-canvas');"
            " return c && Number(c.dataset.masks) > n && c.dataset.pending === '0'; }",
            arg=before,
            timeout=120_000,
        )
        to_fix.refresh_from_db()
        assert (
            to_fix.review_state == "pending"
            and to_fix.assignee_id is None
            and to_fix.source == "mis"
        )
        assert to_fix.author_id == users["anna"].id
        # ...and the reviewer's page shows it pending again, without a reload
        expect(row).to_have_attribute("data-state", "pending", timeout=15_000)
        anna.goto(f"/#/projects/{project.id}")
        expect(anna.get_by_role("heading", name="Tasks")).to_be_visible()
        left = anna.get_by_role("region", name="To fix (1)")
        expect(left.locator(".fix-item")).to_have_count(1)
        expect(left.locator(f'.fix-item[data-instance-id="{to_fix.id}"]')).to_have_count(0)
    finally:
        context.close()
    assert not errors, errors
