"""Hostile input to the mask API: never native code on unchecked input, never a 500 from the
database, and an unexpected failure answers in the house JSON shape without leaking anything."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from pycocotools import mask as mask_utils
from rest_framework.test import APIClient

from annotation.common import rle
from annotation.labeling.models import Instance
from tests.factories import box_mask

REPO = Path(__file__).resolve().parents[3]
HUGE_POLYGON = [[0, 0, 4e8, 0, 4e8, 4e8, 0, 4e8]]


@pytest.fixture
def no_native(monkeypatch, wc):
    """pycocotools made unreachable: a request that gets to it fails the test cleanly instead
    of crashing the test process."""

    def refuse(*args, **kwargs):
        raise AssertionError("unchecked input reached pycocotools")

    for name in ("frPyObjects", "decode", "merge", "area", "toBbox"):
        monkeypatch.setattr(rle.mask_utils, name, refuse)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def test_huge_polygon_does_not_crash_the_process():
    """The reported call, in a child process (on the old code it segfaults)."""
    code = textwrap.dedent(f"""
        from annotation.common import rle
        try:
            rle.from_segmentation({HUGE_POLYGON!r}, 48, 64)
        except rle.MaskFormatError as exc:
            print("refused:", exc)
    """)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'platform'}"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "refused: a polygon vertex lies outside the image" in done.stdout


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mask, needle",
    [
        (HUGE_POLYGON, "outside the image"),
        ([[-5, 0, 10, 0, 10, 10]], "outside the image"),
        ([[0, 0, 10, 0, 10, 10]] * 1001, "polygons; the limit is"),
        ([[0, 0, 10, 0, 10, 10] * 40_000], "polygon vertices"),
        ([[0, 0, 63, 47] * 10_000], "outline is longer"),
        ([[0, 0, 10**400, 0, 10, 10]], "too large"),
        ([[0, 0, True, 0, 10, 10]], "flat list of numbers"),
        ({"size": [48, 64], "counts": "é0"}, "must be ASCII"),
        ({"size": [48, 64], "counts": "~0"}, "outside '0'..'o'"),
        ({"size": [48, 64], "counts": "o"}, "middle of a number"),
        ({"size": [48, 64], "counts": "0" * 7000}, "characters for 3072 pixels"),
        ({"size": [48, 64], "counts": "lo0"}, "covers"),  # runs that overrun the image
        ({"size": [48, 64], "counts": [3072] + [0] * 4000}, "runs for 3072 pixels"),
    ],
)
def test_hostile_masks_are_refused_before_pycocotools(wc, no_native, mask, needle):
    w, client = wc
    response = client.post(
        f"/api/images/{w.assigned_image.id}/instances/", {"mask": mask}, format="json"
    )
    assert response.status_code == 400, response.content[:500]
    assert needle in response.json()["error"]["message"]
    patch = client.patch(
        f"/api/instances/{w.instance.id}/", {"version": 1, "mask": mask}, format="json"
    )
    assert patch.status_code == 400 and needle in patch.json()["error"]["message"]
    assert Instance.objects.get(pk=w.instance.id).version == 1


def test_the_counts_check_reads_every_mask_pycocotools_writes():
    rng = np.random.default_rng(3)
    for h, w in [(1, 1), (3, 5), (48, 64), (300, 400), (2000, 3000)]:
        for mask in (
            np.zeros((h, w)),
            np.ones((h, w)),
            rng.random((h, w)) < 0.5,
            rng.random((h, w)) < 0.01,
            np.indices((h, w)).sum(0) % 2,
        ):
            coco = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            counts = coco["counts"].decode()
            runs = rle.compressed_runs(counts, h, w)
            assert runs.sum() == h * w and runs[1::2].sum() == mask.sum()
            if runs.size > rle.MAX_RUNS:  # noise and checkerboards at 2000×3000: refused by design
                with pytest.raises(rle.MaskFormatError, match="runs, the most a mask may have"):
                    rle.from_segmentation({"size": [h, w], "counts": counts}, h, w)
                continue
            assert (
                rle.from_segmentation({"size": [h, w], "counts": counts}, h, w)["counts"] == counts
            )


def test_polygons_at_the_image_edge_are_still_accepted():
    stored = rle.from_segmentation([[-0.5, -0.5, 64.5, -0.5, 64.5, 48.5, -0.5, 48.5]], 48, 64)
    assert rle.area_and_bbox(stored)[0] == 48 * 64
    with pytest.raises(rle.MaskFormatError, match="finite"):
        rle.from_segmentation([[0, 0, float("nan"), 0, 10, 10]], 48, 64)
    with pytest.raises(rle.MaskFormatError, match="exceeds the limit"):
        rle.from_segmentation([[0, 0, 1, 0, 1, 1]], 70_000, 70_000)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"version": 1, "z_order": 1099511627776}, "z_order"),
        ({"version": 1, "z_order": -(2**31) - 1}, "z_order"),
        ({"version": 2**40, "z_order": 1}, "version"),
        ({"version": 1, "label_id": 2**70}, "label_id"),
        ({"version": 1, "score": "nan"}, "score"),
        ({"version": 1, "score": "Infinity"}, "score"),
    ],
)
def test_out_of_range_numbers_are_a_400_not_a_database_error(wc, body, field):
    w, client = wc
    response = client.patch(f"/api/instances/{w.instance.id}/", body, format="json")
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["detail"]


@pytest.mark.django_db
def test_long_strings_and_odd_ids_are_a_400(wc):
    w, client = wc
    image = w.assigned_image
    long_name = client.post(
        f"/api/images/{image.id}/instances/",
        {"mask": box_mask(image, 0, 0, 4, 4), "model_name": "m" * 101},
        format="json",
    )
    assert long_name.status_code == 400 and "model_name" in long_name.json()["error"]["detail"]
    odd = client.delete(f"/api/instances/{w.instance.id}/?version=²")
    assert odd.status_code == 400 and odd.json()["error"]["message"] == "version must be an integer"
    owner = APIClient()
    owner.force_login(w.users["owner"])
    task = owner.post(
        f"/api/projects/{w.project.id}/tasks/",
        {"dataset_id": w.dataset.id, "name": "t", "image_ids": [image.id, 2**70]},
        format="json",
    )
    assert task.status_code == 400 and "image_ids" in task.json()["error"]["detail"]


@pytest.mark.django_db
def test_deeply_nested_json_body_is_a_400(wc):
    w, client = wc
    response = client.generic(
        "PATCH", f"/api/instances/{w.instance.id}/", "[" * 100_000, content_type="application/json"
    )
    assert response.status_code == 400 and "nested" in response.json()["error"]["message"]


def _assert_no_leak(response) -> None:
    body = response.content.decode()
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "server_error"
    for secret in (
        settings.DATABASE_URL,
        settings.REDIS_URL,
        settings.SECRET_KEY,
        str(REPO),
        "Traceback",
        "boom-detail",
        "/tmp/",
    ):
        assert secret not in body


@pytest.mark.django_db
def test_an_unexpected_error_in_a_view_is_a_bare_json_500(wc, monkeypatch):
    w, client = wc

    def explode(*args, **kwargs):
        raise RuntimeError(
            f"boom-detail {settings.DATABASE_URL} {settings.REDIS_URL} {REPO}/x.py /tmp/y"
        )

    monkeypatch.setattr("annotation.labeling.selectors.instance_for", explode)
    response = client.get(f"/api/instances/{w.instance.id}/")
    assert response.status_code == 500
    _assert_no_leak(response)


def _exploding_view(request):
    raise RuntimeError(f"boom-detail {settings.DATABASE_URL} {REPO}")


@pytest.mark.django_db
@pytest.mark.urls("tests.annotation.common.test_bounds")
def test_an_error_outside_drf_under_api_is_a_bare_json_500():
    client = Client(raise_request_exception=False)
    _assert_no_leak(client.get("/api/explode/"))
    page = client.get("/explode/")  # not the API: Django's plain page
    assert page.status_code == 500 and not page["Content-Type"].startswith("application/json")


# The URLconf of the test above: the real one plus a plain Django view that fails.
from django.urls import path

from config import urls as _real

urlpatterns = [
    path("api/explode/", _exploding_view),
    path("explode/", _exploding_view),
    *_real.urlpatterns,
]
handler500 = getattr(_real, "handler500", "django.views.defaults.server_error")
