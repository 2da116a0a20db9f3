"""``maskwright bench storage``, part 3: attach a bucket prefix of 1,000 objects to a dataset.

The objects (the ingest part's generated 1024×768 JPEGs, each made unique) are put in a bucket
of their own on the bench's S3 server; a bucket source of the project names it with its
credentials (stored encrypted, as the API stores them); an ``attach`` job
(:mod:`annotation.datasets.attach`) runs on a real Celery worker of the ``default`` queue whose
own store is the platform's bucket and whose ``MASKWRIGHT_HOME`` is its own and empty. Figure:
images registered per second of the job's run (its ``started_at`` → ``finished_at``): each
object streamed once, hashed, checked by Pillow, thumbnailed into the platform's store, and
recorded.
"""

from __future__ import annotations

import importlib.util
import subprocess
import time
from dataclasses import replace
from typing import Any

from .harness import BenchEnv

ATTACH_BUCKET = "maskwright-bench-attached"
PREFIX = "photos"


def available() -> bool:
    """Whether this checkout has the attach job (issue 21, built beside this bench)."""
    return importlib.util.find_spec("annotation.datasets.attach") is not None


def _start_default_worker(env: BenchEnv, name: str) -> subprocess.Popen:
    """A Celery worker (solo pool) of the ``default`` queue; returns once its log says ready."""
    from annotation.cli.services import start_celery_worker

    return start_celery_worker(name, "default", env.env, env.scratch / f"worker-{name}.log")


def fill_bucket(server, jpegs: list[bytes], count: int) -> float:
    """``count`` distinct JPEG objects under ``PREFIX/`` of the attach bucket; seconds taken."""
    client = server.client()
    client.create_bucket(Bucket=ATTACH_BUCKET)
    started = time.perf_counter()
    for i in range(count):
        body = jpegs[i % len(jpegs)] + i.to_bytes(4, "big")  # after EOI: ignored by decoders
        client.put_object(Bucket=ATTACH_BUCKET, Key=f"{PREFIX}/{i:05d}.jpg", Body=body)
    return time.perf_counter() - started


def measure(env: BenchEnv, s3_env: BenchEnv, server, user, project, count: int) -> dict[str, Any]:
    """Run one attach of ``count`` objects; images per second and the job's counts."""
    from annotation.cli.services import stop_processes
    from annotation.datasets import buckets
    from annotation.datasets.models import BucketSource
    from annotation.datasets.services import dataset_create
    from annotation.jobs.models import Job
    from annotation.jobs.services import job_launch

    from .ingest import _photo_like
    from .storage import ACCESS_KEY, SECRET_KEY

    jpegs = [_photo_like(seed) for seed in range(100, 120)]
    put_s = fill_bucket(server, jpegs, count)
    source = BucketSource(
        project=project, name="bench source", endpoint_url=server.endpoint, bucket=ATTACH_BUCKET
    )
    buckets.set_credentials(source, ACCESS_KEY, SECRET_KEY)
    source.save()
    dataset = dataset_create(project=project, name="attached")
    # the bench's S3 server is on loopback, which the platform refuses for attached buckets
    # unless an admin names the endpoint (a tenant must not reach the host's own network)
    allowed = {**s3_env.env, "MASKWRIGHT_BUCKET_ENDPOINTS": server.endpoint}
    worker = _start_default_worker(replace(s3_env, env=allowed), "bench-attach")
    try:
        launched = time.perf_counter()
        job = job_launch(
            dataset=dataset,
            kind="attach",
            params={"bucket_id": source.id, "prefix": PREFIX},
            user=user,
        )
        deadline = time.monotonic() + 1800
        while (job := Job.objects.get(pk=job.pk)).state not in {"succeeded", "failed"}:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"attach job {job.pk} is {job.state}")
            time.sleep(0.2)
        wall = time.perf_counter() - launched
    finally:
        stop_processes([worker], timeout=15)
    if job.state != "succeeded":
        raise RuntimeError(f"attach job failed: {job.error}")
    registered = int(job.result["registered"])
    if registered != count:
        raise RuntimeError(f"attach registered {registered} of {count}: {job.result}")
    assert job.started_at and job.finished_at
    run_s = (job.finished_at - job.started_at).total_seconds()
    return {
        "images_per_s": registered / run_s,
        "registered": registered,
        "run_s": run_s,
        "wall_s": wall,
        "put_s": put_s,
    }
