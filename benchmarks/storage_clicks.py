"""``maskwright bench storage``, part 2: the first click after opening an image whose bytes an
interactive worker must fetch from S3 (cold) or from its read-through cache (warm), each beside
the same click on an image on local disk, on the same stack, interleaved image by image.

Workers are real Celery processes (solo pool, M2N2 on effnet-lite0, CPU), as ``bench ws``
starts them: one on the local store, one on the bucket with its own empty ``MASKWRIGHT_HOME``.
Each image is in a task of its own (no next image to prefetch) and pinned to the worker under
test (:func:`dispatch.claim`); the mask must come from that worker. Time = click sent (right
after ``opened``, as in ``bench ws``) → its mask received, in the client. Warm: the S3 worker is
restarted on the same home, so its cache holds the bytes while no process holds the image's
model state; the cache files are checked to be the very ones the cold run fetched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .harness import BenchEnv

METHOD, BACKBONE = "m2n2", "effnet-lite0"


@dataclass
class Target:
    task_id: int
    image_id: int
    x: float
    y: float


async def _first_click(url: str, cookie: str, target: Target, host: str) -> float:
    """Seconds from the first click (sent as soon as the image is open) to its mask."""
    from .ws import _connect

    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    try:
        opened = await client.request(
            {"type": "open", "image_id": target.image_id, "task_id": target.task_id}
        )
        assert opened["type"] == "opened", opened
        obj = (await client.request({"type": "new_object"}))["object"]["id"]
        sent = time.perf_counter()
        seq = await client.send(
            {"type": "click", "object_id": obj, "x": target.x, "y": target.y, "positive": True}
        )
        got, mask = await client.mask_at_least(obj, seq, timeout=120)
        if mask["worker"] != host:
            raise RuntimeError(f"the click was answered by {mask['worker']}, not {host}")
        return got - sent
    finally:
        await client.ws.close()
        listener.cancel()


def _click(url: str, cookie: str, target: Target, host: str) -> float:
    from annotation.segmentation.interactive import dispatch

    dispatch.claim(target.image_id, METHOD, BACKBONE, host)
    return asyncio.run(_first_click(url, cookie, target, host))


def _targets(project, dataset, annotator, count: int) -> list[Target]:
    """The first ``count`` images of ``dataset``, each in a task of its own."""
    from annotation.datasets.models import Image
    from annotation.labeling.services import task_create

    rows = list(Image.objects.filter(dataset=dataset).order_by("id")[:count])
    if len(rows) < count:
        raise RuntimeError(f"{dataset.name}: {len(rows)} images, {count} needed")
    out = []
    for row in rows:
        task = task_create(
            project=project,
            dataset=dataset,
            name=f"first click {row.id}",
            assignee_id=annotator.id,
            image_ids=[row.id],
        )
        out.append(Target(task.id, row.id, row.width / 2, row.height / 2))
    return out


def _cached_inodes(home: Path) -> dict[str, int]:
    """The image files in the media cache under ``home`` (its MEDIA_ROOT/cache): name → inode
    (a refetch replaces the file, so the inode tells a cache hit from a new download)."""
    root = home / "media" / "cache"
    return {
        p.relative_to(root).as_posix(): p.stat().st_ino
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".jpg", ".png"}
    }


def measure(
    env: BenchEnv, s3_env: BenchEnv, owner, project, local_ds, s3_ds, n: int
) -> dict[str, list[float]]:
    """First-click seconds per image: ``local_cold_phase`` / ``cold`` (interleaved, worker on
    S3 fresh) and ``local_warm_phase`` / ``warm`` (interleaved, S3 worker restarted)."""
    from django.test import Client

    from annotation.cli.services import stop_processes
    from annotation.projects.models import Membership, Role
    from annotation.users.models import User

    from .ws import _start_worker, _wait_alive

    annotator = User.objects.create_user(username="bench-clicker", password="bench-pass-1")
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    client = Client()
    assert client.login(username=annotator.username, password="bench-pass-1")
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    local = _targets(project, local_ds, annotator, 2 * n + 1)
    remote = _targets(project, s3_ds, annotator, n + 1)
    home = Path(s3_env.env["MASKWRIGHT_HOME"])

    out: dict[str, list[float]] = {k: [] for k in ("local_cold_phase", "cold")}
    out |= {k: [] for k in ("local_warm_phase", "warm")}
    worker_a = _start_worker(env, "bench-local")
    worker_b = _start_worker(s3_env, "bench-s3")
    procs = [worker_a, worker_b]
    try:
        host_a = _wait_alive("bench-local", worker_a)
        host_b = _wait_alive("bench-s3", worker_b)
        # A click the worker has not answered in INTERACTIVE_RETRY_S (3 s) is sent again to
        # any worker, its holder forgotten: the failover for a dead worker. Here the worker
        # is alive and pinned, and a first click near 3 s on a busy 2-core machine would start
        # a second computation beside it (on a worker of the other store): not measured here.
        web = replace(env, env={**env.env, "MASKWRIGHT_INTERACTIVE_RETRY_S": "60"})
        with web.server() as (url, _web):
            # one untimed image per worker: first-use costs that are not the store's
            _click(url, cookie, local[0], host_a)
            _click(url, cookie, remote[0], host_b)
            for i in range(1, n + 1):
                out["local_cold_phase"].append(_click(url, cookie, local[i], host_a))
                out["cold"].append(_click(url, cookie, remote[i], host_b))
            fetched = _cached_inodes(home)
            stop_processes([worker_b], timeout=15)
            worker_c = _start_worker(s3_env, "bench-s3-warm")
            procs.append(worker_c)
            host_c = _wait_alive("bench-s3-warm", worker_c)
            _click(url, cookie, remote[0], host_c)
            for i in range(1, n + 1):
                out["local_warm_phase"].append(_click(url, cookie, local[n + i], host_a))
                out["warm"].append(_click(url, cookie, remote[i], host_c))
            kept = _cached_inodes(home)
    finally:
        stop_processes(procs, timeout=15)
        keep = os.environ.get("MASKWRIGHT_BENCH_LOGS")
        if keep:  # the scratch folder goes away with the bench; keep its logs for a look
            for log in env.scratch.glob("*.log"):
                shutil.copy(log, Path(keep))
    hits = sum(1 for name, inode in fetched.items() if kept.get(name) == inode)
    local_media = sorted(p.name for p in (home / "media").glob("*")) if home.exists() else []
    print(
        f"S3 worker (own empty MASKWRIGHT_HOME): {len(fetched)} images fetched into its cache "
        f"by the cold clicks, {hits} of them used again unchanged by the restarted worker; "
        f"its media folder holds {local_media or 'nothing'}",
        flush=True,
    )
    if len(fetched) != n + 1 or hits != n + 1:
        raise RuntimeError(f"the S3 worker's cache is not what the bench measures: {fetched}")
    return out
