"""A method that needs a published checkpoint (the SAM families) is offered only where an alive
worker has it on its disk: the worker looks for every variant's folder and publishes what it
found beside its alive key; the menu offers those variants and lists the other methods as
unavailable with the model id and the folder to use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from annotation.segmentation.interactive import checkpoints, dispatch, keys, methods, worker

HOST = "ckpt-test@nowhere"  # a worker name no Celery worker listens as
SAM2_WHY = (
    "no worker has the weights of facebook/sam2.1-hiera-tiny or of any other variant: put the "
    "checkpoint folder at $MASKWRIGHT_WEIGHTS_DIR/facebook--sam2.1-hiera-tiny on a worker"
)
SAM3_WHY = (
    "no worker has the weights of facebook/sam3: put the checkpoint folder at "
    "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3 on a worker"
)


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    """``$MASKWRIGHT_WEIGHTS_DIR`` holding one tiny SAM checkpoint as ``facebook--sam-vit-base``;
    the Hugging Face cache an empty folder (whatever this machine's cache holds)."""
    from inference.methods.sam.tiny import save_tiny

    root = tmp_path / "weights"
    save_tiny("sam", root / "facebook--sam-vit-base")
    monkeypatch.setenv("MASKWRIGHT_WEIGHTS_DIR", str(root))
    monkeypatch.setattr(
        checkpoints, "discover", _with_cache(checkpoints.discover, tmp_path / "hf-cache")
    )
    return root


def _with_cache(discover, cache: Path):
    cache.mkdir(exist_ok=True)
    return lambda device, **kw: discover(device, **{"hf_cache_dir": cache, **kw})


@pytest.fixture
def cleanup_redis():
    yield
    keys.redis_client().delete(keys.weights(HOST), keys.alive(HOST))


def _on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_discovery_finds_the_checkpoint_with_its_size_and_names_the_missing_folders(weights):
    from inference.methods.sam.variants import load_variant
    from inference.weights import WeightsNotFound

    report = checkpoints.discover("cuda:0")
    folder = weights / "facebook--sam-vit-base"
    assert report["device"] == "cuda:0" and report["weights_dir"] == str(weights)
    assert report["found"] == {
        "sam/vit-b": {
            "method": "sam",
            "variant": "vit-b",
            "model_id": "facebook/sam-vit-base",
            "path": str(folder),
            "bytes": _on_disk(folder),
            "device": "cuda:0",
        }
    }
    assert report["found"]["sam/vit-b"]["bytes"] > 10_000  # config, processor and weights
    assert set(report["missing"]) == {
        "sam/vit-l",
        "sam/vit-h",
        "sam2/hiera-tiny",
        "sam2/hiera-small",
        "sam2/hiera-base-plus",
        "sam2/hiera-large",
        "sam3/sam3",
    }
    assert report["missing"]["sam2/hiera-large"] == {
        "method": "sam2",
        "variant": "hiera-large",
        "model_id": "facebook/sam2.1-hiera-large",
        "folder": f"{weights}/facebook--sam2.1-hiera-large",
    }
    # what it found is what the predictor loads; what it misses fails naming the same folder
    assert load_variant("sam", "vit-b").name == "vit-b"
    with pytest.raises(WeightsNotFound, match="facebook--sam-vit-large"):
        load_variant("sam", "vit-l")


def test_without_a_weights_folder_the_missing_ones_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("MASKWRIGHT_WEIGHTS_DIR", raising=False)
    report = checkpoints.discover("cpu", hf_cache_dir=tmp_path)
    assert report["found"] == {} and report["weights_dir"] is None
    assert report["missing"]["sam3/sam3"]["folder"] == "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3"


def test_a_linked_file_counts_once(tmp_path):
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "abc").write_bytes(b"x" * 1000)
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "model.safetensors").symlink_to(tmp_path / "blobs" / "abc")
    (tmp_path / "snap" / "broken").symlink_to(tmp_path / "nowhere")
    assert checkpoints.folder_size(tmp_path / "snap") == 1000
    assert checkpoints.folder_size(tmp_path) == 1000


def test_the_heartbeat_publishes_the_report_with_the_alive_key(
    weights, settings, monkeypatch, cleanup_redis
):
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "INTERACTIVE_DEVICE": "cpu"}
    monkeypatch.setattr(worker, "_state", worker._WorkerState())
    client = keys.redis_client()
    # the heartbeat writes the alive key too, for the few seconds this test reads
    worker.start_heartbeat(HOST)
    try:
        deadline = time.monotonic() + 10
        while not client.exists(keys.weights(HOST)):
            assert time.monotonic() < deadline, "no checkpoint report in Redis"
            time.sleep(0.05)
        assert client.exists(keys.alive(HOST))
        assert 0 < client.ttl(keys.weights(HOST)) <= keys.ALIVE_TTL_S
        published = json.loads(client.get(keys.weights(HOST)))
        assert list(published["found"]) == ["sam/vit-b"]
        assert published["found"]["sam/vit-b"]["device"] == "cpu"
        assert dispatch.checkpoint_reports()[HOST] == published  # alive, so read
    finally:
        worker.stop_heartbeat()
    deadline = time.monotonic() + 10
    while client.exists(keys.weights(HOST)) or client.exists(keys.alive(HOST)):
        assert time.monotonic() < deadline, "the heartbeat left its keys behind"
        time.sleep(0.05)


def test_only_alive_workers_reports_are_read(weights, monkeypatch, cleanup_redis):
    report = checkpoints.discover("cpu")
    checkpoints.publish(HOST, report)
    assert 0 < keys.redis_client().ttl(keys.weights(HOST)) <= keys.ALIVE_TTL_S
    monkeypatch.setattr(dispatch, "alive_workers", list)
    assert dispatch.checkpoint_reports() == {}  # its report may outlive it by a second or two
    monkeypatch.setattr(dispatch, "alive_workers", lambda: [HOST, "old-release@host"])
    assert dispatch.checkpoint_reports() == {HOST: report, "old-release@host": None}


def test_the_menu_offers_only_the_variants_some_worker_has(weights, settings):
    # listing more SAM variants in INTERACTIVE_BACKBONES offers none without their weights
    settings.MASKWRIGHT = {
        **settings.MASKWRIGHT,
        "INTERACTIVE_METHODS": [],
        "INTERACTIVE_BACKBONES": ["effnet-lite0", "vit-l", "hiera-large", "sam3"],
    }
    reports = {"gpu-1": checkpoints.discover("cuda:0"), "gpu-2": None}
    menu = methods.offered(reports=reports)
    by_name = {m["name"]: m for m in menu}
    assert by_name["sam"]["backbones"] == ["vit-b"]
    assert by_name["sam"]["prompts"] == ["click", "box", "mask"]  # "mask": refines a prior
    assert "sam2" not in by_name and "sam3" not in by_name
    assert by_name["m2n2"]["backbones"] == ["effnet-lite0"]  # the others as before
    assert methods.unavailable(menu, reports) == [
        {"name": "sam2", "label": "SAM 2.1 (clicks, box)", "why": SAM2_WHY},
        {"name": "sam3", "label": "SAM 3 (clicks, box)", "why": SAM3_WHY},
    ]


def test_the_menu_reads_the_alive_workers_reports(weights, settings, monkeypatch, cleanup_redis):
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "INTERACTIVE_METHODS": ["sam", "sam2", "m2n2"]}
    checkpoints.publish(HOST, checkpoints.discover("cpu"))
    monkeypatch.setattr(dispatch, "alive_workers", lambda: [HOST])
    menu = methods.offered()
    assert [(m["name"], m["backbones"]) for m in menu] == [
        ("sam", ["vit-b"]),
        ("m2n2", ["effnet-lite0"]),
    ]
    assert [m["name"] for m in methods.unavailable(menu)] == ["sam2"]  # sam3 not wanted here

    # no alive worker reports it: nothing of SAM is offered, and the reason says so
    monkeypatch.setattr(dispatch, "alive_workers", list)
    menu = methods.offered()
    assert [m["name"] for m in menu] == ["m2n2"]
    gone = methods.unavailable(menu)
    assert [m["name"] for m in gone] == ["sam", "sam2"]
    assert gone[0]["why"] == (
        "no interactive worker is running; put the checkpoint folder at "
        "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam-vit-base on a worker (for facebook/sam-vit-base)"
        " and start it"
    )


def test_a_sam_click_goes_only_to_a_worker_that_has_the_checkpoint(
    weights, monkeypatch, cleanup_redis
):
    other = "no-weights@nowhere"  # alive, reports nothing found
    checkpoints.publish(HOST, checkpoints.discover("cpu"))
    monkeypatch.setattr(dispatch, "alive_workers", lambda: [HOST, other])
    monkeypatch.setattr(dispatch, "is_alive", lambda hostname: hostname in (HOST, other))
    client = keys.redis_client()
    image_id = 987654  # no other test's image
    try:
        for _ in range(10):  # never the worker without the weights, even when preferred
            client.delete(keys.holder(image_id, "sam", "vit-b"))
            assert dispatch.choose_worker(image_id, "sam", "vit-b", preferred=other) == HOST
        client.set(keys.holder(image_id, "sam", "vit-b"), other)  # a holder from before
        assert dispatch.choose_worker(image_id, "sam", "vit-b") == HOST
        # a variant no alive worker has: the shared queue decides (and fails saying why)
        assert dispatch.choose_worker(image_id, "sam", "vit-h") is None
        # any other method goes wherever the session already is
        assert dispatch.choose_worker(image_id, "m2n2", "effnet-lite0", preferred=other) == other
    finally:
        for method, backbone in (("sam", "vit-b"), ("sam", "vit-h"), ("m2n2", "effnet-lite0")):
            client.delete(keys.holder(image_id, method, backbone))


def test_overview_lists_each_worker_found_then_missing_in_catalogue_order(weights):
    overview = checkpoints.overview({"b@host": checkpoints.discover("cpu"), "a@host": None})
    assert [w["hostname"] for w in overview] == ["a@host", "b@host"]
    assert overview[0] == {
        "hostname": "a@host",
        "reported": False,
        "device": None,
        "weights_dir": None,
        "checked_at": None,
        "found": [],
        "missing": [],
    }
    b = overview[1]
    assert b["reported"] and b["device"] == "cpu"
    assert [(c["method"], c["variant"]) for c in b["found"]] == [("sam", "vit-b")]
    assert [c["variant"] for c in b["missing"]] == [
        "vit-l",
        "vit-h",
        "hiera-tiny",
        "hiera-small",
        "hiera-base-plus",
        "hiera-large",
        "sam3",
    ]


@pytest.mark.django_db(transaction=True)
async def test_the_socket_opens_with_the_unavailable_methods_and_why(weights, queued, monkeypatch):
    from asgiref.sync import sync_to_async

    from tests.annotation.labeling.test_annotate_socket import (
        _connect,
        _until,
        _world_with_square,
    )

    monkeypatch.setattr(dispatch, "checkpoint_reports", lambda: {HOST: checkpoints.discover("cpu")})
    _w, image = await sync_to_async(_world_with_square)()
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "method": "sam"})
    opened = await _until(comm, "opened")
    assert opened["type"] == "opened", opened
    assert (opened["method"], opened["backbone"]) == ("sam", "vit-b")
    assert {m["name"] for m in opened["methods"]} >= {"sam", "m2n2"}
    assert [(m["name"], m["why"]) for m in opened["unavailable"]] == [
        ("sam2", SAM2_WHY),
        ("sam3", SAM3_WHY),
    ]
    # a variant no worker has is refused like any backbone the page does not offer
    await comm.send_json_to({"type": "set_method", "seq": 2, "method": "sam", "backbone": "vit-h"})
    refused = await _until(comm, "method")
    assert refused["type"] == "error" and "no backbone 'vit-h'" in refused["message"]
    await comm.disconnect()
