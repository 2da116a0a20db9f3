"""Other tools read our zips: Datumaro every COCO and VOC reading (one item per image, one
mask or box per object) and Ultralytics the YOLO one (one polygon per object, same classes).

Both are slow: each installs its tool first, into a folder of the test's own, from the package
registry (skipped with the reason when that fails, e.g. offline):

* Datumaro into a clean virtualenv (it pins other pillow/numpy/opencv than ours), unless
  ``MASKWRIGHT_DATUMARO_PYTHON`` names a Python that has it.
* Ultralytics with ``--no-deps`` into a folder put on ``PYTHONPATH`` of this interpreter: its
  dependencies are torch, torchvision, OpenCV, matplotlib, which this environment has and a
  clean virtualenv would download again (gigabytes). ``MASKWRIGHT_ULTRALYTICS_PATH`` names such
  a folder that already holds it.

Datumaro (1.13, the newest on PyPI as of this test) has no YOLO segmentation reader: its
``yolo*`` importers accept box lines only (5 fields), so YOLO is read by Ultralytics alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from annotation.jobs.models import Job
from annotation.labeling.models import Instance
from tests.annotation.exports.helpers import open_zip, run, world

pytestmark = pytest.mark.slow

DATUMARO = "datumaro~=1.13.0"
ULTRALYTICS = "ultralytics~=8.4.0"
INSTALL_TIMEOUT_S = 900


def _pip(args: list[str], what: str) -> None:
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"{what} did not install in {INSTALL_TIMEOUT_S} s")
    if proc.returncode != 0:
        pytest.skip(f"{what} does not install here: {(proc.stderr or proc.stdout)[-800:]}")


@pytest.fixture(scope="session")
def datumaro_python(tmp_path_factory) -> str:
    given = os.environ.get("MASKWRIGHT_DATUMARO_PYTHON")
    if given:
        return given
    venv = tmp_path_factory.mktemp("datumaro") / "venv"
    _pip([sys.executable, "-m", "venv", str(venv)], "a virtualenv")
    python = str(venv / "bin" / "python")
    _pip([python, "-m", "pip", "install", "--quiet", DATUMARO], DATUMARO)
    return python


@pytest.fixture(scope="session")
def ultralytics_path(tmp_path_factory) -> str:
    given = os.environ.get("MASKWRIGHT_ULTRALYTICS_PATH")
    if given:
        return given
    missing = [m for m in ("torch", "torchvision", "cv2") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"Ultralytics' reader needs {missing}, which this environment lacks")
    target = tmp_path_factory.mktemp("ultralytics")
    _pip(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        + [ULTRALYTICS],
        ULTRALYTICS,
    )
    return str(target)


def _exports(w, tmp_path: Path, *runs: tuple[str, dict]) -> dict[str, Path]:
    out = {}
    for name, params in runs:
        open_zip(run(w, **params)).extractall(tmp_path / name)
        out[name] = tmp_path / name
        Job.objects.all().delete()
    return out


def _run_json(args: list[str], env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_DATUMARO_READ = """
import json, sys
from collections import Counter
from datumaro.components.dataset import Dataset
out = {}
for fmt, path in json.loads(sys.argv[1]):
    ds = Dataset.import_from(path, fmt)
    kinds = Counter(ann.type.name for item in ds for ann in item.annotations)
    groups = {(item.id, ann.group) for item in ds for ann in item.annotations}
    out[fmt + ":" + path.rsplit("/", 1)[-1]] = {
        "items": len(ds),
        "subsets": sorted(ds.subsets()),
        "with_image": sum(1 for item in ds if item.media is not None),
        "kinds": dict(kinds),
        "groups": len(groups),
    }
print(json.dumps(out))
"""


@pytest.mark.django_db
def test_datumaro_reads_every_coco_and_voc_reading_once_per_image(datumaro_python, tmp_path):
    w, _, _ = world()
    n_objects = Instance.objects.filter(image__dataset=w.dataset).count()
    dirs = _exports(
        w,
        tmp_path,
        ("coco_rle", {"format": "coco", "masks": "rle", "filter": "all"}),
        ("coco_poly", {"format": "coco", "masks": "polygon", "filter": "all"}),
        ("voc", {"format": "voc", "filter": "all"}),
    )
    reads = [
        ["coco_instances", str(dirs["coco_rle"])],
        ["coco_instances", str(dirs["coco_poly"])],
        ["voc", str(dirs["voc"])],
        ["voc_detection", str(dirs["voc"])],
        ["voc_segmentation", str(dirs["voc"])],
        ["voc_instance_segmentation", str(dirs["voc"])],
    ]
    got = _run_json([datumaro_python, "-c", _DATUMARO_READ, json.dumps(reads)])
    print(json.dumps(got, indent=1))  # shown with -s: what Datumaro made of each
    for key, read in got.items():
        assert read["items"] == 2 and read["with_image"] == 2, (key, read)
    # COCO: one mask (RLE) or polygon, plus its box, per object
    assert got["coco_instances:coco_rle"]["kinds"] == {"mask": n_objects, "bbox": n_objects}
    assert got["coco_instances:coco_rle"]["groups"] == n_objects
    assert got["coco_instances:coco_poly"]["kinds"] == {"polygon": n_objects, "bbox": n_objects}
    assert got["coco_instances:coco_poly"]["groups"] == n_objects
    # VOC: one image set (issue 19: a train and a default list read as 4 items for 2 images);
    # one box per object from Annotations/*.xml where the reading has boxes, and one mask per
    # object from SegmentationObject (each of the five objects shows at least one pixel)
    assert all(got[f"{fmt}:voc"]["subsets"] == ["train"] for fmt, _ in reads[2:])
    assert got["voc:voc"]["kinds"] == {"bbox": n_objects, "mask": n_objects}
    assert got["voc_detection:voc"]["kinds"] == {"bbox": n_objects}
    assert got["voc_segmentation:voc"]["kinds"] == {"mask": n_objects}
    assert got["voc_instance_segmentation:voc"]["kinds"] == {"bbox": n_objects, "mask": n_objects}


_ULTRALYTICS_READ = """
import json, sys
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset
data = check_det_dataset(sys.argv[1])
ds = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False, imgsz=64)
print(json.dumps({
    "names": {str(k): v for k, v in data["names"].items()},
    "images": len(ds.labels),
    "per_image": {
        lb["im_file"].rsplit("/", 1)[-1]: {
            "cls": [int(c) for c in lb["cls"].ravel()],
            "points": [len(s) for s in lb["segments"]],
            "shape": list(lb["shape"]),
        }
        for lb in ds.labels
    },
}))
"""


@pytest.mark.django_db
def test_ultralytics_reads_the_yolo_export(ultralytics_path, tmp_path):
    w, cat, _ = world()
    dirs = _exports(w, tmp_path, ("yolo", {"format": "yolo", "filter": "all"}))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ultralytics_path, os.environ.get("PYTHONPATH", "")]),
        "YOLO_CONFIG_DIR": str(tmp_path / "yolo-config"),
        "YOLO_OFFLINE": "1",
    }
    got = _run_json([sys.executable, "-c", _ULTRALYTICS_READ, str(dirs["yolo"] / "data.yaml")], env)
    assert got["names"] == {"0": "bird", "1": "cat"}
    assert got["images"] == 2
    for image in (w.assigned_image, w.other_image):
        insts = list(Instance.objects.filter(image=image).order_by("z_order", "id"))
        (read,) = [v for k, v in got["per_image"].items() if k.startswith(f"{image.id}_")]
        assert read["cls"] == [1 if i.label_id == cat.id else 0 for i in insts]
        assert len(read["points"]) == len(insts) and min(read["points"]) >= 3
        assert read["shape"] == [image.height, image.width]
