"""``maskwright bench faults``: kill -9 parts of a running platform and count what survived.

Runs the quick start itself (``maskwright run`` on embedded Postgres and Redis, a scratch
MASKWRIGHT_HOME, free ports, job lease 6 s so that sweeps come quickly) and, from outside:

1. kills the interactive worker right after a click: the launcher must restart it, and the
   click must still be answered (the socket sends it again); time = click → its mask;
2. kills the batch worker mid-export: the export must resume (job lease) and succeed;
3. kills the whole run tree (launcher, uvicorn, workers, Redis, PostgreSQL) mid-upload, with
   an export running and a click just sent; then starts ``maskwright run`` again on the same
   home, opens the images (stale masks are recomputed on open) and waits for the jobs;
4. times clicks with the batch worker idle, then while an MIS job runs (then cancels it).

Figures: ``worker_restarted``, ``click_after_kill_s``, ``stale_masks`` (after the reopen),
``stuck_jobs``, ``lost_prompts`` (answered clicks missing from the log), ``lost_masks``
(masks a client received that Postgres lost), ``half_images`` (image rows whose file is
missing or does not decode); ``click_idle_p50_s`` beside ``click_during_mis_p50_s`` / ``_max_s``.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from .fault_clicks import click_times, clicks_around_a_kill, reopen

LEASE_S = 6


def _gradient_png(i: int, w: int = 320, h: int = 240) -> bytes:
    from PIL import Image as PILImage

    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack(
        [(xx * 255 // w + i) % 256, (yy * 255 // h) % 256, np.full_like(xx, (i * 37) % 256)], -1
    )
    out = io.BytesIO()
    PILImage.fromarray(arr.astype(np.uint8)).save(out, "PNG", compress_level=1)
    return out.getvalue()


class Run:
    """``maskwright run`` as a person starts it, with its output collected."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "a")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "maskwright"), "run", "--port", str(self.port)],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while b"Maskwright is running" not in self.log.read_bytes()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"maskwright run did not come up:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.3)

    def worker_pid(self, role: str) -> int | None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "-n" in cmd and cmd[cmd.index("-n") + 1].startswith(f"{role}-"):
                return child.pid
        return None

    def kill_tree(self, home: Path) -> int:
        """SIGKILL the launcher, its children and the PostgreSQL it daemonised, all at once."""
        procs = [
            psutil.Process(self.proc.pid),
            *psutil.Process(self.proc.pid).children(recursive=True),
        ]
        for p in psutil.process_iter(["cmdline"]):
            if str(home / "pgdata") in " ".join(p.info["cmdline"] or []):
                procs += [p, *p.children(recursive=True)]
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)
        self.proc.wait()
        return len(procs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _setup(n_images: int) -> dict[str, Any]:
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from annotation.datasets.models import Dataset
    from annotation.datasets.services import Upload, dataset_upload
    from annotation.users.models import User

    user = User.objects.get(username="demo")
    dataset = Dataset.objects.filter(project__memberships__user=user).order_by("id").first()
    dataset_upload(
        dataset=dataset,
        uploads=[Upload(f"grad{i}.png", io.BytesIO(_gradient_png(i))) for i in range(n_images)],
    )
    client = Client()
    assert client.login(username="demo", password="demo")
    image_id = dataset.images.order_by("id").values_list("id", flat=True).first()
    return {
        "user": user,
        "dataset": dataset,
        "cookie": f"sessionid={client.cookies['sessionid'].value}",
        "token": Token.objects.get_or_create(user=user)[0].key,
        "image_id": image_id,
    }


def _clicks_beside_a_job(url: str, world: dict[str, Any], n: int = 5) -> dict[str, Any]:
    """Click latency with the batch worker idle, then while an MIS job runs on the same
    machine (clicks have their own worker; the job shares the CPU); the job is cancelled."""
    from annotation.jobs.models import Job
    from annotation.jobs.services import job_cancel, job_launch

    # the image's features, cached
    asyncio.run(click_times(url, world["cookie"], world["image_id"], 1))
    idle = asyncio.run(click_times(url, world["cookie"], world["image_id"], n))
    job = job_launch(
        dataset=world["dataset"], kind="mis", params={"skip_existing": False}, user=world["user"]
    )
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.id).done == 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # until the job is computing proposals
    busy = asyncio.run(click_times(url, world["cookie"], world["image_id"], n))
    job.refresh_from_db()
    running = job.state == "running"
    job_cancel(job=job)
    _wait_jobs(LEASE_S * 4 + 120)
    job.refresh_from_db()
    return {
        "idle": idle,
        "busy": busy,
        "running": running,
        "done": job.done,
        "total": job.total,
        "state": job.state,
    }


def _upload_forever(url: str, token: str, dataset_id: int, result: dict[str, Any]) -> None:
    """One big multipart upload (runs until the server dies under it)."""
    import requests

    files = [
        ("files", (f"up{i}.png", _gradient_png(1000 + i, 640, 480), "image/png"))
        for i in range(150)
    ]
    try:
        response = requests.post(
            f"{url}/api/datasets/{dataset_id}/upload/",
            files=files,
            headers={"Authorization": f"Token {token}"},
            timeout=120,
        )
        result["status"] = response.status_code
    except Exception as exc:  # noqa: BLE001 (a connection reset is the expected end)
        result["status"] = type(exc).__name__


def _wait_jobs(timeout: float) -> list[int]:
    from annotation.jobs.models import Job

    deadline = time.monotonic() + timeout
    while True:
        active = list(
            Job.objects.filter(state__in=["queued", "running"]).values_list("id", flat=True)
        )
        if not active or time.monotonic() > deadline:
            return active
        time.sleep(1)


def _half_images(dataset_id: int) -> int:
    from PIL import Image as PILImage

    from annotation.datasets import storage
    from annotation.datasets.models import Image

    bad = 0
    for image in Image.objects.filter(dataset_id=dataset_id):
        try:
            with PILImage.open(storage.media_path(image.file)) as img:
                img.load()
        except (OSError, ValueError, SyntaxError):
            bad += 1
    return bad


def bench_faults(*, quick: bool = False) -> dict[str, Any]:
    from annotation.cli.services import free_port

    n_images = 60 if quick else 200
    with tempfile.TemporaryDirectory(prefix="maskwright-faults-") as scratch_dir:
        scratch = Path(scratch_dir)
        home, port, pg, redis_port = scratch / "home", free_port(), free_port(), free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            MASKWRIGHT_HOME=str(home),
            MASKWRIGHT_PG_PORT=str(pg),
            MASKWRIGHT_REDIS_PORT=str(redis_port),
            MASKWRIGHT_JOB_LEASE_S=str(LEASE_S),
            MASKWRIGHT_LOG_LEVEL="WARNING",
        )
        run = Run(env, port, scratch / "run.log")
        url = f"http://127.0.0.1:{port}"
        print(
            f"maskwright run on {url} (home {home}); job lease {LEASE_S} s; "
            f"{os.cpu_count()} CPU cores",
            flush=True,
        )
        run.start()
        try:
            return _scenario(run, env, home, url, pg, redis_port, n_images)
        finally:
            run.stop()
            from django.db import connections

            connections.close_all()
            log = os.environ.get("MASKWRIGHT_BENCH_LOGS")
            if log:
                import shutil

                shutil.copytree(home / "logs", Path(log) / "faults-logs", dirs_exist_ok=True)
                shutil.copy(scratch / "run.log", Path(log) / "faults-run.log")


def _scenario(
    run: Run, env: dict[str, str], home: Path, url: str, pg: int, redis_port: int, n_images: int
) -> dict[str, Any]:
    os.environ.update(
        env,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{pg}/maskwright",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DJANGO_SETTINGS_MODULE="config.settings.local",
    )
    import django

    django.setup()
    from django.db import connections

    from annotation.jobs.models import Job
    from annotation.jobs.services import job_launch
    from annotation.labeling.freshness import stale_instances
    from annotation.labeling.models import Instance, Prompt

    world = _setup(n_images)
    dataset = world["dataset"]
    print(f"demo dataset {dataset.id}: {dataset.images.count()} images", flush=True)

    # 1. the interactive worker dies right after a click
    before = run.worker_pid("interactive")
    clicks = asyncio.run(
        clicks_around_a_kill(
            url, world["cookie"], world["image_id"], kill=lambda: os.kill(before, signal.SIGKILL)
        )
    )
    deadline = time.monotonic() + 60
    while run.worker_pid("interactive") in (None, before) and time.monotonic() < deadline:
        time.sleep(0.2)
    after = run.worker_pid("interactive")
    restarted = after is not None and after != before and run.proc.poll() is None
    print(
        f"1. interactive worker {before} killed mid-click: restarted as {after}; the click "
        f"answered {clicks['after_kill_s']:.2f} s after it was sent",
        flush=True,
    )

    # 2. the batch worker dies mid-export
    job = job_launch(
        dataset=dataset,
        kind="export",
        params={"format": "voc", "filter": "all"},
        user=world["user"],
    )
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.id).state == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.worker_pid("batch"), signal.SIGKILL)
    stuck = _wait_jobs(LEASE_S * 4 + 120)
    job.refresh_from_db()
    print(
        f"2. batch worker killed mid-export (job {job.id}): {job.state} after {job.attempts} runs"
        f"{' — ' + job.error if job.error else ''}",
        flush=True,
    )

    # 3. the whole tree dies mid-upload, with an export running and a click just sent
    upload: dict[str, Any] = {}
    uploader = threading.Thread(
        target=_upload_forever, args=(url, world["token"], dataset.id, upload), daemon=True
    )
    n_before = dataset.images.count()
    killed: list[int] = []
    launched: list[Job] = []

    def upload_and_export() -> None:
        uploader.start()
        deadline = time.monotonic() + 30
        while (
            dataset.images.count() <= n_before + 3
            and "status" not in upload
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)  # once the upload is storing images
        launched.append(
            job_launch(
                dataset=dataset,
                kind="export",
                params={"format": "coco", "filter": "all"},
                user=world["user"],
            )
        )
        while (
            Job.objects.get(pk=launched[0].id).state == "queued"
            and time.monotonic() < deadline + 60
        ):
            time.sleep(0.02)
        connections.close_all()

    def kill_tree() -> None:
        upload["stored_before_kill"] = dataset.images.count() - n_before
        upload["export_state_at_kill"] = Job.objects.get(pk=launched[0].id).state
        killed.append(run.kill_tree(home))
        connections.close_all()  # this thread's, now dead

    tree = asyncio.run(
        clicks_around_a_kill(
            url,
            world["cookie"],
            world["image_id"],
            between=upload_and_export,
            then_kill_tree=kill_tree,
        )
    )
    job2 = launched[0]
    uploader.join(timeout=30)
    connections.close_all()
    print(
        f"3. killed the run tree ({killed[0] if killed else '?'} processes) mid-upload (upload: "
        f"{upload.get('status')}), export {job2.id} "
        f"{upload.get('export_state_at_kill')}; restarting ...",
        flush=True,
    )
    started = time.monotonic()
    run.start()
    connections.close_all()
    for conn in connections.all():  # the pool still holds connections to the killed server
        getattr(conn, "close_pool", lambda: None)()
    print(
        f"   up again in {time.monotonic() - started:.1f} s; {upload.get('stored_before_kill')} "
        "images of the upload were stored before the kill",
        flush=True,
    )
    stale_before = stale_instances(Instance.objects.filter(image__dataset=dataset))
    asyncio.run(reopen(url, world["cookie"], sorted({s["image_id"] for s in stale_before})))
    stale_after = stale_instances(Instance.objects.filter(image__dataset=dataset))
    stuck = _wait_jobs(LEASE_S * 4 + 180)
    job2.refresh_from_db()
    print(
        f"   stale masks after restart: {len(stale_before)}, after opening their images: "
        f"{len(stale_after)}; export {job2.id}: {job2.state} after {job2.attempts} runs",
        flush=True,
    )

    # 4. interactive work beside batch work: clicks while an MIS job runs
    beside = _clicks_beside_a_job(url, world)
    print(
        f"4. clicks (s, click → mask) with the batch worker idle: {_fmt(beside['idle'])}; while an "
        f"MIS job {'ran' if beside['running'] else 'was queued'} "
        f"({beside['done']}/{beside['total']} images when cancelled, now {beside['state']}): "
        f"{_fmt(beside['busy'])}",
        flush=True,
    )

    answered = {(c["object"], s) for c in (clicks, tree) for s in c["answered"]}
    logged = set(
        Prompt.objects.filter(instance_id__in=[c["object"] for c in (clicks, tree)]).values_list(
            "instance_id", "seq"
        )
    )
    # a click's prompt seq on its object: the n-th prompt of the object (one client per object)
    lost_prompts = sum(
        1
        for c in (clicks, tree)
        for i, _ in enumerate(c["answered"])
        if (c["object"], i + 1) not in logged
    )
    versions = dict(
        Instance.objects.filter(pk__in=[c["object"] for c in (clicks, tree)]).values_list(
            "id", "version"
        )
    )
    lost_masks = sum(
        1 for c in (clicks, tree) for obj, v in c["versions"].items() if versions.get(obj, 0) < v
    )
    half = _half_images(dataset.id)
    print(
        f"answered clicks {len(answered)}, their prompts lost {lost_prompts}; masks lost "
        f"{lost_masks}; half-stored images {half}; jobs still active {stuck}",
        flush=True,
    )
    return {
        "worker_restarted": restarted,
        "click_after_kill_s": round(clicks["after_kill_s"], 3),
        "stale_masks": len(stale_after),
        "stale_masks_before_open": len(stale_before),
        "stuck_jobs": len(stuck),
        "lost_prompts": lost_prompts,
        "lost_masks": lost_masks,
        "half_images": half,
        "export_after_worker_kill": job.state,
        "export_after_tree_kill": job2.state,
        "click_idle_p50_s": round(float(np.median(beside["idle"])), 3),
        "click_during_mis_p50_s": round(float(np.median(beside["busy"])), 3),
        "click_during_mis_max_s": round(max(beside["busy"]), 3),
        "mis_cancelled": beside["state"] == "cancelled",
    }


def _fmt(times: list[float]) -> str:
    return f"p50 {np.median(times):.2f}, max {max(times):.2f} ({len(times)} clicks)"
