"""Loaders on the shared benchmark data (../shared/data); skipped cleanly where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from inference.evaluation.datasets import CocoDataset, FolderDataset

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("MASKWRIGHT_SHARED_DATA", REPO.parent / "shared" / "data"))
GRABCUT = DATA / "grabcut"
COCO_JSON = DATA / "coco_sample128" / "annotations" / "instances_train2017.json"


@pytest.mark.skipif(not GRABCUT.is_dir(), reason=f"no GrabCut data at {GRABCUT}")
def test_grabcut_folder_reads_as_ritm_does():
    ds = FolderDataset(GRABCUT)
    assert len(ds) == 50 and ds.name == "grabcut"
    with_band = 0
    for sample in ds:
        assert sample.image.dtype == np.uint8 and sample.image.shape[:2] == sample.gt.shape
        assert sample.gt.any()
        if sample.ignore is not None:
            with_band += 1
            assert not (sample.ignore & sample.gt).any()
    assert with_band == 42  # MANIFEST: 42 of the 50 masks contain 128


@pytest.mark.skipif(not COCO_JSON.is_file(), reason=f"no COCO sample at {COCO_JSON}")
def test_coco_sample_counts_and_instance_maps():
    single = CocoDataset(COCO_JSON, protocol="single")
    assert len(single) == 887 and single.name == "coco_sample128"  # 900 minus 13 crowd
    multi = CocoDataset(COCO_JSON, protocol="multi", limit=3)
    for sample in multi:
        assert sample.gt.dtype == np.int32 and sample.gt.shape == sample.image.shape[:2]
        ids = sample.object_ids
        assert ids == list(range(1, len(ids) + 1))
