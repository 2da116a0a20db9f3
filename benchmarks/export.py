"""Export speed and memory: COCO-RLE, COCO-polygon, VOC and YOLO segmentation over 1,000 and
2,000 images.

Each image row (320×240) carries 10 instances (ellipses drawn from a pool of 50 distinct masks);
every row points at one real JPEG written once, which is what the exporter reads and zips. Each
export runs through the jobs engine (``job_execute``) in a fresh child process, so its peak RSS
(VmHWM) is the export's alone; the child also reports its RSS just before the export started,
to separate the imports from the export itself, and its CPU seconds beside the wall-clock ones
(``<key>_cpu_s_<size>``: on a busy shared machine the gap is time spent waiting for a core).
Memory flat in dataset size shows as the same peak at 1,000 and 2,000 images.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np

from .harness import BenchEnv

PER_IMAGE = 10
H, W = 240, 320
RUNS = (
    ("coco_rle", {"format": "coco", "masks": "rle", "filter": "all"}),
    ("coco_poly", {"format": "coco", "masks": "polygon", "tolerance": 1.0, "filter": "all"}),
    ("voc", {"format": "voc", "filter": "all"}),
    ("yolo", {"format": "yolo", "tolerance": 1.0, "filter": "all"}),
)


def _fill(dataset, label_ids: list[int], n_images: int, start: int, media_rel: str) -> None:
    from annotation.common import rle
    from annotation.datasets.models import Image
    from annotation.labeling.models import Instance

    rng = np.random.default_rng(0)
    yy, xx = np.ogrid[:H, :W]
    pool = []
    for _ in range(50):
        cx, cy = rng.uniform(20, W - 20), rng.uniform(20, H - 20)
        rx, ry = rng.uniform(8, 60), rng.uniform(8, 50)
        m = rle.encode(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1)
        pool.append((m, *rle.area_and_bbox(m)))
    images = Image.objects.bulk_create(
        [
            Image(
                dataset=dataset,
                file=media_rel,
                thumbnail=media_rel,
                original_name=f"img {i}.jpg",
                width=W,
                height=H,
                sha256=f"{i:064d}",
                format="JPEG",
                size_bytes=1,
            )
            for i in range(start, start + n_images)
        ]
    )
    batch = []
    for n, img in enumerate(images):
        for k in range(PER_IMAGE):
            m, area, bbox = pool[(n * 7 + k) % len(pool)]
            batch.append(
                Instance(
                    image=img,
                    label_id=label_ids[k % len(label_ids)],
                    mask=m,
                    bbox=bbox,
                    area=area,
                    z_order=k,
                    review_state="accepted",
                )
            )
        if len(batch) >= 5000:
            Instance.objects.bulk_create(batch)
            batch = []
    Instance.objects.bulk_create(batch)


def _child(job_id: int) -> None:
    """Run one export job in this process; print its seconds and memory as JSON."""
    import django

    django.setup()
    from pathlib import Path

    from annotation.jobs.engine import job_execute
    from annotation.jobs.models import Job

    def status(key: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    # imported before the measurement: imports are not the export's memory
    import cv2  # noqa: F401

    import annotation.exports.coco
    import annotation.exports.voc
    import annotation.exports.yolo  # noqa: F401

    before = status("VmRSS:")
    started, cpu_started = time.perf_counter(), time.process_time()
    state = job_execute(job_id)
    seconds = time.perf_counter() - started
    # CPU seconds of this process (the export's own work: the database's is not in it): on a
    # shared, busy machine the wall-clock figure also holds the time spent waiting for a core
    cpu_seconds = time.process_time() - cpu_started
    job = Job.objects.get(pk=job_id)
    print(
        json.dumps(
            {
                "state": state,
                "error": job.error,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "rss_before_mb": before,
                "peak_mb": status("VmHWM:"),
                "result": job.result,
            }
        )
    )


def _run_child(env: BenchEnv, job_id: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.export", str(job_id)],
        env=env.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["state"] != "succeeded":
        raise RuntimeError(f"export job {job_id} {out['state']}: {out['error']}")
    return out


def bench_export(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from PIL import Image as PILImage

    from annotation.datasets import storage
    from annotation.datasets.services import dataset_create
    from annotation.jobs.models import Job
    from annotation.projects.services import label_create, project_create
    from annotation.users.models import User

    sizes = [100, 200] if quick else [1_000, 2_000]
    user = User.objects.create_user(username="bench", password="bench-pw-1")
    project = project_create(name="bench", owner=user)
    labels = [label_create(project=project, name=n, color="#123456").id for n in ("a", "b", "c")]
    rel = "bench/shared.jpg"
    path = storage.media_path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
        buf, "JPEG"
    )
    path.write_bytes(buf.getvalue())
    figures: dict[str, Any] = {}
    for size in sizes:
        dataset = dataset_create(project=project, name=f"d{size}")
        started = time.perf_counter()
        _fill(dataset, labels, size, 0, rel)
        print(
            f"{size:,} images, {size * PER_IMAGE:,} instances (filled in "
            f"{time.perf_counter() - started:.1f} s)"
        )
        for key, params in RUNS:
            job = Job.objects.create(project=project, dataset=dataset, kind="export", params=params)
            out = _run_child(env, job.id)
            mb = out["result"]["bytes"] / 2**20
            print(
                f"  {key:9s}: {out['seconds']:.2f} s (CPU {out['cpu_seconds']:.2f} s), "
                f"peak RSS {out['peak_mb']:.0f} MiB "
                f"(before export {out['rss_before_mb']:.0f} MiB), zip {mb:.1f} MiB, "
                f"{out['result']['annotations']:,} annotations"
            )
            figures[f"{key}_s_{size}"] = round(out["seconds"], 2)
            figures[f"{key}_cpu_s_{size}"] = round(out["cpu_seconds"], 2)
            figures[f"{key}_peak_mb_{size}"] = round(out["peak_mb"], 1)
    first = sizes[0]
    figures.update(
        coco_rle_s=figures[f"coco_rle_s_{first}"],
        coco_poly_s=figures[f"coco_poly_s_{first}"],
        voc_s=figures[f"voc_s_{first}"],
        yolo_s=figures[f"yolo_s_{first}"],
        peak_mb=max(figures[f"{k}_peak_mb_{first}"] for k, _ in RUNS),
    )
    return figures


if __name__ == "__main__":
    _child(int(sys.argv[1]))
