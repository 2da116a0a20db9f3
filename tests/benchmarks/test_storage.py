"""``maskwright bench storage``: its S3 server process, the ingest floor, the figures it prints
(keys and the paired arithmetic, not timings) and, when slow tests run, its quick mode end to
end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from benchmarks import storage, storage_attach
from benchmarks.goals import check
from benchmarks.ingest import _photo_like

KEYS = {"s3_ingest_ratio", "cold_click_extra_ms", "warm_click_ratio", "attach_images_per_s"}
REPO = Path(__file__).resolve().parents[2]


def test_the_bench_s3_server_is_a_real_process_stopped_by_its_pid(tmp_path):
    with storage.moto_server(tmp_path / "moto.log") as server:
        assert psutil.pid_exists(server.pid) and server.endpoint.startswith("http://127.0.0.1:")
        jpegs = [_photo_like(0)]
        assert storage.store_alone(server, jpegs, 3, "p") > 0
        assert server.count("p") == 6  # an image and a thumbnail-sized object each
        assert storage_attach.fill_bucket(server, jpegs, 4) > 0
        listed = server.client().list_objects_v2(Bucket=storage_attach.ATTACH_BUCKET)
        bodies = [
            server.client().get_object(Bucket=storage_attach.ATTACH_BUCKET, Key=o["Key"])
            for o in listed["Contents"]
        ]
        assert len({b["Body"].read() for b in bodies}) == 4  # distinct: none is a duplicate
        env = server.env({"AWS_PROFILE": "x", "KEEP": "1"}, tmp_path / "home", "p")
        assert env["MASKWRIGHT_STORAGE"] == "s3" and env["MASKWRIGHT_S3_PREFIX"] == "p"
        assert env["MASKWRIGHT_HOME"] == str(tmp_path / "home") and "AWS_PROFILE" not in env
        pid = server.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_figures_pair_each_s3_click_with_its_local_neighbour():
    clicks = {
        "local_cold_phase": [1.0, 2.0, 1.1],  # the middle pair fell on a slow moment
        "cold": [1.05, 2.2, 1.13],
        "local_warm_phase": [1.0, 1.0, 3.0],
        "warm": [1.02, 1.1, 3.0],
    }
    figures = storage.figures({"local": 100.0, "s3": 80.0, "floor": 90.0}, clicks, None)
    assert KEYS <= set(figures)
    assert figures["s3_ingest_ratio"] == 0.8
    assert figures["cold_click_extra_ms"] == 50.0  # median of 50, 200, 30 ms
    assert figures["warm_click_ratio"] == 1.02  # median of 1.02, 1.1, 1.0
    assert figures["attach_images_per_s"] is None  # not measured: null, never a number
    json.dumps(figures)
    lines = check("storage", figures, quick=False, device="cpu")
    assert [line.split()[0] for line in lines] == ["PASS", "PASS", "PASS"]
    quick = check("storage", {**figures, "warm_click_ratio": 1.3}, quick=True, device="cpu")
    assert [line.split()[:2] for line in quick] == [
        ["PASS", "cold_click_extra_ms=50.0"],
        ["FAIL", "warm_click_ratio=1.3"],
    ]


@pytest.mark.slow
def test_the_quick_bench_prints_its_json_line_last():
    env = {**os.environ, "MASKWRIGHT_LOG_LEVEL": "WARNING"}
    maskwright = Path(sys.executable).parent / "maskwright"
    run = subprocess.run(
        [str(maskwright), "bench", "storage", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # the status is asserted with the output
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert KEYS <= set(figures)
    assert figures["s3_ingest_ratio"] > 0 and figures["click_images"] == 3
    if storage_attach.available():
        assert figures["attach_images_per_s"] > 0
    else:
        assert figures["attach_images_per_s"] is None
    assert any(line.startswith("ingest 20 images") for line in lines)
