"""A project admin attaches a bucket of the team's own with only the browser (issue 21), in
Debian's Chromium against a real S3-compatible server (moto, tests/s3.py): on the project page
they add a bucket source with keys (a malformed bucket name is refused at the Bucket field,
nothing stored), see it listed with the key id's hint and never the secret, check it; a source
naming a bucket that does not exist says so in its row and on the dataset page's attach form;
the dataset page attaches a prefix of PNG/JPEG objects and a text file, follows the job to its
end (the text file skipped with its reason), shows the thumbnails, and a re-sync adds only the
new object; deleting a source its images are read from is refused with the server's reason;
a reviewer sees neither panel.

On pytest-django's live server (in this process, so ``settings`` reach it) with a Celery worker
of this test's own, on a queue of its own: the session's worker was started without the test
server's endpoint in ``MASKWRIGHT_BUCKET_ENDPOINTS``, and its queue must not take the job."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from annotation.cli.services import stop_processes
from annotation.datasets.models import BucketSource, Image
from annotation.datasets.services import dataset_create
from annotation.jobs import engine
from annotation.projects.services import membership_set, project_create
from annotation.users.models import User
from tests.annotation.datasets.buckets_world import KEY_ID, SECRET, Bucket
from tests.browser.conftest import PASSWORD, login
from tests.conftest import start_worker
from tests.factories import make_image_bytes
from tests.s3 import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_KEY_ID, NEW_SECRET = "AKIAROTATEDKEY9Q2W", "rotated-secret-value-7f3c"  # a key rotation
expect.set_options(timeout=15_000)


@pytest.fixture
def attach_worker(
    s3_server: S3Server, settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """The test server's endpoint allowed here (the live server) and in a worker of this test's
    own, which alone serves the queue the ``attach`` kind is sent to while the test runs."""
    queue = f"attach-browser-{os.getpid()}-{time.monotonic_ns()}"
    settings.MASKWRIGHT_BUCKET_ENDPOINTS = [s3_server.endpoint]
    monkeypatch.setenv("MASKWRIGHT_BUCKET_ENDPOINTS", s3_server.endpoint)
    monkeypatch.setitem(engine.QUEUES, "attach", queue)
    proc = start_worker(f"attach-browser-{os.getpid()}", tmp_path / "worker.log", queues=queue)
    try:
        yield
    finally:
        stop_processes([proc])


def _record_api(page: Page) -> list[str]:
    """Every API response body the page receives (fetched through the route, so none is lost)."""
    bodies: list[str] = []

    def through(route: Route) -> None:
        response = route.fetch()
        bodies.append(response.body().decode("utf-8", "replace"))
        route.fulfill(response=response)

    # the JSON answers only: an image request still in flight when the page closes would
    # fail its fulfil
    page.route(lambda url: "/api/" in url and not url.endswith(("/thumbnail", "/file")), through)
    return bodies


def test_admin_adds_checks_and_attaches_a_bucket(
    page: Page, s3_server: S3Server, attach_worker: None, tmp_path: Path
) -> None:
    owner = User.objects.create_user(username="bea", password=PASSWORD)
    project = project_create(name="Field survey", owner=owner)
    dataset = dataset_create(project=project, name="drone")
    bucket = Bucket(s3_server)
    bucket.put("field/a.png", make_image_bytes(64, 48, "PNG", seed=1))
    bucket.put("field/b.jpg", make_image_bytes(50, 30, "JPEG", seed=2))
    bucket.put("field/sub/c.png", make_image_bytes(20, 20, "PNG", seed=3))
    bucket.put("field/readme.txt", b"flight log, not an image")
    bucket.put("other/x.png", make_image_bytes(30, 30, "PNG", seed=4))  # outside the prefix
    api_bodies = _record_api(page)

    # 1. The project page: no sources yet; a malformed bucket name is refused at its field.
    login(page, "bea")
    page.goto(f"/#/projects/{project.id}")
    panel = page.get_by_role("region", name="Bucket sources")
    expect(panel).to_contain_text("No bucket sources yet")
    form = panel.get_by_role("form", name="Add bucket source")
    secret = form.get_by_label("Secret access key")
    expect(secret).to_have_attribute("type", "password")
    expect(secret).to_have_attribute("autocomplete", "off")
    form.get_by_label("Source name").fill("survey")
    form.get_by_label("Endpoint URL").fill(s3_server.endpoint)
    form.get_by_label("Bucket", exact=True).fill("Field Photos!")
    form.get_by_label("Access key id").fill(KEY_ID)
    secret.fill(SECRET)
    form.get_by_role("button", name="Add bucket source").click()
    bucket_input = form.get_by_label("Bucket", exact=True)
    expect(bucket_input).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".bucket-field:has(input[name=bucket]) .field-error")).to_have_text(
        "This value does not match the required pattern."
    )
    expect(secret).to_have_value("")  # a refusal does not keep the secret in the page
    assert not BucketSource.objects.exists()

    # 2. Fixed: added, listed with the hint, checked at once and again by hand.
    bucket_input.fill(bucket.name)
    secret.fill(SECRET)
    form.get_by_role("button", name="Add bucket source").click()
    row = panel.locator("tr.bucket-row", has_text="survey")
    expect(row).to_contain_text(f"set …{KEY_ID[-4:]}")
    expect(row).to_contain_text(bucket.name)
    expect(row).to_contain_text(s3_server.endpoint)
    expect(panel.get_by_role("status", name="Check of survey")).to_have_text(
        "reachable — 5 objects seen"
    )
    expect(secret).to_have_value("")
    expect(form.get_by_label("Access key id")).to_have_value("")
    source = BucketSource.objects.get(name="survey")
    with page.expect_response(f"**/api/bucket-sources/{source.id}/check/") as checked:
        row.get_by_role("button", name="Check survey").click()
    assert checked.value.ok
    expect(panel.get_by_role("status", name="Check of survey")).to_have_text(
        "reachable — 5 objects seen"
    )

    # 3. A bucket that does not exist: added (anonymous), its check names the bucket.
    form.get_by_label("Source name").fill("typo")
    form.get_by_label("Endpoint URL").fill(s3_server.endpoint)
    form.get_by_label("Bucket", exact=True).fill("no-such-bucket-here")
    form.get_by_role("button", name="Add bucket source").click()
    typo_row = panel.locator("tr.bucket-row", has_text="typo")
    expect(typo_row).to_contain_text("anonymous")
    expect(panel.get_by_role("status", name="Check of typo")).to_contain_text(
        "bucket: cannot list the bucket: the bucket does not exist"
    )
    panel.screenshot(path=str(tmp_path / "bucket-sources.png"))  # for a person to look at

    # 4. The dataset page: the wrong source is refused on the form, the right one attaches.
    page.goto(f"/#/datasets/{dataset.id}")
    attach = page.get_by_role("region", name="Attach from bucket")
    attach_form = attach.get_by_role("form", name="Attach from bucket")
    choose = attach_form.get_by_label("Bucket source")
    choose.select_option(label="typo — no-such-bucket-here")
    attach_form.get_by_label("Prefix", exact=True).fill("field")
    attach_form.get_by_role("button", name="Attach").click()
    expect(choose).to_have_attribute("aria-invalid", "true")
    refused = attach.locator(".bucket-field:has(select) .field-error")
    expect(refused).to_contain_text("the bucket does not exist")
    expect(refused).to_contain_text("fix the source on the project page")

    choose.select_option(str(source.id))
    expect(attach).to_contain_text("Launching again later adds only new objects")
    attach_form.get_by_role("button", name="Attach").click()
    job = attach.locator(".attach-job")
    expect(job).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(job.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(job.locator(".attach-summary")).to_have_text("3 images attached · 1 skipped.")
    skipped = job.get_by_role("table", name="Skipped objects").locator("tr.refused")
    expect(skipped).to_have_count(1)
    expect(skipped).to_contain_text("field/readme.txt")
    expect(skipped).to_contain_text("not an image")
    expect(job.get_by_role("link", name="Open the Jobs page")).to_have_attribute(
        "href", f"#/projects/{project.id}/jobs"
    )
    grid = page.locator(".thumb-grid")
    expect(grid.locator(".thumb-card")).to_have_count(3)
    page.wait_for_function(
        """() => [...document.querySelectorAll('.thumb-card img')]
              .every((img) => img.complete && img.naturalWidth > 0)"""
    )
    expect(page.locator(".count-badge")).to_have_text("3 images")
    attach.screenshot(path=str(tmp_path / "attach-from-bucket.png"))

    # 5. A re-sync adds only the new object.
    bucket.put("field/d.jpg", make_image_bytes(40, 40, "JPEG", seed=5))
    resync = attach_form.get_by_role("button", name="Re-sync")
    expect(attach).to_contain_text("a re-sync adds only the objects that are new")
    resync.click()
    expect(job.locator(".attach-summary")).to_have_text(
        "1 image attached · 1 skipped · 3 already attached.", timeout=30_000
    )
    expect(grid.locator(".thumb-card")).to_have_count(4)
    assert (
        Image.objects.filter(dataset=dataset, file__startswith=f"bucket/{source.id}/").count() == 4
    )

    # 6. Back on the project page: the images count; deleting a source in use is refused.
    page.goto(f"/#/projects/{project.id}")
    expect(row.locator("td.num")).to_have_text("4")

    # Edit in place: the typo's bucket is fixed (its keys, left empty, stay as they were);
    # the survey's keys are rotated (both typed again), and still never shown.
    typo_row.get_by_role("button", name="Edit typo").click()
    edit_form = panel.get_by_role("form", name="Edit bucket source")
    expect(edit_form.get_by_label("Bucket", exact=True)).to_have_value("no-such-bucket-here")
    expect(edit_form.get_by_label("Secret access key")).to_have_value("")
    edit_form.get_by_label("Bucket", exact=True).fill(bucket.name)
    edit_form.get_by_role("button", name="Save changes").click()
    expect(typo_row).to_contain_text(bucket.name)
    expect(typo_row).to_contain_text("anonymous")
    expect(panel.get_by_role("status", name="Check of typo")).to_contain_text("reachable —")
    row.get_by_role("button", name="Edit survey").click()
    edit_form.get_by_label("Access key id").fill(NEW_KEY_ID)
    edit_form.get_by_label("Secret access key").fill(NEW_SECRET)
    edit_form.get_by_role("button", name="Save changes").click()
    expect(row).to_contain_text(f"set …{NEW_KEY_ID[-4:]}")
    expect(panel.get_by_role("status", name="Check of survey")).to_contain_text("reachable —")
    expect(panel.get_by_role("form", name="Add bucket source")).to_be_visible()
    assert BucketSource.objects.get(name="survey").access_key_id_last4 == NEW_KEY_ID[-4:]
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete survey").click()
    expect(page.get_by_role("alert")).to_contain_text("4 images of datasets are read from this")
    typo_row.get_by_role("button", name="Delete typo").click()
    expect(typo_row).to_have_count(0)
    assert list(BucketSource.objects.values_list("name", flat=True)) == ["survey"]

    # Never the secret (nor the whole key id) in the page or in what the API sent it.
    html = page.content()
    for hidden in (SECRET, KEY_ID, NEW_SECRET, NEW_KEY_ID):
        assert hidden not in html
        assert api_bodies and not [b for b in api_bodies if hidden in b]
    page.unroute_all(behavior="ignoreErrors")

    # 7. A reviewer, not an admin, sees neither panel.
    User.objects.create_user(username="rita", password=PASSWORD)
    membership_set(project=project, username="rita", role="reviewer")
    page.context.clear_cookies()
    login(page, "rita")
    page.goto(f"/#/projects/{project.id}")
    expect(page.get_by_role("region", name="Datasets")).to_contain_text("drone")
    expect(page.get_by_role("region", name="Bucket sources")).to_have_count(0)
    page.goto(f"/#/datasets/{dataset.id}")
    expect(grid.locator(".thumb-card")).to_have_count(4)
    expect(page.get_by_role("region", name="Attach from bucket")).to_have_count(0)
