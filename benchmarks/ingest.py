"""Upload ingest: a zip of generated 1024×768 JPEGs posted to a real server.

Figures: images per second end to end (HTTP upload of the zip, unpacking, hashing, decoding,
storing, thumbnailing, one row per image) and the web process's peak resident memory. Two
archive sizes show whether memory grows with the archive (it must not). The peer, measured in
the same run on the same files: Pillow alone decoding, hashing and thumbnailing each JPEG in
memory, the floor of per-image work.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from .harness import BenchEnv, peak_rss_mb

W, H = 1024, 768


def _photo_like(seed: int) -> bytes:
    """A 1024×768 JPEG with smooth shading, shapes and sensor noise (≈ photo-sized files)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack(
        [
            (xx / W) * rng.uniform(80, 200),
            (yy / H) * rng.uniform(80, 200),
            np.full_like(xx, rng.uniform(40, 160)),
        ],
        axis=-1,
    )
    for _ in range(6):
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(40, 220)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        base[inside] = rng.uniform(0, 255, 3)
    base += rng.normal(0, 6, base.shape)
    out = io.BytesIO()
    PILImage.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=88)
    return out.getvalue()


def _make_zip(path: Path, jpegs: list[bytes], count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            # Bytes after the end-of-image marker make every member unique (no duplicates).
            data = jpegs[i % len(jpegs)]
            # after EOI: ignored by decoders
            zf.writestr(f"images/{i:05d}.jpg", data + i.to_bytes(4, "big"))


def _post_zip(url: str, token: str, dataset_id: int, path: Path) -> tuple[float, dict[str, Any]]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + path.stat().st_size + len(tail)

    def body():
        yield head
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
        yield tail

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=3600)
    started = time.perf_counter()
    conn.request(
        "POST",
        f"/api/datasets/{dataset_id}/upload/",
        body=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(size),
            "Authorization": f"Token {token}",
        },
    )
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {payload}")
    return elapsed, payload


def _pillow_floor(jpegs: list[bytes], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        data = jpegs[i % len(jpegs)]
        hashlib.sha256(data).hexdigest()
        with PILImage.open(io.BytesIO(data)) as img:
            img.load()
            img.thumbnail((256, 256))
    return count / (time.perf_counter() - started)


def bench_ingest(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from rest_framework.authtoken.models import Token

    from annotation.datasets.services import dataset_create
    from annotation.projects.services import project_create
    from annotation.users.models import User

    sizes = [20, 60] if quick else [100, 500]
    user = User.objects.create_user(username="bench", password="bench-pw-1")
    token = Token.objects.create(user=user).key
    project = project_create(name="bench", owner=user)
    jpegs = [_photo_like(seed) for seed in range(20)]
    print(f"generated JPEGs: {W}×{H}, mean {np.mean([len(j) for j in jpegs]) / 1024:.0f} KiB")
    runs = []
    for count in sizes:
        archive = env.scratch / f"upload-{count}.zip"
        _make_zip(archive, jpegs, count)
        dataset = dataset_create(project=project, name=f"ingest-{count}")
        with env.server() as (url, proc):
            idle_mb = peak_rss_mb(proc)
            elapsed, report = _post_zip(url, token, dataset.id, archive)
            peak = peak_rss_mb(proc)
        accepted = report["accepted"]
        if accepted != count:
            raise RuntimeError(f"only {accepted} of {count} accepted: {report['files'][:3]}")
        runs.append(
            {
                "images": count,
                "zip_mb": archive.stat().st_size / 2**20,
                "seconds": elapsed,
                "images_per_s": count / elapsed,
                "idle_mb": idle_mb,
                "peak_mb": peak,
            }
        )
        print(
            f"ingest {count:4d} images ({runs[-1]['zip_mb']:.0f} MiB zip): {elapsed:6.2f} s, "
            f"{count / elapsed:6.1f} img/s, web process RSS {idle_mb:.0f} MiB idle -> peak "
            f"{peak:.0f} MiB"
        )
        archive.unlink()
    floor = _pillow_floor(jpegs, sizes[-1])
    print(f"peer: Pillow alone (sha256 + full decode + thumbnail, in memory): {floor:.1f} img/s")
    growth = runs[-1]["peak_mb"] - runs[0]["peak_mb"]
    print(
        f"peak memory growth from {sizes[0]} to {sizes[-1]} images: {growth:+.1f} MiB "
        f"(zip grew {runs[-1]['zip_mb'] - runs[0]['zip_mb']:.0f} MiB)"
    )
    last = runs[-1]
    return {
        "images_per_s": round(last["images_per_s"], 2),
        "peak_mb": round(last["peak_mb"], 1),
        "peak_mb_small": round(runs[0]["peak_mb"], 1),
        "images": last["images"],
        "pillow_floor_images_per_s": round(floor, 2),
    }
