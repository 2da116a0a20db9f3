"""The annotation socket as ``bench faults`` drives it: clicks around a kill, timed clicks, and
reopening images so that stale masks are recomputed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from .ws import _connect


async def clicks_around_a_kill(
    url: str,
    cookie: str,
    image_id: int,
    kill: Any = None,
    then_kill_tree: Any = None,
    between: Any = None,
) -> dict[str, Any]:
    """Open the image, one object, a click (answered), ``between()`` (in a thread), then a
    second click: ``kill()`` right after sending it (the worker dies mid-click), or
    ``then_kill_tree()`` (everything dies with the click in flight). Returns the clicks' fates."""
    from asgiref.sync import sync_to_async

    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    out: dict[str, Any] = {"answered": [], "versions": {}}
    try:
        await client.request({"type": "open", "image_id": image_id})
        obj = (await client.request({"type": "new_object"}))["object"]["id"]
        out["object"] = obj
        seq = await client.send(
            {"type": "click", "object_id": obj, "x": 100.0, "y": 80.0, "positive": True}
        )
        _, mask = await client.mask_at_least(obj, seq, timeout=120)
        out["answered"].append(seq)
        out["versions"][obj] = mask["version"]
        if between is not None:
            await sync_to_async(between, thread_sensitive=False)()
        sent = time.perf_counter()
        seq = await client.send(
            {"type": "click", "object_id": obj, "x": 40.0, "y": 30.0, "positive": False}
        )
        if then_kill_tree is not None:
            # logged (committed) by now, most likely; its mask perhaps not
            await asyncio.sleep(0.15)
            await sync_to_async(then_kill_tree, thread_sensitive=False)()
            return out
        await asyncio.sleep(0.05)
        kill()
        got, mask = await client.mask_at_least(obj, seq, timeout=60)
        out["answered"].append(seq)
        out["versions"][obj] = mask["version"]
        out["after_kill_s"] = got - sent
    finally:
        with contextlib.suppress(Exception):  # the server may be gone: that is the point
            await client.ws.close()
        listener.cancel()
    return out


async def click_times(url: str, cookie: str, image_id: int, n: int) -> list[float]:
    """Seconds from sending each of ``n`` clicks (on a new object) to its mask, one at a time."""
    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    times = []
    try:
        await client.request({"type": "open", "image_id": image_id})
        obj = (await client.request({"type": "new_object"}))["object"]["id"]
        for i in range(n):
            sent = time.perf_counter()
            seq = await client.send(
                {
                    "type": "click",
                    "object_id": obj,
                    "x": 60.0 + 20 * i,
                    "y": 90.0,
                    "positive": i % 3 != 2,
                }
            )
            got, _ = await client.mask_at_least(obj, seq, timeout=120)
            times.append(got - sent)
    finally:
        await client.ws.close()
        listener.cancel()
    return times


async def reopen(url: str, cookie: str, image_ids: list[int], wait_s: float = 60) -> None:
    """Open each image (stale masks are queued on open) and wait for the recomputed masks."""
    from annotation.labeling.freshness import stale_instances
    from annotation.labeling.models import Instance

    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    try:
        for image_id in image_ids:
            await client.request({"type": "open", "image_id": image_id})
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                from asgiref.sync import sync_to_async

                left = await sync_to_async(
                    lambda image_id=image_id: stale_instances(
                        Instance.objects.filter(image_id=image_id)
                    )
                )()
                if not left:
                    break
                await asyncio.sleep(0.5)
    finally:
        await client.ws.close()
        listener.cancel()
