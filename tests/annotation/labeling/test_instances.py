"""Masks: bbox/area follow the mask, stale versions get 409, the prompt log keeps order."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection

from annotation.common import rle
from annotation.common.exceptions import ApplicationError
from annotation.labeling.models import Instance, Prompt
from annotation.labeling.services import instance_create
from tests.factories import box_mask, make_world

pytestmark = pytest.mark.django_db


def test_bbox_and_area_are_derived_from_the_mask(wc):
    w, client = wc
    img = w.assigned_image
    body = client.post(
        f"/api/images/{img.id}/instances/",
        {
            "mask": box_mask(img, 4, 6, 14, 9),
            "label_id": w.label.id,
        },
        format="json",
    ).json()
    assert body["bbox"] == [4.0, 6.0, 10.0, 3.0] and body["area"] == 30
    assert body["source"] == "manual" and body["version"] == 1
    # a polygon is accepted too and stored as RLE
    body = client.post(
        f"/api/images/{img.id}/instances/", {"mask": [[0, 0, 20, 0, 20, 10, 0, 10]]}, format="json"
    ).json()
    assert isinstance(body["mask"]["counts"], str) and body["area"] > 150
    assert body["z_order"] > Instance.objects.get(pk=w.instance.id).z_order


@pytest.mark.parametrize(
    "mask, needle",
    [
        ({"size": [5, 5], "counts": "00"}, "does not match the image"),
        ({"counts": "x"}, "needs 'size' and 'counts'"),
        ("nonsense", "unknown segmentation type"),
    ],
)
def test_bad_masks_are_refused(wc, mask, needle):
    w, client = wc
    response = client.post(
        f"/api/images/{w.assigned_image.id}/instances/", {"mask": mask}, format="json"
    )
    assert response.status_code == 400 and needle in response.json()["error"]["message"]


def test_a_source_is_manual_import_or_a_registered_method(wc):
    w, client = wc
    img = w.assigned_image
    url = f"/api/images/{img.id}/instances/"
    made = client.post(
        url, {"mask": box_mask(img, 0, 0, 4, 4), "source": "opencv-grabcut"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert made.json()["source"] == "opencv-grabcut" and made.json()["review_state"] == "accepted"
    proposal = client.post(
        url,
        {"mask": box_mask(img, 0, 0, 4, 4), "source": "opencv-grabcut", "pseudo": True},
        format="json",
    )
    assert proposal.json()["review_state"] == "pending"  # a pseudo label starts in the review queue
    assert Instance.objects.get(pk=proposal.json()["id"]).pseudo is True
    refused = client.post(
        url, {"mask": box_mask(img, 0, 0, 4, 4), "source": "nonesuch"}, format="json"
    )
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert (
        "unknown source 'nonesuch'" in message
        and "manual" in message
        and "opencv-grabcut" in message
    )
    with pytest.raises(ApplicationError, match="unknown source 'nonesuch'"):
        instance_create(image=img, mask=box_mask(img, 0, 0, 4, 4), source="nonesuch")
    with pytest.raises(ApplicationError, match="at most 64 characters"):
        instance_create(image=img, mask=box_mask(img, 0, 0, 4, 4), source="x" * 65)
    assert not Instance.objects.filter(source="nonesuch").exists()


def test_label_of_another_project_is_refused(wc, make_user):
    from annotation.projects.services import label_create, project_create

    w, client = wc
    foreign = label_create(
        project=project_create(name="other", owner=make_user("x")), name="z", color="#000000"
    )
    response = client.post(
        f"/api/images/{w.assigned_image.id}/instances/",
        {"mask": box_mask(w.assigned_image, 0, 0, 2, 2), "label_id": foreign.id},
        format="json",
    )
    assert (
        response.status_code == 400
        and "not a label of this project" in response.json()["error"]["message"]
    )


def test_stale_update_gets_409_and_changes_nothing(wc):
    w, client = wc
    url = f"/api/instances/{w.instance.id}/"
    first = client.patch(
        url, {"version": 1, "mask": box_mask(w.assigned_image, 0, 0, 5, 5)}, format="json"
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = client.patch(
        url, {"version": 1, "mask": box_mask(w.assigned_image, 0, 0, 30, 30)}, format="json"
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["detail"]["current_version"] == 2
    saved = Instance.objects.get(pk=w.instance.id)
    assert saved.version == 2 and saved.area == 25
    assert client.delete(f"{url}?version=1").status_code == 409
    assert Instance.objects.filter(pk=w.instance.id).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_of_one_version_let_exactly_one_win():
    w = make_world()
    from annotation.common.exceptions import Conflict
    from annotation.labeling.services import instance_update

    results: list[str] = []
    barrier = threading.Barrier(4)

    def edit(size: int) -> None:
        try:
            barrier.wait()
            instance_update(
                instance_id=w.instance.id,
                expected_version=1,
                changes={"mask": box_mask(w.assigned_image, 0, 0, size, size)},
            )
            results.append("ok")
        except Conflict:
            results.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(s,)) for s in (3, 4, 5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "conflict", "conflict", "ok"]
    assert Instance.objects.get(pk=w.instance.id).version == 2


def test_prompt_log_sequence_undo_redo(wc):
    w, client = wc
    url = f"/api/instances/{w.instance.id}/prompts/"
    for x, positive in ((3, True), (8, False), (5, True)):
        assert (
            client.post(
                url,
                {
                    "kind": "click",
                    "payload": {"x": x, "y": 4, "positive": positive},
                    "method": "m2n2",
                },
                format="json",
            ).status_code
            == 201
        )
    client.post(
        url,
        {"kind": "scribble", "payload": {"points": [[1, 1], [2, 2], [3, 3]], "width": 4}},
        format="json",
    )
    client.post(
        url,
        {"kind": "extreme_points", "payload": {"points": [[0, 5], [20, 5], [10, 0], [10, 20]]}},
        format="json",
    )
    log = client.get(url).json()
    assert [p["seq"] for p in log] == [1, 2, 3, 4, 5]
    assert [p["kind"] for p in log] == ["click", "click", "click", "scribble", "extreme_points"]
    assert log[1]["payload"] == {"x": 8.0, "y": 4.0, "positive": False}

    assert client.post(f"{url}undo/").json()["seq"] == 5
    assert client.post(f"{url}undo/").json()["seq"] == 4
    assert client.post(f"{url}redo/").json()["seq"] == 4
    # a new prompt after an undo drops the redo branch, as every editor does
    client.post(url, {"kind": "click", "payload": {"x": 1, "y": 1}}, format="json")
    log = client.get(url).json()
    assert [(p["seq"], p["undone"]) for p in log] == [
        (1, False),
        (2, False),
        (3, False),
        (4, False),
        (5, False),
    ]
    assert log[-1]["kind"] == "click"


@pytest.mark.parametrize(
    "kind, payload, needle",
    [
        ("click", {"x": 64, "y": 1}, "outside the 64×48 image"),
        ("click", {"x": -1, "y": 1}, "outside"),
        ("click", {"x": "a", "y": 1}, "with numbers"),
        ("click", {"x": 1, "y": 1, "positive": "yes"}, "'positive' must be true or false"),
        ("scribble", {"points": []}, "non-empty list"),
        ("scribble", {"points": [[1, 1]], "width": 0}, "'width' must be"),
        ("extreme_points", {"points": [[1, 1]] * 3}, "exactly four points"),
        ("hover", {}, "is not a valid choice"),
    ],
)
def test_malformed_prompts_are_refused_and_not_logged(wc, kind, payload, needle):
    w, client = wc
    response = client.post(
        f"/api/instances/{w.instance.id}/prompts/",
        {"kind": kind, "payload": payload},
        format="json",
    )
    assert response.status_code == 400
    assert needle in str(response.json()), response.json()
    assert not Prompt.objects.filter(instance=w.instance).exists()


def test_rle_roundtrip_matches_pycocotools():
    mask = np.zeros((30, 40), dtype=bool)
    mask[3:9, 5:20] = True
    mask[20:, 30:] = True
    stored = rle.encode(mask)
    assert (rle.decode(stored) == mask).all()
    area, bbox = rle.area_and_bbox(stored)
    assert area == mask.sum() and bbox == [5.0, 3.0, 35.0, 27.0]


def test_fast_list_rows_have_exactly_the_detail_shape(wc):
    w, client = wc
    listed = client.get(f"/api/images/{w.assigned_image.id}/instances/").json()
    assert listed["count"] == 1
    detail = client.get(f"/api/instances/{w.instance.id}/").json()
    assert listed["results"][0] == detail
