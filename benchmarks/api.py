"""API latency: list the instances of one image while the database holds many.

Figures: p50/p95 of ``GET /api/images/{id}/instances/`` over HTTP against a real server, with
10,000 instances in the database (100 on the listed image) and, to show how cost grows with
the table, 100,000. The peer, in the same run: the bare SQL query for the same rows through
psycopg (no Django, no serialisation, no HTTP).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from .harness import BenchEnv, timed_gets

PER_IMAGE = 100


def _masks(count: int, h: int = 768, w: int = 1024) -> list[dict[str, Any]]:
    from annotation.common import rle

    rng = np.random.default_rng(0)
    yy, xx = np.ogrid[:h, :w]
    out = []
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(10, 200), rng.uniform(10, 200)
        out.append(rle.encode(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1))
    return out


def _fill(dataset, user, label, total: int, start_image: int) -> int:
    """Add image rows and instances until the database holds ``total`` instances."""
    from annotation.common import rle
    from annotation.datasets.models import Image
    from annotation.labeling.models import Instance

    masks = [(m, *rle.area_and_bbox(m)) for m in _masks(50)]  # derived once per distinct mask
    have = Instance.objects.count()
    n_images = (total - have) // PER_IMAGE
    images = Image.objects.bulk_create(
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
            for i in range(start_image, start_image + n_images)
        ]
    )
    batch = []
    for img in images:
        for k in range(PER_IMAGE):
            m, area, bbox = masks[k % len(masks)]
            batch.append(
                Instance(
                    image=img, label=label, mask=m, bbox=bbox, area=area, author=user, z_order=k
                )
            )
        if len(batch) >= 5000:
            Instance.objects.bulk_create(batch)
            batch = []
    Instance.objects.bulk_create(batch)
    return start_image + n_images


def _measure(url: str, token: str, image_id: int, n: int) -> list[float]:
    times, body = timed_gets(f"{url}/api/images/{image_id}/instances/", token, n, warmup=5)
    assert b'"count":100' in body.replace(b" ", b""), body[:200]
    return times


def _sql_peer(dsn: str, image_id: int, n: int) -> list[float]:
    import psycopg

    times = []
    with psycopg.connect(dsn) as conn:
        for i in range(n + 5):
            started = time.perf_counter()
            conn.execute(
                "SELECT * FROM labeling_instance WHERE image_id = %s "
                "ORDER BY z_order, id LIMIT 100",
                (image_id,),
            ).fetchall()
            if i >= 5:
                times.append((time.perf_counter() - started) * 1000)
    return times


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_api(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from rest_framework.authtoken.models import Token

    from annotation.datasets.services import dataset_create
    from annotation.projects.services import label_create, project_create
    from annotation.users.models import User

    totals = [1_000, 10_000] if quick else [10_000, 100_000]
    n = 50 if quick else 200
    user = User.objects.create_user(username="bench", password="bench-pw-1")
    token = Token.objects.create(user=user).key
    project = project_create(name="bench", owner=user)
    label = label_create(project=project, name="thing", color="#123456")
    dataset = dataset_create(project=project, name="api")
    figures: dict[str, Any] = {}
    next_image = 0
    for total in totals:
        started = time.perf_counter()
        next_image = _fill(dataset, user, label, total, next_image)
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("ANALYZE labeling_instance")
        from annotation.datasets.models import Image

        ids = list(
            Image.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)
        )
        image_id = ids[len(ids) // 2]
        print(
            f"database holds {total:,} instances (filled in {time.perf_counter() - started:.1f} s)"
        )
        with env.server() as (url, _proc):
            http_ms = _measure(url, token, image_id, n)
        sql_ms = _sql_peer(env.env["DATABASE_URL"], image_id, n)
        print(
            f"  GET /api/images/{{id}}/instances/ (100 masks): p50 "
            f"{statistics.median(http_ms):.2f} ms, p95 {_pct(http_ms, 95):.2f} ms over {n} requests"
        )
        print(
            f"  peer, bare SQL of the same rows (psycopg): p50 {statistics.median(sql_ms):.2f} ms"
        )
        figures[f"list_p50_ms_{total}"] = round(statistics.median(http_ms), 2)
        figures[f"list_p95_ms_{total}"] = round(_pct(http_ms, 95), 2)
        figures[f"sql_p50_ms_{total}"] = round(statistics.median(sql_ms), 3)
    key = 10_000 if 10_000 in totals else totals[-1]
    figures["list_p50_ms"] = figures[f"list_p50_ms_{key}"]
    return figures
