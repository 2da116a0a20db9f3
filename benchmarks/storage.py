"""``maskwright bench storage``: media in an S3 bucket beside media on local disk (issue 21).

The S3 server is real: ``moto`` in server mode, started by the bench as its own process on
127.0.0.1 and stopped by its pid. Every figure has its local-disk peer measured in the same run:

1. Ingest: the same zip of generated 1024×768 JPEGs posted to two real web processes, one on
   the local store, one on the bucket (its own empty ``MASKWRIGHT_HOME``): images per second
   each, and their ratio.
2. First click after opening an image (:mod:`.storage_clicks`), on real interactive Celery
   workers: one on local disk, one on the bucket with its own empty ``MASKWRIGHT_HOME`` that
   must fetch each image from S3 (cold), then, restarted on the same home, from its read-through
   cache (warm: the bytes are on its disk, the model's state of the image is not).
3. Attach (:mod:`.storage_attach`): images registered per second from a bucket prefix of
   1,000 objects (100 with ``--quick``) by the attach job on a real worker; reported as not
   measured where the checkout has no attach job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .harness import BenchEnv

BUCKET = "maskwright-bench"
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"  # moto's, not a real credential


@dataclass
class MotoServer:
    endpoint: str
    pid: int

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def env(self, base: dict[str, str], home: Path, prefix: str) -> dict[str, str]:
        """``base`` with the media store on this server's bucket under ``prefix`` and its own
        ``MASKWRIGHT_HOME`` (no folder shared with the local-disk processes)."""
        env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
        env.update(
            MASKWRIGHT_STORAGE="s3",
            MASKWRIGHT_S3_ENDPOINT_URL=self.endpoint,
            MASKWRIGHT_S3_BUCKET=BUCKET,
            MASKWRIGHT_S3_ACCESS_KEY_ID=ACCESS_KEY,
            MASKWRIGHT_S3_SECRET_ACCESS_KEY=SECRET_KEY,
            MASKWRIGHT_S3_PREFIX=prefix,
            MASKWRIGHT_HOME=str(home),
        )
        return env

    def count(self, prefix: str) -> int:
        """How many objects the bucket holds under ``prefix/``."""
        pages = self.client().get_paginator("list_objects_v2")
        return sum(
            len(page.get("Contents", []))
            for page in pages.paginate(Bucket=BUCKET, Prefix=prefix + "/")
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_process(log_path: Path) -> Iterator[tuple[str, int]]:
    """(endpoint, pid) of ``python -m moto.server`` on a free loopback port, once it answers;
    stopped by its pid (SIGTERM, then SIGKILL) when the block ends. The bench and the test
    suite's ``s3_server`` both start theirs here."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer in 60 s") from None
                time.sleep(0.2)
        yield endpoint, proc.pid
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextmanager
def moto_server(log_path: Path) -> Iterator[MotoServer]:
    """:func:`moto_process` with the bench's bucket."""
    with moto_process(log_path) as (endpoint, pid):
        server = MotoServer(endpoint, pid)
        server.client().create_bucket(Bucket=BUCKET)
        yield server


def _cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _ingest(
    env: BenchEnv, token: str, dataset_id: int, archive: Path, count: int, server_pid: int | None
) -> dict[str, float]:
    """One upload of ``archive`` to a fresh web process on ``env``: images per second, and the
    CPU milliseconds per image that the web process and the S3 server (``server_pid``) spent
    on it. Why the CPU: on 2 shared cores the S3 server and the web process's writing
    threads compete with ingest itself, so the ratio alone does not say where time went."""
    from .ingest import _post_zip

    with env.server() as (url, proc):
        web0 = _cpu_s(proc.pid)
        server0 = _cpu_s(server_pid) if server_pid else 0.0
        elapsed, report = _post_zip(url, token, dataset_id, archive)
        web = _cpu_s(proc.pid) - web0
        server = _cpu_s(server_pid) - server0 if server_pid else 0.0
    if report["accepted"] != count:
        raise RuntimeError(f"only {report['accepted']} of {count} accepted: {report['files'][:3]}")
    return {
        "per_s": count / elapsed,
        "web_cpu_ms": web * 1000 / count,
        "server_cpu_ms": server * 1000 / count,
    }


def ingest_pair(
    env: BenchEnv, s3_env: BenchEnv, token: str, project, archive: Path, count: int, server_pid: int
) -> dict[str, Any]:
    """The same zip into a dataset on local disk and one in the bucket, local first: images
    per second each (``local``, ``s3``), their CPU per image (``cpu``), and the two datasets
    (their images serve the click part)."""
    from annotation.datasets.services import dataset_create

    local_ds = dataset_create(project=project, name="ingest local")
    s3_ds = dataset_create(project=project, name="ingest s3")
    local = _ingest(env, token, local_ds.id, archive, count, None)
    s3 = _ingest(s3_env, token, s3_ds.id, archive, count, server_pid)
    return {
        "local": local["per_s"],
        "s3": s3["per_s"],
        "cpu": {
            "local_web": local["web_cpu_ms"],
            "s3_web": s3["web_cpu_ms"],
            "s3_server": s3["server_cpu_ms"],
        },
        "local_dataset": local_ds,
        "s3_dataset": s3_ds,
    }


def attach_rate(
    env: BenchEnv, s3_env: BenchEnv, server: MotoServer, user, project, count: int
) -> tuple[float | None, str]:
    """Images registered per second by the attach job from a prefix of ``count`` objects, and
    the line to print; (None, why) while this checkout has no attach job (never a made-up
    figure)."""
    from . import storage_attach

    if not storage_attach.available():
        return None, "attach: not built yet (annotation.datasets.attach is missing)"
    got = storage_attach.measure(env, s3_env, server, user, project, count)
    line = (
        f"attach a prefix of {count} objects (1024×768 JPEGs, put in {got['put_s']:.1f} s): "
        f"{got['registered']} images registered in {got['run_s']:.1f} s of the job's run "
        f"({got['wall_s']:.1f} s from launch): {got['images_per_s']:.1f} img/s"
    )
    return float(got["images_per_s"]), line


def store_alone(server: MotoServer, jpegs: list[bytes], count: int, prefix: str) -> float:
    """The floor the S3 server sets: images per second of bare boto3 PUTs, one image and one
    thumbnail-sized object per image, sequential as the upload stores them (no decoding)."""
    import io

    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(jpegs[0])) as img:
        img.thumbnail((256, 256))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=85)
    thumb, client = out.getvalue(), server.client()
    started = time.perf_counter()
    for i in range(count):
        data = jpegs[i % len(jpegs)] + i.to_bytes(4, "big")
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/floor/{i:05d}.jpg", Body=data)
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/floor/{i:05d}-t.jpg", Body=thumb)
    return count / (time.perf_counter() - started)


def _p50(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values))


def figures(
    ingest: dict[str, float],
    clicks: dict[str, list[float]],
    attach_per_s: float | None,
) -> dict[str, Any]:
    """The JSON figures from the measurements: images per second (``ingest``: local, s3) and
    first-click seconds per image (``clicks``: local_cold_phase, cold, local_warm_phase, warm;
    the i-th of each S3 list was measured right after the i-th of its local list). The click
    figures are medians over those pairs: cold − local in ms, warm ÷ local, so that a slow
    moment of a shared machine falls on both members of a pair."""
    pairs_cold = zip(clicks["cold"], clicks["local_cold_phase"], strict=True)
    pairs_warm = zip(clicks["warm"], clicks["local_warm_phase"], strict=True)
    return {
        "s3_ingest_ratio": round(ingest["s3"] / ingest["local"], 3),
        "cold_click_extra_ms": round(_p50([(c - lo) * 1000 for c, lo in pairs_cold]), 1),
        "warm_click_ratio": round(_p50([w / lo for w, lo in pairs_warm]), 3),
        "attach_images_per_s": None if attach_per_s is None else round(attach_per_s, 1),
        "local_ingest_images_per_s": round(ingest["local"], 2),
        "s3_ingest_images_per_s": round(ingest["s3"], 2),
        "s3_put_floor_images_per_s": round(ingest["floor"], 2),
        **{
            f"{who}_ingest_cpu_ms_per_image": round(ms, 2)
            for who, ms in ingest.get("cpu", {}).items()
        },
        "local_first_click_ms": round(_p50(clicks["local_cold_phase"]) * 1000, 1),
        "cold_first_click_ms": round(_p50(clicks["cold"]) * 1000, 1),
        "local_first_click_warm_phase_ms": round(_p50(clicks["local_warm_phase"]) * 1000, 1),
        "warm_first_click_ms": round(_p50(clicks["warm"]) * 1000, 1),
        "click_images": len(clicks["cold"]),
    }


def bench_storage(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from django.conf import settings
    from rest_framework.authtoken.models import Token

    from annotation.projects.services import project_create
    from annotation.users.models import User

    from . import storage_clicks
    from .ingest import H, W, _make_zip, _photo_like

    count, n_clicks = (20, 3) if quick else (200, 10)
    user = User.objects.create_user(username="bench-owner", password="bench-pass-1")
    token = Token.objects.create(user=user).key
    project = project_create(name="storage bench", owner=user)
    jpegs = [_photo_like(seed) for seed in range(20)]
    archive = env.scratch / f"upload-{count}.zip"
    _make_zip(archive, jpegs, count)
    print(
        f"zip: {count} generated {W}×{H} JPEGs, {archive.stat().st_size / 2**20:.0f} MiB; "
        f"{os.cpu_count()} CPU cores; S3: moto server on 127.0.0.1",
        flush=True,
    )
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    # Hosts of one deployment share DJANGO_SECRET_KEY (production requires it): the local
    # settings would otherwise make one per MASKWRIGHT_HOME, and the S3 processes each have
    # their own home (a bucket source's credentials, encrypted under it, must decrypt there).
    shared = {**env.env, "DJANGO_SECRET_KEY": settings.SECRET_KEY}
    with moto_server(env.scratch / "moto.log") as server:
        web_home = env.scratch / "s3-web-home"
        s3_web = replace(env, env=server.env(shared, web_home, prefix))
        ingest = ingest_pair(env, s3_web, token, project, archive, count, server.pid)
        stored = server.count(prefix)
        ingest["floor"] = store_alone(server, jpegs, count, f"{prefix}-floor")
        print(
            f"ingest {count} images: local disk {ingest['local']:.1f} img/s, S3 "
            f"{ingest['s3']:.1f} img/s ({ingest['s3'] / ingest['local']:.0%} of local); "
            f"{stored} objects in the bucket (images and thumbnails)",
            flush=True,
        )
        cpu = ingest["cpu"]
        print(
            f"CPU per image: web process {cpu['local_web']:.1f} ms on local disk, "
            f"{cpu['s3_web']:.1f} ms on S3 (its writing threads share one interpreter lock); "
            f"S3 server {cpu['s3_server']:.1f} ms, on the same {os.cpu_count()} cores",
            flush=True,
        )
        print(
            f"peer: bare boto3 PUTs to the same server, image + thumbnail each, no decoding: "
            f"{ingest['floor']:.1f} img/s (the most S3 ingest can reach on it)",
            flush=True,
        )
        worker_home = env.scratch / "s3-worker-home"
        s3_worker = replace(env, env=server.env(shared, worker_home, prefix))
        clicks = storage_clicks.measure(
            env, s3_worker, user, project, ingest["local_dataset"], ingest["s3_dataset"], n_clicks
        )
        attach_home = env.scratch / "s3-attach-home"
        s3_attach = replace(env, env=server.env(shared, attach_home, prefix))
        attach_per_s, attach_line = attach_rate(
            env, s3_attach, server, user, project, 100 if quick else 1000
        )
    out = figures(ingest, clicks, attach_per_s)
    ms = {k: " ".join(f"{v * 1000:.0f}" for v in vs) for k, vs in clicks.items()}
    print(
        f"first click after open, {out['click_images']} images each, p50: local disk "
        f"{out['local_first_click_ms']:.0f} ms, S3 cold (fetched by the worker) "
        f"{out['cold_first_click_ms']:.0f} ms; median of the pairs' cold − local "
        f"{out['cold_click_extra_ms']:+.0f} ms  (ms, local: {ms['local_cold_phase']}; "
        f"cold: {ms['cold']})"
    )
    print(
        f"first click after open, restarted S3 worker, p50: local disk "
        f"{out['local_first_click_warm_phase_ms']:.0f} ms, S3 warm (its cache) "
        f"{out['warm_first_click_ms']:.0f} ms; median of the pairs' warm ÷ local "
        f"{out['warm_click_ratio']:.2f}  (ms, local: {ms['local_warm_phase']}; "
        f"warm: {ms['warm']})"
    )
    print(attach_line)
    return out
