"""What a training or EXITS job reads from a dataset: chosen masks, extreme points, boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annotation.common import rle
from annotation.labeling.models import Instance, ReviewState, Source
from annotation.labeling.services import instance_create, prompt_append
from annotation.segmentation.batch.training_data import (
    name_extremes,
    write_mask_coco,
    write_object_coco,
)
from tests.factories import box_mask, make_world


@pytest.mark.django_db
def test_mask_coco_holds_the_chosen_sources_only(tmp_path):
    w = make_world()
    mis = instance_create(
        image=w.assigned_image,
        mask=box_mask(w.assigned_image, 20, 20, 30, 30),
        source="mis",
        score=0.5,
        pseudo=True,
    )
    rejected = instance_create(
        image=w.other_image, mask=box_mask(w.other_image, 1, 1, 4, 4), source="mis", pseudo=True
    )
    # a mask of the method that is no pseudo label (a person's, on the canvas) is not among them
    instance_create(image=w.other_image, mask=box_mask(w.other_image, 5, 5, 9, 9), source="mis")
    Instance.objects.filter(pk=rejected.pk).update(review_state=ReviewState.REJECTED)

    counts = write_mask_coco(w.dataset.id, "accepted", tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    assert counts == {"images": 2, "instances": 3, "image_ids": [im["id"] for im in doc["images"]]}
    assert {w.instance.id, w.other_instance.id} <= {a["id"] for a in doc["annotations"]}
    assert doc["images"][0]["file_name"] == w.assigned_image.file  # relative to MEDIA_ROOT
    mask = rle.decode(doc["annotations"][0]["segmentation"])
    assert mask.sum() == doc["annotations"][0]["area"] == 8 * 9

    write_mask_coco(w.dataset.id, "mis", tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert [a["id"] for a in doc["annotations"]] == [mis.id] and len(doc["images"]) == 1


def test_extreme_points_are_named_whatever_the_click_order():
    named = name_extremes([[5, 9], [1, 4], [9, 5], [4, 1]])
    assert named == {"left": [1, 4], "right": [9, 5], "top": [4, 1], "bottom": [5, 9]}


@pytest.mark.django_db
def test_exits_coco_takes_extreme_points_and_imported_boxes_never_pseudo_labels(tmp_path):
    w = make_world()
    outlined = instance_create(
        image=w.assigned_image,
        mask=rle.encode(np.zeros((48, 64), bool)),
        label_id=w.label.id,
        source=Source.MANUAL,
    )
    prompt_append(
        instance=outlined,
        kind="extreme_points",
        payload={"points": [[30, 40], [12, 20], [50, 22], [31, 5]]},
    )
    imported = instance_create(
        image=w.other_image, mask=box_mask(w.other_image, 10, 10, 40, 30), source=Source.IMPORT
    )
    instance_create(
        image=w.other_image, mask=box_mask(w.other_image, 0, 0, 20, 20), source="exits", pseudo=True
    )

    write_object_coco(w.dataset.id, "extreme_points", tmp_path / "p.json")
    doc = json.loads((tmp_path / "p.json").read_text())
    (ann,) = doc["annotations"]
    assert ann["id"] == outlined.id and ann["category_id"] == w.label.id
    assert ann["extreme_points"] == {
        "left": [12, 20],
        "right": [50, 22],
        "top": [31, 5],
        "bottom": [30, 40],
    }
    assert ann["bbox"] == [12, 5, 38, 35]

    counts = write_object_coco(w.dataset.id, "both", tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    assert counts == {"images": 2, "objects": 2}
    by_id = {a["id"]: a for a in doc["annotations"]}
    assert set(by_id) == {outlined.id, imported.id}
    assert (
        by_id[imported.id]["bbox"] == [10.0, 10.0, 30.0, 20.0]
        and "extreme_points" not in by_id[imported.id]
    )
