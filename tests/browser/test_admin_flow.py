"""An admin with only the browser brings a new person onto a project and gives them work, in
Debian's Chromium over the live stack (uvicorn + a real Celery worker): the owner creates an
account on the project page, adds it as an annotator, creates a task from a dataset's images
and assigns it; the new annotator signs in (a new browser context) and finds the task at
0 / N; the owner closes it and the annotator sees it closed, no longer open work."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from annotation.datasets.services import dataset_create
from annotation.labeling.models import Task
from annotation.projects.models import Membership
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login
from tests.factories import add_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)


def test_owner_creates_an_annotator_and_a_task_they_then_see(
    stack_page: Page, browser: Browser, live_stack
) -> None:
    page = stack_page
    owner = User.objects.create_user(username="olga", password=PASSWORD)
    project = project_create(name="Admin flow", owner=owner)
    label_create(project=project, name="thing", color="#00aa00")
    dataset = dataset_create(project=project, name="photos")
    images = add_images(dataset, 3)

    # 1. Create the account on the project page, as an annotator.
    login(page, "olga")
    page.goto(f"/#/projects/{project.id}")
    members = page.get_by_role("region", name="Members")
    account = members.get_by_role("form", name="Create account")
    account.get_by_label("New username").fill("nina")
    account.get_by_label("Initial password").fill("123")  # too weak: refused, nothing made
    account.get_by_label("Role of the new account").select_option("annotator")
    account.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("too short")
    assert not User.objects.filter(username="nina").exists()
    page.get_by_role("alert").get_by_role("button", name="Dismiss").click()
    account.get_by_label("Initial password").fill(PASSWORD)
    account.get_by_role("button", name="Create account").click()
    expect(members.locator("tr", has_text="nina")).to_be_visible()
    expect(members.get_by_label("Role of nina")).to_have_value("annotator")
    nina = User.objects.get(username="nina")
    assert Membership.objects.get(project=project, user=nina).role == "annotator"

    # 2. A task from all the dataset's images, assigned to her.
    tasks = page.get_by_role("region", name="Tasks")
    expect(tasks).to_contain_text("No tasks yet")
    form = tasks.get_by_role("form", name="New task")
    form.get_by_label("Dataset", exact=True).select_option(str(dataset.id))
    form.get_by_label("Task name", exact=True).fill("First batch")
    form.get_by_label("Images", exact=True).select_option("all")
    form.get_by_label("Split", exact=True).select_option("one")
    form.get_by_label("Assignee", exact=True).select_option(str(nina.id))
    form.get_by_role("button", name="Create task").click()
    row = tasks.locator("tr", has_text="First batch")
    expect(row).to_have_attribute("data-state", "todo")
    expect(row.get_by_label("Assignee of First batch")).to_have_value(str(nina.id))
    expect(row.locator(".progress-text")).to_have_text("0 / 3 images")
    task = Task.objects.get(name="First batch")
    assert task.assignee_id == nina.id
    assert sorted(task.images.values_list("id", flat=True)) == [i.id for i in images]

    # 3. The new annotator signs in (her own browser context) and finds her work.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_stack.url)
    context.set_default_timeout(15_000)
    try:
        theirs = context.new_page()
        errors: list[str] = []
        theirs.on("pageerror", lambda exc: errors.append(str(exc)))
        login(theirs, "nina")
        theirs.locator(f'a.project-card[data-project-id="{project.id}"]').click()
        their_tasks = theirs.get_by_role("region", name="Tasks")
        their_row = their_tasks.locator("tr", has_text="First batch")
        expect(their_row.locator(".progress-text")).to_have_text("0 / 3 images")
        expect(their_row).to_contain_text("nina")
        expect(their_row.get_by_role("link", name="Annotate First batch")).to_have_attribute(
            "href", re.compile(rf"#/tasks/{task.id}/images/{images[0].id}$")
        )
        # Annotators manage nothing here.
        expect(theirs.get_by_role("form", name="New task")).to_have_count(0)
        expect(theirs.get_by_role("form", name="Create account")).to_have_count(0)

        # 4. The owner closes the task; the annotator sees it closed, with nothing to open.
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Close First batch").click()
        expect(row).to_have_attribute("data-state", "closed")
        expect(row.locator(".progress-text")).to_have_text("0 / 3 images")
        theirs.reload()
        their_row = theirs.get_by_role("region", name="Tasks").locator("tr", has_text="First batch")
        expect(their_row).to_have_attribute("data-state", "closed")
        expect(their_row.get_by_role("link", name="Annotate First batch")).to_have_count(0)
        assert not errors, errors
    finally:
        context.close()
    assert Task.objects.get(pk=task.pk).state == "closed"

    # 5. Closing gave the images back: split those in no open task between two people,
    # reassign one part, and reopen the first task.
    form.get_by_label("Task name", exact=True).fill("Second")
    form.get_by_label("Images", exact=True).select_option("unassigned")
    form.get_by_label("Split", exact=True).select_option("people")
    form.get_by_label("A part for nina").check()
    form.get_by_label("A part for olga").check()
    form.get_by_role("button", name="Create tasks").click()
    first_part = tasks.locator("tr", has_text="Second 1/2")
    second_part = tasks.locator("tr", has_text="Second 2/2")
    expect(first_part.locator(".progress-text")).to_have_text("0 / 2 images")
    expect(second_part.locator(".progress-text")).to_have_text("0 / 1 image")
    picker = second_part.get_by_label("Assignee of Second 2/2")
    picker.select_option(str(nina.id))
    expect(picker).to_be_enabled()  # disabled while the change is saved
    expect(picker).to_have_value(str(nina.id))
    expect(second_part.locator(".progress-text")).to_have_text("0 / 1 image")
    row.get_by_role("button", name="Reopen First batch").click()
    expect(row).to_have_attribute("data-state", "todo")
    parts = {t.name: t for t in Task.objects.filter(name__startswith="Second")}
    assert parts["Second 1/2"].assignee_id == nina.id
    assert parts["Second 2/2"].assignee_id == nina.id  # reassigned from olga
    split = [set(parts[n].images.values_list("id", flat=True)) for n in sorted(parts)]
    assert not split[0] & split[1] and split[0] | split[1] == {i.id for i in images}
    assert Task.objects.get(pk=task.pk).state == "todo"
