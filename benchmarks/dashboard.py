"""Dashboard reads: server time of the pages an admin opens, with a full database.

Figures: p50/p95 over HTTP (loopback, token auth) against a real server, with 10,000 images and
100,000 instances (10 per image) in four datasets, 40 tasks for 5 annotators, 20 jobs, and a
fifth of the instances pending pseudo labels. Reads: project detail, dataset list, one dataset's
image page (first and a deep page), task list with progress, jobs list, review counts and the
first page of the pending review queue.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from .api import _masks
from .harness import BenchEnv, timed_gets

PER_IMAGE = 10
DATASETS = 4
ANNOTATORS = 5
TASKS_PER_ANNOTATOR = 8


def _fill(project, owner, label, annotators, n_images: int) -> list:
    """Bulk rows: datasets, images, instances (every fifth a pending pseudo label), tasks, jobs."""
    from annotation.common import rle
    from annotation.datasets.models import Image
    from annotation.datasets.services import dataset_create
    from annotation.jobs.models import Job
    from annotation.labeling.models import Instance, Task

    masks = [(m, *rle.area_and_bbox(m)) for m in _masks(20)]
    datasets = [dataset_create(project=project, name=f"set {d}") for d in range(DATASETS)]
    per_set = n_images // DATASETS
    images = []
    for d, dataset in enumerate(datasets):
        images += Image.objects.bulk_create(
            [
                Image(
                    dataset=dataset,
                    file=f"x/{i}.jpg",
                    thumbnail=f"t/{i}.jpg",
                    original_name=f"{i}.jpg",
                    width=1024,
                    height=768,
                    sha256=f"{i:064d}",
                    format="JPEG",
                    size_bytes=1,
                )
                for i in range(d * per_set, (d + 1) * per_set)
            ],
            batch_size=2000,
        )
    rng = np.random.default_rng(0)
    batch = []
    for n, img in enumerate(images):
        for k in range(PER_IMAGE):
            m, area, bbox = masks[(n + k) % len(masks)]
            pseudo = k % 5 == 4
            batch.append(
                Instance(
                    image=img,
                    label=label,
                    mask=m,
                    bbox=bbox,
                    area=area,
                    author=owner,
                    z_order=k,
                    source="mis" if pseudo else "manual",
                    pseudo=pseudo,
                    score=float(rng.uniform()) if pseudo else None,
                )
            )
        if len(batch) >= 10_000:
            Instance.objects.bulk_create(batch)
            batch = []
    Instance.objects.bulk_create(batch)
    # Tasks over the first dataset: 40 tasks of 50 images each.
    first = [img for img in images if img.dataset_id == datasets[0].id]
    link = Task.images.through
    links = []
    size = 50
    for t in range(ANNOTATORS * TASKS_PER_ANNOTATOR):
        task = Task.objects.create(
            project=project,
            dataset=datasets[0],
            name=f"task {t}",
            assignee=annotators[t % ANNOTATORS],
        )
        links += [
            link(task_id=task.id, image_id=img.id) for img in first[t * size : (t + 1) * size]
        ]
    link.objects.bulk_create(links)
    Job.objects.bulk_create(
        [
            Job(
                project=project,
                dataset=datasets[j % DATASETS],
                kind="mis",
                state="succeeded",
                done=per_set,
                total=per_set,
                launched_by=owner,
            )
            for j in range(20)
        ]
    )
    return datasets


def _measure(url: str, token: str, path: str, n: int) -> list[float]:
    return timed_gets(f"{url}{path}", token, n, warmup=3)[0]


def bench_dashboard(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotation.projects.models import Membership, Role
    from annotation.projects.services import label_create, project_create
    from annotation.users.models import User

    n_images = 1_000 if quick else 10_000
    n = 10 if quick else 40
    owner = User.objects.create_user(username="bench", password="bench-pw-1")
    token = Token.objects.create(user=owner).key
    project = project_create(name="bench", owner=owner)
    label = label_create(project=project, name="thing", color="#123456")
    annotators = [
        User.objects.create_user(username=f"ann{a}", password="bench-pw-1")
        for a in range(ANNOTATORS)
    ]
    Membership.objects.bulk_create(
        [Membership(project=project, user=u, role=Role.ANNOTATOR) for u in annotators]
    )
    started = time.perf_counter()
    datasets = _fill(project, owner, label, annotators, n_images)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"database holds {n_images:,} images and {n_images * PER_IMAGE:,} instances "
        f"(filled in {time.perf_counter() - started:.1f} s)"
    )
    p, d = project.id, datasets[1].id
    reads = {
        "project_ms": f"/api/projects/{p}/",
        "datasets_ms": f"/api/projects/{p}/datasets/",
        "images_page_ms": f"/api/datasets/{d}/images/",
        "images_deep_page_ms": f"/api/datasets/{d}/images/?offset={n_images // DATASETS - 60}",
        "tasks_ms": f"/api/projects/{p}/tasks/",
        "jobs_ms": f"/api/projects/{p}/jobs/",
        "review_counts_ms": f"/api/projects/{p}/review/counts/",
        "review_queue_ms": f"/api/projects/{p}/review/?state=pending",
    }
    figures: dict[str, Any] = {}
    p95s = []
    with env.server() as (url, _proc):
        for key, path in reads.items():
            ms = _measure(url, token, path, n)
            p50, p95 = statistics.median(ms), float(np.percentile(ms, 95))
            p95s.append(p95)
            print(f"  GET {path}: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {n} requests")
            figures[key] = round(p50, 1)
    figures["max_p95_ms"] = round(max(p95s), 1)
    return figures
