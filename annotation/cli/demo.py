"""The demo project of the quick start: real photos from scikit-image, a login, a task."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image as PILImage

from annotation.datasets.models import Dataset
from annotation.datasets.services import Upload, dataset_create, dataset_upload
from annotation.labeling.services import task_create
from annotation.projects.models import Project
from annotation.projects.services import label_create, project_create
from annotation.users.models import User

DEMO_USER = os.environ.get("MASKWRIGHT_DEMO_USER", "demo")
DEMO_PASSWORD = os.environ.get("MASKWRIGHT_DEMO_PASSWORD", "demo")
# scikit-image ships these inside its wheel (no download).
SAMPLES = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "stereo_motorcycle",
    "coins",
    "hubble_deep_field",
]
LABELS = [("person", "#e6194b"), ("cat", "#3cb44b"), ("cup", "#ffe119"), ("vehicle", "#4363d8")]


def _sample_images() -> list[tuple[str, np.ndarray]]:
    try:
        from skimage import data
    except ImportError:  # the quick start installs it; a bare install gets drawn images
        return _drawn_images()
    images = []
    for name in SAMPLES:
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001, S112 (a sample that needs a download: skip it)
            continue
        if isinstance(img, tuple):
            img = img[0]
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        images.append((f"{name.removeprefix('stereo_')}.png", img[..., :3].astype(np.uint8)))
    return images or _drawn_images()


def _drawn_images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(4):
        img = np.full((384, 512, 3), 235, np.uint8)
        for _ in range(5):
            x, y, r = rng.integers(40, 470), rng.integers(40, 340), rng.integers(20, 70)
            yy, xx = np.ogrid[:384, :512]
            img[(xx - x) ** 2 + (yy - y) ** 2 < r * r] = rng.integers(0, 200, 3)
        out.append((f"shapes_{i}.png", img))
    return out


def demo_create() -> str:
    """Create (once) the demo user, project, labels, dataset and task; return a summary."""
    user, created = User.objects.get_or_create(username=DEMO_USER)
    if created:
        # Not staff: its password is public. It owns the demo project, which is all the app's
        # own pages ask (project roles); Django admin needs an account made on purpose.
        user.set_password(DEMO_PASSWORD)
        user.save()
    elif (user.is_staff or user.is_superuser) and user.check_password(DEMO_PASSWORD):
        user.is_staff = user.is_superuser = False  # made staff by an older release
        user.save(update_fields=["is_staff", "is_superuser"])
    project = Project.objects.filter(name="Demo", memberships__user=user).first()
    if project is None:
        project = project_create(
            name="Demo", description="Sample photos from scikit-image", owner=user
        )
        for name, color in LABELS:
            label_create(project=project, name=name, color=color)
    dataset = Dataset.objects.filter(project=project).first()
    if dataset is None:
        dataset = dataset_create(project=project, name="Samples")
        uploads = []
        for name, arr in _sample_images():
            buf = io.BytesIO()
            PILImage.fromarray(arr).save(buf, "PNG")
            buf.seek(0)
            uploads.append(Upload(name, buf))
        report = dataset_upload(dataset=dataset, uploads=uploads, author=user)
        ids = [f.image_id for f in report.files if f.image_id]
        task_create(
            project=project, dataset=dataset, name="Demo task", assignee_id=user.id, image_ids=ids
        )
    return (
        f"demo project {project.id} with {dataset.images.count()} images; "
        f"login {DEMO_USER} / {DEMO_PASSWORD}"
    )
