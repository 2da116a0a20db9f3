"""The Models page and the learning jobs in Debian's Chromium over the live stack: an owner
uploads a checkpoint (a worker imports it, the row turns ready live), makes it the default,
runs an EXITS job from the Jobs page to 100 % and finds its generator among the models; an
annotator sees neither page."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from annotation.common import rle
from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_create, dataset_upload
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create, prompt_append
from annotation.modelstore.models import TrainedModel
from annotation.projects.models import Membership, Role
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.browser.conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    arr[20:70, 30:90] = rng.integers(180, 255, size=3, dtype=np.uint8)  # one bright block
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def world():
    owner = User.objects.create_user(username="olga", password=PASSWORD)
    annotator = User.objects.create_user(username="adam", password=PASSWORD)
    project = project_create(name="Models project", owner=owner)
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    label = label_create(project=project, name="block", color="#00aa00")
    dataset = dataset_create(project=project, name="blocks")
    dataset_upload(
        dataset=dataset, uploads=[Upload(f"b{i}.png", io.BytesIO(_png(i))) for i in range(3)]
    )
    for image in Image.objects.filter(dataset=dataset):
        # each block outlined with the extreme-points tool: top, left, bottom, right
        inst = instance_create(
            image=image, mask=rle.encode(np.zeros((96, 128), bool)), label_id=label.id
        )
        prompt_append(
            instance=inst,
            kind="extreme_points",
            payload={"points": [[60, 20], [30, 45], [60, 69], [89, 45]]},
        )
    return project, dataset


def test_owner_uploads_a_model_and_runs_exits(stack_page: Page, world, tmp_path: Path):
    from inference.methods.dynamite.checkpoint import save_model
    from inference.methods.dynamite.model import DynaMITe, DynamiteConfig

    project, dataset = world
    checkpoint = tmp_path / "dynamite_tiny.safetensors"
    save_model(DynaMITe(DynamiteConfig.tiny()), checkpoint)
    page = stack_page
    login(page, "olga")
    page.goto(f"/#/projects/{project.id}")
    page.get_by_role("link", name="Models", exact=True).click()
    page.wait_for_url(f"**/#/projects/{project.id}/models")
    expect(page.locator(".empty-inline", has_text="No models yet")).to_be_visible()

    form = page.get_by_role("form", name="Upload a checkpoint")
    form.get_by_label("Method").select_option("dynamite")
    form.get_by_label("Model name").fill("tiny DynaMITe")
    form.get_by_label("Checkpoint file").set_input_files(str(checkpoint))
    form.get_by_role("button", name="Upload").click()
    row = page.locator("tr[data-model-id]").filter(has_text="tiny DynaMITe")
    expect(row).to_have_attribute("data-state", "ready", timeout=120_000)  # imported by the worker
    row.get_by_role("button", name="Make default").click()
    expect(row.get_by_role("button", name="Make default")).to_have_count(0)
    expect(row.get_by_title("The annotation page offers this model")).to_have_text("default")
    model = TrainedModel.objects.get(name="tiny DynaMITe")
    assert model.is_default and model.config["backbone"] == "tiny"

    page.get_by_role("link", name="Jobs").first.click()
    page.wait_for_url(f"**/#/projects/{project.id}/jobs")
    launch = page.get_by_role("form", name="Launch a job")
    launch.get_by_label("Dataset").select_option(str(dataset.id))
    launch.get_by_label("Job kind").select_option("exits")
    launch.get_by_label("EXITS crop").fill("64")
    launch.get_by_label("Warm-up epochs").fill("1")
    launch.get_by_label("Epochs", exact=True).fill("1")
    launch.get_by_role("button", name="Launch").click()
    job_row = page.locator("tr[data-kind=exits]")
    expect(job_row).to_have_attribute("data-state", "succeeded", timeout=240_000)
    expect(job_row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(job_row).to_contain_text("pseudo masks from 3 objects")
    created = Instance.objects.filter(image__dataset=dataset, source="exits")
    assert 0 < created.count() <= 3 and all(i.review_state == "pending" for i in created)

    job_row.get_by_role("link", name="model #").click()
    page.wait_for_url(f"**/#/projects/{project.id}/models")
    expect(page.locator("tr[data-model-id]")).to_have_count(2)
    expect(page.locator("tr[data-model-id]").filter(has_text="EXITS")).to_contain_text(
        "trained (job #"
    )


def test_an_annotator_sees_no_models(stack_page: Page, world):
    project, _ = world
    page = stack_page
    login(page, "adam")
    page.goto(f"/#/projects/{project.id}")
    expect(page.locator(".page-head h1")).to_have_text("Models project")
    expect(page.get_by_role("link", name="Models", exact=True)).to_have_count(0)
    page.goto(f"/#/projects/{project.id}/models")
    expect(page.locator(".empty")).to_contain_text(
        "Only the project's owners, managers and reviewers"
    )
    expect(page.get_by_role("form", name="Upload a checkpoint")).to_have_count(0)


def test_an_owner_sees_the_checkpoints_on_the_workers(
    page: Page, world, tmp_path: Path, monkeypatch
):
    """The worker's report (as its heartbeat leaves it in Redis): the SAM checkpoint it found,
    with its size and device, and the missing ones greyed with the folder to put them in."""
    from annotation.segmentation.interactive import checkpoints, dispatch, keys
    from inference.methods.sam.tiny import save_tiny

    project, _ = world
    host = "gpu-1@browser-test"
    save_tiny("sam", tmp_path / "weights" / "facebook--sam-vit-base")
    (tmp_path / "hf").mkdir()
    report = checkpoints.discover("cuda:0", root=tmp_path / "weights", hf_cache_dir=tmp_path / "hf")
    # the live server runs in this process: the worker counts as alive while its report lasts
    monkeypatch.setattr(dispatch, "alive_workers", lambda: [host])
    monkeypatch.setattr(keys, "ALIVE_TTL_S", 600)  # the report outlives the page's load
    checkpoints.publish(host, report)
    try:
        login(page, "olga")
        page.goto(f"/#/projects/{project.id}/models")
        listed = page.get_by_role("region", name="Checkpoints on the workers")
        found = listed.locator("tr[data-checkpoint='sam/vit-b']")
        expect(found).to_have_attribute("data-state", "found")
        size = checkpoints.folder_size(tmp_path / "weights" / "facebook--sam-vit-base")
        expect(found).to_contain_text("facebook/sam-vit-base")
        expect(found).to_contain_text(_format_bytes(size))
        expect(found).to_contain_text("cuda:0")
        expect(found).to_contain_text(host)
        missing = listed.locator("tr.checkpoint-missing")
        expect(missing).to_have_count(7)
        expect(listed.locator("tr[data-checkpoint='sam3/sam3']")).to_contain_text(
            f"put the checkpoint folder at {tmp_path / 'weights'}/facebook--sam3"
        )
    finally:
        keys.redis_client().delete(keys.weights(host))


def _format_bytes(n: int) -> str:
    """What the page's formatBytes (frontend/js/dom.js) prints."""
    if n < 1024:
        return f"{n} B"
    value, units = n / 1024, ["KB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.1f} {units[0]}" if value < 10 else f"{round(value)} {units[0]}"
