"""``maskwright bench ws``: the click loop over real sockets, measured from the client.

Stack: uvicorn and one interactive Celery worker (solo pool, M2N2 on effnet-lite0, CPU) on a
scratch database, clients speaking the ``ws/annotate/`` protocol with the ``websockets`` library.

1. One annotator, image after image: ``open``, then the first click at once (the worker is
   still computing the image's features), then simulated corrective clicks (RITM's clicker on
   the mask the socket returned). Time = click sent → its mask received, in the client.
   Overhead = that time − the model time the worker reports. Peer, same run: the model alone
   in this process on the same images and clicks.
2. N annotators at once, each clicking once a second on its own object. A click counts as
   answered when a mask for it, or for a newer prompt of the same object, arrives (the worker
   skips a computation a newer prompt superseded). Lost prompts = clicks sent − prompts in
   Postgres.
3. A second worker; the session's worker is killed with SIGKILL right after a click; the next
   click must be answered by the other worker, and every prompt sent before is in the log.
4. A click sent while that worker prefetches the task's next image (:mod:`.ws_prefetch`).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .harness import BenchEnv


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _setup(samples, annotators: int):
    """Users, a project, one dataset of the bench images, one task per annotator."""
    from django.test import Client

    from annotation.datasets.services import Upload, dataset_create, dataset_upload
    from annotation.labeling.services import task_create
    from annotation.projects.models import Membership, Role
    from annotation.projects.services import label_create, project_create
    from annotation.users.models import User

    owner = User.objects.create_user(username="bench-owner", password="bench-pass-1")
    project = project_create(name="ws bench", owner=owner)
    label_create(project=project, name="object", color="#e6194b")
    dataset = dataset_create(project=project, name="bench images")
    report = dataset_upload(
        dataset=dataset, uploads=[Upload(f"{s.name}.png", io.BytesIO(s.png)) for s in samples]
    )
    image_ids = [f.image_id for f in report.files]
    assert all(image_ids), report.as_dict()
    users = []
    for i in range(annotators):
        user = User.objects.create_user(username=f"bench-annotator-{i}", password="bench-pass-1")
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        task = task_create(
            project=project,
            dataset=dataset,
            name=f"task {i}",
            assignee_id=user.id,
            image_ids=image_ids,
        )
        client = Client()
        assert client.login(username=user.username, password="bench-pass-1")
        users.append((f"sessionid={client.cookies['sessionid'].value}", task.id))
    return image_ids, users


def _start_worker(env: BenchEnv, name: str) -> subprocess.Popen:
    log = open(env.scratch / f"worker-{name}.log", "ab")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config.celery_app",
            "worker",
            "-Q",
            "interactive",
            "-P",
            "solo",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "debug" if os.environ.get("MASKWRIGHT_BENCH_LOGS") else "info",
        ],
        env=env.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_alive(name: str, proc: subprocess.Popen, timeout: float = 120) -> str:
    from annotation.segmentation.interactive.dispatch import alive_workers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker {name} exited with {proc.returncode}")
        for host in alive_workers():
            if host.startswith(f"{name}@"):
                return host
        time.sleep(0.2)
    raise RuntimeError(f"worker {name} did not report alive in {timeout} s")


@dataclass
class Client:
    """One annotation socket: sends with increasing seq, routes replies to waiters."""

    ws: Any
    seq: int = 0
    replies: dict[int, asyncio.Future] = field(default_factory=dict)
    # object → (seq, t, msg)
    masks: dict[int, list[tuple[int, float, dict]]] = field(default_factory=dict)
    mask_event: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[dict] = field(default_factory=list)

    async def send(self, message: dict[str, Any]) -> int:
        self.seq += 1
        await self.ws.send(json.dumps({**message, "seq": self.seq}))
        return self.seq

    async def request(self, message: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        self.seq += 1
        self.replies[self.seq] = future
        await self.ws.send(json.dumps({**message, "seq": self.seq}))
        return await asyncio.wait_for(future, timeout)

    async def listen(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            now = time.perf_counter()
            if message["type"] == "mask":
                self.masks.setdefault(message["object_id"], []).append(
                    (message["seq"], now, message)
                )
                self.mask_event.set()
            elif message["type"] == "error":
                self.errors.append(message)
                waiter = self.replies.pop(message.get("seq"), None)
                if waiter and not waiter.done():
                    waiter.set_exception(RuntimeError(message["message"]))
            else:
                waiter = self.replies.pop(message.get("seq"), None)
                if waiter and not waiter.done():
                    waiter.set_result(message)

    async def mask_at_least(
        self, object_id: int, seq: int, timeout: float = 60
    ) -> tuple[float, dict]:
        """(receive time, message) of the first mask of ``object_id`` answering ``seq`` or later."""
        deadline = time.perf_counter() + timeout
        while True:
            for s, t, m in self.masks.get(object_id, []):
                if s >= seq:
                    return t, m
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no mask for object {object_id} seq ≥ {seq} in {timeout} s")
            self.mask_event.clear()
            try:
                await asyncio.wait_for(self.mask_event.wait(), remaining)
            except TimeoutError:
                pass


async def _connect(ws_url: str, origin: str, cookie: str) -> tuple[Client, asyncio.Task]:
    import websockets

    ws = await websockets.connect(
        f"{ws_url}/ws/annotate/",
        additional_headers={"Cookie": cookie, "Origin": origin},
        max_size=2**24,
    )
    client = Client(ws)
    return client, asyncio.create_task(client.listen())


def _decode(message: dict, shape: tuple[int, int]) -> np.ndarray:
    from annotation.common import rle

    mask = np.zeros(shape, dtype=bool)
    if message["box"]:
        x, y, w, h = message["box"]
        mask[y : y + h, x : x + w] = rle.decode(message["rle"])
    return mask


async def _single(
    url: str, cookie: str, task_id: int, image_ids: list[int], samples, clicks: int
) -> dict[str, list]:
    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    out: dict[str, list] = {
        "first": [],
        "later": [],
        "model": [],
        "overhead": [],
        "server_total": [],
        "stages": [],
    }
    try:
        for image_id, sample in zip(image_ids, samples):
            opened = await client.request(
                {"type": "open", "image_id": image_id, "task_id": task_id}
            )
            assert opened["type"] == "opened", opened
            obj = (await client.request({"type": "new_object"}))["object"]["id"]
            clicker = sample.new_clicker()
            pred = None
            for i in range(clicks):
                click = clicker.make_next_click(pred)
                if click is None:
                    break
                sent = time.perf_counter()
                seq = await client.send(
                    {
                        "type": "click",
                        "object_id": obj,
                        "x": float(click.x),
                        "y": float(click.y),
                        "positive": bool(click.positive),
                    }
                )
                got, message = await client.mask_at_least(obj, seq)
                rtt = got - sent
                (out["first"] if i == 0 else out["later"]).append(rtt)
                if i > 0:
                    out["model"].append(message["model_ms"] / 1000)
                    out["overhead"].append(rtt * 1000 - message["model_ms"])
                    out["server_total"].append(message["total_ms"] / 1000)
                    out["stages"].append(message.get("stages_ms", {}))
                pred = _decode(message, sample.gt.shape)
    finally:
        await client.ws.close()
        listener.cancel()
    return out


async def _concurrent(
    url: str, users, image_ids: list[int], samples, seconds: float
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    clients = []
    for cookie, task_id in users:
        clients.append(await _connect(url.replace("http", "ws", 1), url, cookie))
    sent: list[tuple[int, int, int, float]] = []  # (client, object, seq, time)
    objects: list[int] = []

    async def annotator(k: int) -> None:
        client, _ = clients[k]
        image_index = k % len(image_ids)
        await client.request(
            {"type": "open", "image_id": image_ids[image_index], "task_id": users[k][1]}
        )
        obj = (await client.request({"type": "new_object"}))["object"]["id"]
        objects.append(obj)
        gt = samples[image_index].gt
        inside, outside = np.argwhere(gt), np.argwhere(~gt)
        await asyncio.sleep(float(rng.uniform(0, 1)))  # annotators do not click in step
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            if n and n % 20 == 0:  # the next object, as annotators do (and under the prompt cap)
                obj = (await client.request({"type": "new_object"}))["object"]["id"]
                objects.append(obj)
            y, x = (inside if n % 3 != 2 else outside)[
                rng.integers(len(inside if n % 3 != 2 else outside))
            ]
            seq = await client.send(
                {
                    "type": "click",
                    "object_id": obj,
                    "x": float(x),
                    "y": float(y),
                    "positive": n % 3 != 2,
                }
            )
            sent.append((k, obj, seq, time.perf_counter()))
            n += 1
            await asyncio.sleep(1.0)

    await asyncio.gather(*(annotator(k) for k in range(len(clients))))
    latencies, unanswered = [], 0
    for k, obj, seq, t in sent:
        try:
            got, _ = await clients[k][0].mask_at_least(obj, seq, timeout=120)
            latencies.append(got - t)
        except TimeoutError:
            unanswered += 1
    errors = sum(len(c.errors) for c, _ in clients)
    for client, listener in clients:
        await client.ws.close()
        listener.cancel()
    return {
        "sent": sent,
        "objects": objects,
        "latencies": latencies,
        "unanswered": unanswered,
        "errors": errors,
    }


async def _kill(
    env: BenchEnv,
    url: str,
    cookie: str,
    task_id: int,
    image_id: int,
    sample,
    victim: subprocess.Popen,
    victim_host: str,
) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    from annotation.segmentation.interactive import dispatch

    await sync_to_async(dispatch.claim)(image_id, "m2n2", "effnet-lite0", victim_host)
    client, listener = await _connect(url.replace("http", "ws", 1), url, cookie)
    try:
        await client.request({"type": "open", "image_id": image_id, "task_id": task_id})
        obj = (await client.request({"type": "new_object"}))["object"]["id"]
        ys, xs = np.nonzero(sample.gt)
        seq = await client.send(
            {
                "type": "click",
                "object_id": obj,
                "x": float(xs.mean()),
                "y": float(ys.mean()),
                "positive": True,
            }
        )
        _, first = await client.mask_at_least(obj, seq)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        sent = time.perf_counter()
        ys, xs = np.nonzero(~sample.gt)
        seq = await client.send(
            {
                "type": "click",
                "object_id": obj,
                "x": float(xs[0]),
                "y": float(ys[0]),
                "positive": False,
            }
        )
        got, second = await client.mask_at_least(obj, seq, timeout=60)
        return {
            "first_worker": first["worker"],
            "second_worker": second["worker"],
            "after_kill_s": got - sent,
            "object": obj,
            "sent": 2,
        }
    finally:
        await client.ws.close()
        listener.cancel()


def _during_prefetch(url: str, cookie: str, n_images: int, env: BenchEnv):
    """Part 4 (:mod:`benchmarks.ws_prefetch`), on the worker that survived part 3."""
    from annotation.projects.models import Project
    from annotation.users.models import User
    from benchmarks import ws_prefetch

    user = User.objects.get(username="bench-annotator-0")
    project = Project.objects.get(name="ws bench")
    log = env.scratch / "worker-bench-b.log"
    return ws_prefetch.run(url, cookie, user.id, project.id, n_images, log)


def bench_ws(env: BenchEnv, *, quick: bool = False) -> dict[str, Any]:
    from annotation.cli.services import stop_processes
    from annotation.labeling.models import Prompt
    from benchmarks.data import images, model_alone

    n_images, clicks = (3, 5) if quick else (8, 8)
    annotators, seconds = (20, 15) if quick else (20, 60)
    samples, source = images(n_images)
    image_ids, users = _setup(samples, annotators + 1)
    print(
        f"images: {len(samples)} from {source}; {annotators} concurrent annotators for {seconds} "
        f"s; {os.cpu_count()} CPU cores; method m2n2 / effnet-lite0 on CPU",
        flush=True,
    )
    worker = _start_worker(env, "bench-a")
    procs = [worker]
    try:
        with env.server() as (url, _web):
            host_a = _wait_alive("bench-a", worker)
            single = asyncio.run(_single(url, users[0][0], users[0][1], image_ids, samples, clicks))
            conc = asyncio.run(_concurrent(url, users[1:], image_ids, samples, seconds))
            logged = Prompt.objects.filter(instance_id__in=conc["objects"]).count()
            lost = len(conc["sent"]) - logged
            worker_b = _start_worker(env, "bench-b")
            procs.append(worker_b)
            _wait_alive("bench-b", worker_b)
            kill = asyncio.run(
                _kill(env, url, users[0][0], users[0][1], image_ids[0], samples[0], worker, host_a)
            )
            kill_lost = kill["sent"] - Prompt.objects.filter(instance_id=kill["object"]).count()
            prefetch_line, prefetch_figures = _during_prefetch(url, users[0][0], n_images, env)
    finally:
        stop_processes(procs, timeout=15)
        keep = os.environ.get("MASKWRIGHT_BENCH_LOGS")
        if keep:  # the scratch folder goes away with the bench; keep its logs for a look
            import shutil

            for log in env.scratch.glob("*.log"):
                shutil.copy(log, Path(keep))
    peer = model_alone(samples, clicks)

    first, later, overhead, model = (
        single["first"],
        single["later"],
        single["overhead"],
        single["model"],
    )
    print(f"single annotator, {len(first)} images × up to {clicks} clicks (client round trip):")
    print(
        f"  first click after open   p50 {statistics.median(first):.3f} s   max {max(first):.3f} s"
        "      model alone: set_image + first click p50 "
        f"{peer['set_image_p50_s'] + peer['first_click_p50_s']:.3f} s"
    )
    print(
        f"  later clicks             p50 {statistics.median(later):.3f} s"
        f"   p95 {_pct(later, 95):.3f} s"
        f"      model alone p50 {peer['click_p50_s']:.3f} s   p95 {peer['click_p95_s']:.3f} s"
    )
    print(
        f"  model time (worker)      p50 {statistics.median(model):.3f} s"
        f"   p95 {_pct(model, 95):.3f} s"
    )
    print(
        f"  server total (recv→send) p50 {statistics.median(single['server_total']):.3f} s"
        f"   p95 {_pct(single['server_total'], 95):.3f} s"
    )
    print(
        f"  overhead beyond model    p50 {statistics.median(overhead):.1f} ms"
        f"  p95 {_pct(overhead, 95):.1f} ms"
    )
    stages = single["stages"]
    if stages:
        parts = "  ".join(
            f"{k} {statistics.median([s[k] for s in stages]):.1f}"
            for k in stages[0]
            if k != "model"
        )
        print(f"  server stages p50 (ms):  {parts}")
    lat = conc["latencies"]
    print(
        f"{annotators} annotators × 1 click/s for {seconds} s on one worker: {len(conc['sent'])} "
        f"clicks sent, {logged} prompts in Postgres (lost {lost}), {conc['errors']} errors, "
        f"{conc['unanswered']} unanswered; click → mask p50 {statistics.median(lat):.2f} s  p95 "
        f"{_pct(lat, 95):.2f} s"
    )
    print(
        f"worker killed after a click: the next click answered by {kill['second_worker']} (was "
        f"{kill['first_worker']}) in {kill['after_kill_s']:.2f} s; prompts lost {kill_lost}"
    )
    print(prefetch_line)
    return {
        **prefetch_figures,
        "first_click_s": round(statistics.median(first), 4),
        "first_click_max_s": round(max(first), 4),
        "click_p50_s": round(statistics.median(later), 4),
        "click_p95_s": round(_pct(later, 95), 4),
        "model_p50_s": round(statistics.median(model), 4),
        "overhead_p50_ms": round(statistics.median(overhead), 2),
        "concurrent_p95_s": round(_pct(lat, 95), 3),
        "concurrent_p50_s": round(statistics.median(lat), 3),
        "errors": conc["errors"] + conc["unanswered"],
        "lost_prompts": lost + kill_lost,
        "kill_next_click_s": round(kill["after_kill_s"], 3),
        "kill_other_worker": kill["second_worker"] != kill["first_worker"],
        "peer_model_click_p50_s": round(peer["click_p50_s"], 4),
        "peer_model_first_click_s": round(peer["set_image_p50_s"] + peer["first_click_p50_s"], 4),
    }
