"""The browser app, driven through Debian's Chromium with Playwright (sync API).

Django runs in pytest-django's ``live_server`` thread (plain http: pages and the REST API; no
websockets there, so the app's polling fallback is what follows jobs). Test data comes from
the ORM and the services; images come through the upload page where that is what is tested.

Screenshots of each page land in ``tmp_path`` (see ``--basetemp``) for a look by eye.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from annotation.common import rle
from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_create, dataset_upload
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.services import instance_create
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)


def new_user(username: str) -> User:
    return User.objects.create_user(username=username, password=PASSWORD)


def solid_png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def test_login_then_project_list(page: Page, tmp_path: Path) -> None:
    alice = new_user("alice")
    project = project_create(name="Street scenes", description="Cars and people", owner=alice)
    label_create(project=project, name="car", color="#ff0000")
    label_create(project=project, name="person", color="#1f77b4")

    page.goto("/login/")
    shot(page, tmp_path, "login")
    login(page, "alice")

    card = page.locator(".project-card", has_text="Street scenes")
    expect(card).to_be_visible()
    expect(card.locator(".role")).to_have_text("owner")
    expect(card.locator(".chip")).to_have_text(["car", "person"])
    chip = card.locator(".chip", has_text="car")
    assert chip.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 0, 0)"
    shot(page, tmp_path, "projects")

    # The card opens the project page with its labels, members and an empty dataset list.
    card.click()
    page.wait_for_url(f"**/#/projects/{project.id}")
    expect(page.get_by_role("heading", name="Street scenes")).to_be_visible()
    expect(page.get_by_role("region", name="Members")).to_contain_text("alice")
    expect(page.get_by_role("region", name="Datasets")).to_contain_text("No datasets yet")

    # Owners create datasets from that page.
    page.get_by_label("Dataset name").fill("Day 1")
    page.get_by_role("button", name="New dataset").click()
    expect(page.get_by_role("link", name="Day 1")).to_be_visible()
    assert project.datasets.filter(name="Day 1").exists()
    shot(page, tmp_path, "project")


def test_upload_images_and_a_corrupt_file(page: Page, tmp_path: Path) -> None:
    owner = new_user("olga")
    project = project_create(name="Uploads", owner=owner)
    dataset = dataset_create(project=project, name="batch")
    files = tmp_path / "files"
    files.mkdir()
    (files / "red.png").write_bytes(solid_png(64, 48, (200, 30, 30)))
    (files / "blue.png").write_bytes(solid_png(40, 80, (30, 30, 200)))
    (files / "bad.jpg").write_bytes(np.random.default_rng(0).bytes(4096))

    login(page, "olga")
    page.goto(f"/#/datasets/{dataset.id}")
    expect(page.locator(".thumb-grid")).to_contain_text("No images yet — drop images or a zip here")
    page.locator("input[type=file][name=files]").set_input_files(
        [files / "red.png", files / "blue.png", files / "bad.jpg"]
    )
    page.get_by_role("button", name="Upload 3 files").click()

    report = page.locator(".report")
    expect(report).to_be_visible()
    expect(report).to_have_attribute("data-accepted", "2")
    expect(report).to_have_attribute("data-refused", "1")
    expect(report.locator(".report-counts")).to_contain_text("2 accepted")
    expect(report.locator(".report-counts")).to_contain_text("1 refused")
    rows = report.locator(".refused-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("bad.jpg")
    reason = rows.first.locator("td.reason")
    expect(reason).to_have_text(re.compile(r"corrupt|not an image", re.IGNORECASE))
    red, green, _ = map(
        int, re.findall(r"\d+", reason.evaluate("el => getComputedStyle(el).color"))[:3]
    )
    assert red > 150 and green < 100, "refusal reasons are shown in red"

    # The grid refreshed by itself: two thumbnails, both decoded.
    thumbs = page.locator(".thumb-grid img")
    expect(thumbs).to_have_count(2)
    for i in range(2):
        thumbs.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.thumb-grid img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert all(v == "lazy" for v in thumbs.evaluate_all("imgs => imgs.map(i => i.loading)"))
    expect(page.locator(".thumb-grid")).to_contain_text("red.png")
    expect(page.locator(".count-badge")).to_have_text("2 images")
    assert sorted(
        Image.objects.filter(dataset=dataset).values_list("original_name", flat=True)
    ) == [
        "blue.png",
        "red.png",
    ]
    shot(page, tmp_path, "dataset")


def test_image_view_draws_masks_and_keys_navigate(page: Page, tmp_path: Path) -> None:
    owner = new_user("mira")
    project = project_create(name="Masks", owner=owner)
    label = label_create(project=project, name="roof", color="#ff0000")
    dataset = dataset_create(project=project, name="aerial")
    width, height = 80, 60
    report = dataset_upload(
        dataset=dataset,
        uploads=[
            Upload("first.png", io.BytesIO(solid_png(width, height, (100, 100, 100)))),
            Upload("second.png", io.BytesIO(solid_png(width, height, (90, 90, 90)))),
        ],
    )
    first_id, second_id = (f.image_id for f in report.files)
    mask = np.zeros((height, width), dtype=bool)
    mask[10:30, 20:70] = True  # rows (y) 10..29, columns (x) 20..69: not symmetric
    instance_create(
        image=Image.objects.get(pk=first_id), mask=rle.encode(mask), label_id=label.id, author=owner
    )

    login(page, "mira")
    page.goto(f"/#/images/{first_id}")
    canvas = page.locator("canvas.image-canvas[data-state=ready]")
    expect(canvas).to_be_visible()
    expect(page.locator(".instance-list")).to_contain_text("roof")
    expect(page.locator(".position")).to_have_text("1 / 2")
    pixels = canvas.evaluate(
        """(c, points) => {
            const g = c.getContext('2d');
            return points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data));
        }""",
        [[65, 15], [40, 20], [25, 45], [5, 5]],
    )
    inside_a, inside_b, outside_a, outside_b = pixels
    for r, g, b, a in (inside_a, inside_b):  # grey 100 under #ff0000 at ~45%
        assert r > 150 and g < 80 and b < 80 and a == 255, pixels
    for px in (outside_a, outside_b):  # untouched grey (the first pair would catch a transpose)
        assert all(abs(v - 100) <= 2 for v in px[:3]) and px[3] == 255, pixels
    assert canvas.evaluate("c => [c.width, c.height]") == [width, height]
    shot(page, tmp_path, "image")

    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/#/images/{second_id}")
    expect(page.locator("canvas.image-canvas[data-state=ready]")).to_be_visible()
    expect(page.locator(".position")).to_have_text("2 / 2")
    expect(page.locator(".instance-list, .image-side")).to_contain_text(
        "No masks on this image yet"
    )
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"**/#/images/{first_id}")
    # The old view's canvas can still read "ready" for a moment; the position is the new view's own.
    expect(page.locator(".position")).to_have_text("1 / 2")
    expect(page.locator("canvas.image-canvas[data-state=ready]")).to_be_visible()
    page.keyboard.press("Escape")
    page.wait_for_url(f"**/#/datasets/{dataset.id}")
    expect(page.locator(".thumb-card")).to_have_count(2)

    # A key pressed while the image view is still loading is not lost: it acts once it can.
    page.goto(f"/#/images/{first_id}")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/#/images/{second_id}")
    expect(page.locator(".position")).to_have_text("2 / 2")


def test_non_member_sees_the_error_banner(page: Page, tmp_path: Path) -> None:
    owner = new_user("owen")
    project = project_create(name="Secret project", owner=owner)
    new_user("eve")

    login(page, "eve")
    expect(page.locator(".thumb-grid, .card-grid")).to_contain_text("No projects yet")
    page.goto(f"/#/projects/{project.id}")
    banner = page.get_by_role("alert")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(f"project {project.id} not found")
    expect(page.locator("main#app")).not_to_contain_text("Secret project")
    shot(page, tmp_path, "not-member")


def test_verify_job_progress_is_followed(page: Page, tmp_path: Path, monkeypatch) -> None:
    # Keep the job off the shared broker (a worker of another test session could take it):
    # record the enqueue instead, and run the job below in this process.
    enqueued: list[tuple[list[int], str]] = []

    class FakeTask:
        def apply_async(self, args, queue, **options):
            enqueued.append((args, queue))

    monkeypatch.setattr("annotation.jobs.tasks.job_run", FakeTask())
    owner = new_user("vera")
    project = project_create(name="Verify", owner=owner)
    dataset = dataset_create(project=project, name="check me")
    dataset_upload(
        dataset=dataset,
        uploads=[
            Upload(f"{i}.png", io.BytesIO(solid_png(32, 32, (i * 40, 0, 0)))) for i in range(3)
        ],
    )

    login(page, "vera")
    page.goto(f"/#/datasets/{dataset.id}")
    expect(page.locator(".thumb-card")).to_have_count(3)
    page.get_by_role("button", name="Verify dataset").click()
    panel = page.get_by_role("region", name="Verify job")
    expect(panel.locator(".state")).to_have_text("queued")
    expect(panel).to_contain_text("Queued — waiting for a worker")
    expect(panel.get_by_role("button", name="Cancel")).to_be_visible()
    job = Job.objects.get(dataset=dataset, kind="verify")
    assert enqueued == [([job.id], "default")]

    # The page, with no websocket under live_server, follows the job by polling.
    assert job_execute(job.id) == "succeeded"
    expect(panel.locator(".state")).to_have_text("succeeded")
    expect(panel).to_contain_text("3 images checked — no problems")
    expect(panel.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(panel.get_by_role("button", name="Cancel")).to_be_hidden()
    shot(page, tmp_path, "verify")

    # A second run, cancelled while it waits for a worker.
    page.get_by_role("button", name="Verify dataset").click()
    expect(panel.locator(".state")).to_have_text("queued")
    panel.get_by_role("button", name="Cancel").click()
    expect(panel.locator(".state")).to_have_text("cancelled")
    expect(panel).to_contain_text("Cancelled.")
    assert Job.objects.filter(dataset=dataset, state="cancelled").count() == 1


def test_rle_decoder_matches_pycocotools(page: Page) -> None:
    rng = np.random.default_rng(7)
    cases, expected = [], []
    for i in range(40):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        if i % 3 == 0:
            mask = rng.random((h, w)) < rng.random()
        elif i % 3 == 1:
            mask = np.zeros((h, w), bool)
            mask[h // 3 :, : w // 2 + 1] = True
        else:
            mask = np.full((h, w), i % 2 == 0)
        cases.append(rle.encode(mask))
        expected.append("".join("1" if v else "0" for v in mask.ravel(order="F")))
    page.goto("/login/")
    decoded = page.evaluate(
        """async (cases) => {
            const m = await import('/static/js/rle.js');
            return cases.map(c => Array.from(m.decode(c)).join(''));
        }""",
        cases,
    )
    assert decoded == expected


def test_upload_progress_counts_bytes_sent(page: Page, tmp_path: Path) -> None:
    owner = new_user("paula")
    project = project_create(name="Big files", owner=owner)
    dataset = dataset_create(project=project, name="noise")
    noise = np.random.default_rng(1).integers(0, 255, size=(700, 700, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(noise).save(buffer, "PNG")  # ~1.5 MB, incompressible
    payload = buffer.getvalue()

    login(page, "paula")
    page.goto(f"/#/datasets/{dataset.id}")
    expect(page.locator(".thumb-grid")).to_contain_text("No images yet")
    # Record every state the progress text goes through, then slow the upload to ~1 MB/s.
    page.evaluate(
        """() => {
            window.__progress = [];
            new MutationObserver(() => {
                const el = document.querySelector('.upload-panel .progress-text');
                const bar = document.querySelector('.upload-panel .progress');
                if (el && el.textContent) window.__progress.push("""
        """[el.textContent, bar.getAttribute('aria-valuenow')]);
            }).observe(document.querySelector('.upload-panel'),"""
        """ {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": 1024 * 1024,
        },
    )
    page.locator("input[type=file][name=files]").set_input_files(
        files=[{"name": "noise.png", "mimeType": "image/png", "buffer": payload}]
    )
    page.get_by_role("button", name="Upload 1 file").click()
    page.wait_for_function(
        "() => { const v = Number(document.querySelector('.upload-panel .progress')"
        "?.getAttribute('aria-valuenow')); return v > 0 && v < 100; }"
    )
    shot(page, tmp_path, "uploading")
    expect(page.locator(".report")).to_have_attribute("data-accepted", "1", timeout=30_000)
    log = page.evaluate("window.__progress")
    partial = [int(v) for text, v in log if text.startswith("Uploading") and v and 0 < int(v) < 100]
    assert partial, f"no intermediate progress was shown: {log}"
    assert any(text.startswith("Processing on the server") for text, _ in log), log
    assert any(re.search(r"of 1\.\d MB", text) for text, _ in log), log
    expect(page.locator(".thumb-card")).to_have_count(1)


def test_upload_with_coco_annotations_and_a_bad_coco_file(page: Page, tmp_path: Path) -> None:
    owner = new_user("cora")
    project = project_create(name="COCO", owner=owner)
    dataset = dataset_create(project=project, name="imported")
    (tmp_path / "cat.png").write_bytes(solid_png(50, 40, (100, 100, 100)))
    (tmp_path / "dog.png").write_bytes(solid_png(50, 40, (120, 120, 120)))
    good = {
        "images": [{"id": 1, "file_name": "cat.png", "width": 50, "height": 40}],
        "categories": [{"id": 7, "name": "cat"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 7,
                "iscrowd": 0,
                "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]],
            }
        ],
    }
    bad = {**good, "annotations": [{**good["annotations"][0], "image_id": 99}]}
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))

    login(page, "cora")
    page.goto(f"/#/datasets/{dataset.id}")
    files = page.locator("input[type=file][name=files]")
    coco = page.locator("input[type=file][name=coco]")

    # A bad COCO file: the server's message in the banner, nothing stored.
    files.set_input_files(tmp_path / "dog.png")
    coco.set_input_files(tmp_path / "bad.json")
    page.get_by_role("button", name="Upload 1 file").click()
    expect(page.get_by_role("alert")).to_contain_text("annotations[0]")
    expect(page.get_by_role("alert")).to_contain_text("image_id 99")
    expect(page.locator(".report-error")).to_contain_text("Nothing was stored")
    assert not Image.objects.filter(dataset=dataset).exists()
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("alert")).to_have_count(0)

    # A good one: the summary, and the mask on the image in the new label's colour.
    page.get_by_role("button", name="Clear").click()
    files.set_input_files(tmp_path / "cat.png")
    coco.set_input_files(tmp_path / "good.json")
    page.get_by_role("button", name="Upload 1 file").click()
    summary = page.locator(".coco-summary")
    expect(summary).to_contain_text("1 mask created")
    expect(summary).to_contain_text("Labels: cat")
    expect(page.locator(".report")).to_have_attribute("data-accepted", "1")
    expect(page.locator(".thumb-card")).to_have_count(1)
    shot(page, tmp_path, "coco")

    page.locator(".thumb-card").first.click()
    canvas = page.locator("canvas.image-canvas[data-state=ready]")
    expect(canvas).to_be_visible()
    color = project.labels.get(name="cat").color
    expected = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    inside = canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(25, 20, 1, 1).data)")
    outside = canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(3, 3, 1, 1).data)")
    shot(page, tmp_path, "coco-image")
    assert outside[:3] == [100, 100, 100]
    for got, want in zip(inside[:3], expected):  # 45 % of the label colour over grey 100
        assert abs(got - (0.55 * 100 + 0.45 * want)) <= 3, (inside, color)


def test_grid_pages_by_100_with_load_more(page: Page) -> None:
    owner = new_user("lars")
    project = project_create(name="Many", owner=owner)
    dataset = dataset_create(project=project, name="lots")
    dataset_upload(
        dataset=dataset,
        uploads=[
            Upload(f"img{i:03d}.png", io.BytesIO(solid_png(8, 8, (i, 255 - i, 7))))
            for i in range(105)
        ],
    )

    login(page, "lars")
    page.goto(f"/#/datasets/{dataset.id}")
    cards = page.locator(".thumb-card")
    expect(cards).to_have_count(100)
    expect(page.locator(".grid-status")).to_have_text("Showing 100 of 105")
    page.get_by_role("button", name="Load more").click()
    expect(cards).to_have_count(105)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(cards.last).to_contain_text("img104.png")

    # The last image steps back to the one before it, and knows it is last.
    cards.last.click()
    expect(page.locator(".position")).to_have_text("105 / 105")
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".position")).to_have_text("104 / 105")


def test_the_api_docs_render_under_the_content_security_policy(page: Page):
    """Swagger UI from the sidecar's static files and a split start-up script: the page holds
    the same policy as the app (the fixture fails the test on any refusal)."""
    new_user("reader")
    login(page, "reader")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    # the header's link, as a user follows it
    page.get_by_role("link", name="API", exact=True).click()
    expect(page).to_have_url(re.compile(r"/api/docs/$"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Maskwright API")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    answer = page.request.get("/api/docs/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    # Offline it works because nothing comes from elsewhere: every file from our origin.
    origin = page.url.split("/api/docs/")[0]
    assert asked and all(url.startswith((origin, "data:", "blob:")) for url in asked), asked
