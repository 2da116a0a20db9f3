"""The quick start's settings: debug pages only when asked for, static files either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs under config.settings.local in a fresh interpreter (settings load once per process).
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="localhost")
css = client.get("/static/css/app.css")
print(json.dumps({
    "debug": settings.DEBUG,
    "css": css.status_code,
    "css_body": b"".join(css.streaming_content).decode()[:200] if css.status_code == 200 else "",
    "missing_status": client.get("/static/no-such-file.css").status_code,
    "missing_body": client.get("/static/no-such-file.css").content.decode(errors="replace"),
}))
"""


def _probe(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "MASKWRIGHT_DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        MASKWRIGHT_HOME=str(tmp_path),
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "platform")]),
        **extra,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_quick_start_runs_without_debug_and_still_serves_static_files(tmp_path):
    got = _probe(tmp_path)
    assert got["debug"] is False
    assert (
        got["css"] == 200 and got["css_body"] == (REPO / "frontend/css/app.css").read_text()[:200]
    )
    # Django's debug 404 page lists the URL patterns and names the settings module
    assert got["missing_status"] == 404
    assert "config.urls" not in got["missing_body"] and "DEBUG" not in got["missing_body"]


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False)])
def test_debug_only_when_asked_for(tmp_path, value, expected):
    assert _probe(tmp_path, MASKWRIGHT_DEBUG=value)["debug"] is expected
