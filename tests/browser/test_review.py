"""The review queue in the browser: counts, one-by-one and bulk review, and who sees it.

Django runs in pytest-django's ``live_server`` (plain http); data comes from the services.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from annotation.datasets.services import dataset_create
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create
from annotation.projects.models import Membership, Role
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login
from tests.factories import add_images, box_mask

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

SCORES = [0.95, 0.9, 0.7, 0.6, 0.3, 0.1]


@pytest.fixture
def project():
    users = {
        name: User.objects.create_user(username=name, password=PASSWORD)
        for name in ("olga", "rita", "anna")
    }
    project = project_create(name="Gulls", owner=users["olga"])
    Membership.objects.create(project=project, user=users["rita"], role=Role.REVIEWER)
    Membership.objects.create(project=project, user=users["anna"], role=Role.ANNOTATOR)
    label = label_create(project=project, name="gull", color="#1f77b4")
    images = add_images(dataset_create(project=project, name="cliff"), 2)
    for i, score in enumerate(SCORES):
        image = images[i % 2]
        instance_create(
            image=image,
            mask=box_mask(image, 4 + i, 4, 20 + i, 18),
            label_id=label.id,
            source="mis",
            score=score,
            pseudo=True,
        )
    instance_create(
        image=images[0],
        mask=box_mask(images[0], 30, 20, 40, 30),
        source="exits",
        score=0.8,
        pseudo=True,
    )
    # manual
    instance_create(image=images[1], mask=box_mask(images[1], 1, 1, 9, 9), label_id=label.id)
    return project


def cell(page: Page, source: str, state: str):
    return page.locator(f'.review-counts tr[data-source="{source}"] td[data-state="{state}"]')


def test_reviewer_accepts_one_then_bulk_accepts_by_threshold(
    page: Page, project, tmp_path: Path
) -> None:
    login(page, "rita")
    page.goto(f"/#/projects/{project.id}")
    page.get_by_role("link", name="Review pseudo labels").click()
    page.wait_for_url(f"**/#/projects/{project.id}/review")

    expect(cell(page, "mis", "pending")).to_have_text("6")
    expect(cell(page, "exits", "pending")).to_have_text("1")
    expect(cell(page, "manual", "accepted")).to_have_text("1")
    items = page.locator(".review-item")
    expect(items).to_have_count(7)  # pending pseudo labels, best score first
    expect(items.first).to_contain_text("0.95")
    expect(items.nth(2)).to_contain_text("0.80")
    expect(items.first.locator("canvas.review-thumb")).to_have_attribute("data-state", "drawn")
    # The mask is drawn over the image: the thumbnail's centre carries the label's blue tint.
    blue = items.first.locator("canvas").evaluate(
        "c => { const d = c.getContext('2d')"
        ".getImageData(c.width / 2 - 5, c.height / 2 - 5, 10, 10).data;"
        " let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i + 2] - d[i];"
        " return s / (d.length / 4); }"
    )
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

    # One by one: the button on the first, then the keyboard on the selected next one.
    first_id = int(items.first.get_attribute("data-instance-id"))
    items.first.get_by_role("button", name="Accept").click()
    expect(page.locator(f'.review-item[data-instance-id="{first_id}"]')).to_have_attribute(
        "data-state", "accepted"
    )
    expect(cell(page, "mis", "accepted")).to_have_text("1")
    expect(items.nth(1)).to_have_class(re.compile("selected"))
    page.keyboard.press("r")  # rejects the selected one: mis 0.90
    expect(items.nth(1)).to_have_attribute("data-state", "rejected")
    expect(cell(page, "mis", "rejected")).to_have_text("1")
    assert Instance.objects.get(pk=first_id).review_state == "accepted"

    # Bulk: accept all pending with score ≥ 0.6 (exits 0.8, mis 0.7 and 0.6), after a confirm.
    page.get_by_label("Score threshold").fill("0.6")
    messages: list[str] = []

    def on_dialog(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", on_dialog)
    page.get_by_role("button", name="Accept all pending ≥ t").click()
    expect(cell(page, "mis", "accepted")).to_have_text("3")
    expect(cell(page, "exits", "accepted")).to_have_text("1")
    expect(cell(page, "mis", "pending")).to_have_text("2")
    assert messages and "3 pending pseudo labels" in messages[0], messages
    expect(page.locator(".review-bulk")).to_have_attribute("data-changed", "3")
    # The queue still lists pending only: the two low scores.
    page.reload()
    expect(page.locator(".review-item")).to_have_count(2)
    assert Instance.objects.filter(source="mis", review_state="pending").count() == 2
    assert blue > 30, "the mask is drawn in the label colour over the thumbnail"


def test_the_source_filter_offers_the_sources_of_the_projects_pseudo_labels(
    page: Page, project
) -> None:
    login(page, "rita")
    page.goto(f"/#/projects/{project.id}/review")
    expect(cell(page, "manual", "accepted")).to_have_text("1")
    source = page.get_by_label("Source")
    # from the counts: the sources holding pseudo labels, not the manual one
    expect(source.locator("option")).to_have_text(["any pseudo source", "exits", "mis"])
    expect(page.locator(".review-counts tbody tr").first).to_have_attribute("data-source", "exits")
    source.select_option("exits")
    page.get_by_role("button", name="Apply").click()
    items = page.locator(".review-item")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("exits")
    expect(items.first).to_contain_text("0.80")


def test_annotator_gets_no_review_link_and_the_route_is_not_found(page: Page, project) -> None:
    login(page, "anna")
    page.goto(f"/#/projects/{project.id}")
    expect(page.get_by_role("heading", name="Gulls")).to_be_visible()
    expect(page.get_by_role("link", name="Review pseudo labels")).to_have_count(0)
    page.goto(f"/#/projects/{project.id}/review")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator(".review-item")).to_have_count(0)
