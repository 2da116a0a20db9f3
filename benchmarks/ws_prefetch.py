"""``maskwright bench ws``, part 4: a click that arrives while the worker prefetches the task's
next image (issue 19: clicks waited seconds behind prefetches).

The annotator clicks an object, gets its mask, then pauses past ``IDLE_PREFETCH_S``: the socket
queues the next image's state on the session's (solo) worker, which starts computing it. A
click sent then is the measured one ("during"); the peer, same worker and image, is a click sent
right after a mask ("quiet", no prefetch anywhere). Images are uploaded at 1024 px (the
interactive working size), where the next image's state costs the most. The worker's log says
what became of each prefetch: stopped by the click, called off before it started, or finished.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import numpy as np

LONG_SIDE = 1024
# how long after the pause timer fired the click is sent: the worker has taken the prefetch
# (a Redis round trip) and is reading the image or running the backbone
AFTER_PAUSE_S = 0.15


def setup(samples, user_id: int, project_id: int) -> tuple[list[int], int]:
    """The samples as a new dataset of the project, in one task for ``user_id``."""
    from annotation.datasets.services import Upload, dataset_create, dataset_upload
    from annotation.labeling.services import task_create
    from annotation.projects.models import Project

    project = Project.objects.get(pk=project_id)
    dataset = dataset_create(project=project, name=f"prefetch bench {LONG_SIDE} px")
    report = dataset_upload(
        dataset=dataset,
        uploads=[Upload(f"{s.name}-{LONG_SIDE}.png", io.BytesIO(s.png)) for s in samples],
    )
    image_ids = [f.image_id for f in report.files]
    assert all(image_ids), report.as_dict()
    task = task_create(
        project=project,
        dataset=dataset,
        name="prefetch bench",
        assignee_id=user_id,
        image_ids=image_ids,
    )
    return image_ids, task.id


async def _click(client, obj: int, y: int, x: int, positive: bool) -> float:
    sent = time.perf_counter()
    seq = await client.send(
        {"type": "click", "object_id": obj, "x": float(x), "y": float(y), "positive": positive}
    )
    got, _ = await client.mask_at_least(obj, seq)
    return got - sent


async def measure(url: str, cookie: str, task_id: int, image_ids: list[int], samples):
    """Per image but the last: a quiet click and a click during the next image's prefetch."""
    from annotation.labeling.consumers import IDLE_PREFETCH_S
    from benchmarks.ws import _connect

    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    quiet: list[float] = []
    during: list[float] = []
    try:
        for image_id, sample in zip(image_ids[:-1], samples):
            await client.request({"type": "open", "image_id": image_id, "task_id": task_id})
            obj = (await client.request({"type": "new_object"}))["object"]["id"]
            inside, outside = np.argwhere(sample.gt), np.argwhere(~sample.gt)
            await _click(client, obj, *inside[len(inside) // 2], True)  # waits for set_image
            quiet.append(await _click(client, obj, *inside[len(inside) // 3], True))
            await asyncio.sleep(IDLE_PREFETCH_S + AFTER_PAUSE_S)
            during.append(await _click(client, obj, *outside[len(outside) // 2], False))
    finally:
        await client.ws.close()
        listener.cancel()
    return quiet, during


def outcomes(log: Path) -> dict[str, int]:
    """What the worker's log says became of the next-image prefetches."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {
        "stopped": text.count("stopped: a click came while it ran"),
        "called_off": text.count("skipped: a click came first"),
    }


def report(
    quiet: list[float], during: list[float], seen: dict[str, int], peer_set_image: float
) -> tuple[str, dict[str, float | int]]:
    """The line to print and the JSON figures."""
    q, d = float(np.median(quiet)), float(np.median(during))
    line = (
        f"click during the next image's prefetch ({LONG_SIDE} px, {len(during)} images): p50 "
        f"{d:.3f} s  max {max(during):.3f} s;  quiet click p50 {q:.3f} s;  the prefetch alone "
        f"(set_image p50) {peer_set_image:.3f} s;  prefetches stopped by the click "
        f"{seen['stopped']}, called off before starting {seen['called_off']}"
    )
    return line, {
        "click_during_prefetch_p50_s": round(d, 4),
        "click_during_prefetch_max_s": round(max(during), 4),
        "click_quiet_p50_s": round(q, 4),
        "prefetch_set_image_p50_s": round(peer_set_image, 4),
        "prefetches_stopped": seen["stopped"],
    }


def run(
    url: str, cookie: str, user_id: int, project_id: int, n_images: int, log: Path
) -> tuple[str, dict[str, float | int]]:
    """Set up, measure, and :func:`report` (the stack must be up: server and worker)."""
    from benchmarks.data import images, model_alone

    samples, _ = images(n_images, long_side=LONG_SIDE)
    image_ids, task_id = setup(samples, user_id, project_id)
    quiet, during = asyncio.run(measure(url, cookie, task_id, image_ids, samples))
    peer = model_alone(samples[1:], 1)  # the images that were prefetched
    return report(quiet, during, outcomes(log), peer["set_image_p50_s"])
