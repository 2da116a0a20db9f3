"""Workers on other hosts with no shared disk (issue 21): two interactive workers, a batch
worker and the web process, each with its own empty ``MASKWRIGHT_HOME``, on the same Postgres,
Redis and S3 server (moto, a real process). The images exist only in the bucket.

An annotator clicks over a real websocket; the worker holding the image is killed by its pid and
the other answers the next click, fetching the image itself. An MIS job (tiny random-weight
backbone) and a COCO export run on the batch worker, which has never seen the images, and the
export is downloaded through the authenticated route (the bytes come out of the bucket).

The stack uses a Redis database of its own: a session worker of other tests (on local disk, on
the default database) must not take its clicks or jobs.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.cli.services import start_celery_worker
from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_upload
from annotation.jobs.models import Job
from annotation.labeling.models import Instance, Prompt
from tests import s3
from tests.conftest import REPO, _worker_env, uvicorn_server
from tests.factories import make_world, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_DB = 11  # the stack's own (see the module docstring)
TINY_MIS = {"backbone": "tiny-effnet", "max_per_image": 5}


def _square_png() -> bytes:
    """160×120: a bright square on a dark, slightly noisy background (a clear object)."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 40, size=(120, 160, 3), dtype=np.uint8)
    rgb[30:90, 50:110] = (220, 200, 30)
    out = io.BytesIO()
    PILImage.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def _stack_env(media: s3.S3Media, redis_url: str, home: Path) -> dict[str, str]:
    """What a process of the stack gets on top of the test settings: the bucket, the stack's
    Redis database, and ``home`` (empty, its own) as its media folder."""
    home.mkdir(parents=True)
    return {
        "MASKWRIGHT_STORAGE": "s3",
        "MASKWRIGHT_S3_ENDPOINT_URL": media.server.endpoint,
        "MASKWRIGHT_S3_BUCKET": s3.BUCKET,
        "MASKWRIGHT_S3_ACCESS_KEY_ID": s3.ACCESS_KEY,
        "MASKWRIGHT_S3_SECRET_ACCESS_KEY": s3.SECRET_KEY,
        "MASKWRIGHT_S3_PREFIX": media.prefix,
        "MASKWRIGHT_TEST_MEDIA": str(home),
        "REDIS_URL": redis_url,
    }


def _start(name: str, queues: str, extra: dict[str, str], log: Path) -> subprocess.Popen:
    """A real Celery worker (solo pool) on the test database with ``extra`` in its environment;
    returns once its log says it is ready."""
    from django.db import connection

    env = {**_worker_env(connection.settings_dict["NAME"], extra["MASKWRIGHT_TEST_MEDIA"])}
    env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "MASKWRIGHT_MEDIA_CACHE"))}
    env.update(extra)
    return start_celery_worker(name, queues, env, log, cwd=REPO, timeout=90)


def _wait_alive(redis, name: str, timeout: float = 90) -> str:
    """The hostname of interactive worker ``name`` once its heartbeat is in the stack's Redis."""
    from annotation.segmentation.interactive.keys import ALIVE_PREFIX

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in redis.scan_iter(f"{ALIVE_PREFIX}{name}@*"):
            return str(key)[len(ALIVE_PREFIX) :]
        time.sleep(0.2)
    raise AssertionError(f"interactive worker {name} never reported alive")


def _cached(home: Path) -> set[str]:
    """Image names in the media cache of a process whose media folder is ``home``."""
    root = home / "cache"
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".png", ".jpg"}
    }


def _api(url: str, token: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def _clicks(url: str, cookie: str, task_id: int, image_id: int, victim) -> tuple:
    """Open, click, kill the worker that answered (``victim(hostname)``), click again: the two
    mask messages."""
    import websockets

    async with websockets.connect(
        f"{url.replace('http', 'ws', 1)}/ws/annotate/",
        additional_headers={"Cookie": cookie, "Origin": url},
    ) as ws:

        async def until(kind: str, timeout: float = 120) -> dict:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if message["type"] in (kind, "error"):
                    return message

        await ws.send(
            json.dumps({"type": "open", "seq": 1, "image_id": image_id, "task_id": task_id})
        )
        assert (await until("opened"))["type"] == "opened"
        await ws.send(json.dumps({"type": "new_object", "seq": 2}))
        obj = (await until("object"))["object"]["id"]
        click = {"type": "click", "object_id": obj, "positive": True}
        await ws.send(json.dumps({**click, "seq": 3, "x": 80, "y": 60}))
        first = await until("mask")
        assert first["type"] == "mask", first
        await asyncio.to_thread(victim, first["worker"])
        await ws.send(json.dumps({**click, "seq": 4, "x": 10, "y": 10, "positive": False}))
        second = await until("mask", timeout=90)
        return obj, first, second


def test_workers_with_no_shared_disk_click_fail_over_and_run_jobs(s3_media, settings, tmp_path):
    import redis as redis_lib
    from rest_framework.authtoken.models import Token

    from annotation.cli.services import stop_processes
    from tests.sockets import session_cookie

    w = make_world()  # its images go to the bucket (s3_media), nowhere on disk
    report = dataset_upload(
        dataset=w.dataset, uploads=[Upload("sq.png", io.BytesIO(_square_png()))]
    )
    square = Image.objects.get(pk=report.files[0].image_id)
    w.task.images.add(square)
    images = list(Image.objects.filter(dataset=w.dataset).order_by("id"))
    stored = s3_media.stored()
    assert {i.file for i in images} <= stored and {i.thumbnail for i in images} <= stored
    # nothing of them on this disk (the session's media folder holds other tests' files)
    media_root = Path(settings.MEDIA_ROOT)
    assert not any((media_root / name).exists() for i in images for name in (i.file, i.thumbnail))

    redis_url = urlsplit(settings.REDIS_URL)._replace(path=f"/{REDIS_DB}").geturl()
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    redis.flushdb()
    homes = {name: tmp_path / f"home-{name}" for name in ("web", "ia", "ib", "batch")}
    envs = {name: _stack_env(s3_media, redis_url, home) for name, home in homes.items()}
    tag = os.getpid()
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["ia"] = _start(f"ia-{tag}", "interactive", envs["ia"], tmp_path / "ia.log")
        procs["ib"] = _start(f"ib-{tag}", "interactive", envs["ib"], tmp_path / "ib.log")
        procs["batch"] = _start(f"batch-{tag}", "batch,default", envs["batch"], tmp_path / "b.log")
        hosts = {_wait_alive(redis, f"{k}-{tag}"): k for k in ("ia", "ib")}
        with uvicorn_server(tmp_path, **envs["web"]) as (url, _log):
            # clicks: the holder is killed by its pid, the other worker answers
            killed: list[str] = []

            def kill(host: str) -> None:
                proc = procs[hosts[host]]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                killed.append(host)

            cookie = session_cookie("annotator").decode()
            obj, first, second = asyncio.run(_clicks(url, cookie, w.task.id, square.id, kill))
            assert second["type"] == "mask" and second["seq"] == 4, second
            assert killed == [first["worker"]] and second["worker"] != first["worker"]
            assert second["worker"] in hosts, second
            _, _, bw, bh = second["box"]
            assert 60 * 60 * 0.5 < bw * bh < 160 * 120 * 0.8, second["box"]  # the square
            logged = Prompt.objects.filter(instance_id=obj).order_by("seq")
            assert list(logged.values_list("seq", flat=True)) == [1, 2]
            # each interactive worker read the image from the bucket into its own cache
            for host in (first["worker"], second["worker"]):
                assert _cached(homes[hosts[host]]) == {square.file}, hosts[host]

            # an MIS job and an export on the batch worker, which has never seen the images
            assert _cached(homes["batch"]) == set()
            token = Token.objects.create(user=w.users["owner"]).key
            jobs = f"/api/projects/{w.project.id}/jobs/"
            mis_params = {**TINY_MIS, "label_id": w.label.id}
            status, body = _api(
                url, token, jobs, {"dataset_id": w.dataset.id, "kind": "mis", "params": mis_params}
            )
            assert status == 201, body
            mis = wait_for_job(json.loads(body)["id"], {"succeeded", "failed"}, timeout=120)
            assert mis.state == "succeeded", mis.error
            assert (mis.done, mis.total, mis.result["failed"]) == (3, 3, 0)
            found = Instance.objects.filter(image__dataset=w.dataset, source="mis")
            assert found.count() == mis.result["instances"] > 0
            assert _cached(homes["batch"]) == {i.file for i in images}
            params = {"format": "coco", "filter": "all"}
            status, body = _api(
                url, token, jobs, {"dataset_id": w.dataset.id, "kind": "export", "params": params}
            )
            assert status == 201, body
            export = wait_for_job(json.loads(body)["id"], {"succeeded", "failed"}, timeout=120)
            assert export.state == "succeeded", export.error
            assert export.result_file in s3_media.stored()
            assert not list(homes["batch"].glob("exports/**/*.zip"))  # in the bucket, not here
            status, body = _api(url, token, f"/api/jobs/{export.id}/download")
            assert status == 200, body[:300]
            zf = zipfile.ZipFile(io.BytesIO(body))
            coco = json.loads(zf.read("annotations/instances_default.json"))
            # every mask not rejected: the world's, the clicked one's if kept, the proposals
            assert len(coco["images"]) == 3 and len(coco["annotations"]) >= found.count() + 2
            digests = {
                hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if "images/" in n
            }
            assert digests == {i.file_sha256 or i.sha256 for i in images}
            # the web process streamed it out of the bucket: nothing of it on its disk
            assert not [p for p in homes["web"].rglob("*") if p.is_file() and ".zip" in p.name]
            assert _cached(homes["web"]) == set() and not (homes["web"] / "datasets").exists()
            other = Token.objects.create(user=w.users["annotator"]).key
            assert _api(url, other, f"/api/jobs/{export.id}/download")[0] in (403, 404)
        assert Job.objects.get(pk=mis.pk).state == "succeeded"
    finally:
        stop_processes(list(procs.values()))
        redis.flushdb()
