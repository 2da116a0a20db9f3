"""What every browser test shares: Debian's Chromium driven by Playwright (never
``playwright install``), one browser per test module, a page on the live server, the test
users' password and the login form."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API keeps an event loop running in this thread; Django refuses ORM calls
# from such a thread unless told that this is fine (the usual Playwright + pytest-django fix).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import json
import re
import zipfile

from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def plugin_stack(monkeypatch, tmp_path: Path, plugin: str, method: str, name: str):
    """(base URL, worker hostname) while in the ``with``: an interactive worker that loaded the
    test plugin module ``plugin`` (stopped by pid afterwards) and uvicorn offering only its
    ``method``. The session sticks to that worker; a slow answer is never re-sent to the shared
    queue, where a worker without the plugin waits."""
    import socket
    import time
    from contextlib import contextmanager

    from annotation.cli.services import stop_processes
    from annotation.segmentation.interactive import dispatch
    from tests.conftest import start_worker, uvicorn_server

    @contextmanager
    def stack() -> Iterator[tuple[str, str]]:
        monkeypatch.setenv("MASKWRIGHT_METHOD_PLUGINS", plugin)
        monkeypatch.setenv("MASKWRIGHT_INTERACTIVE_WARMUP", "0")
        worker = f"{name}-{os.getpid()}"
        log = tmp_path / f"{name}-worker.log"
        proc = start_worker(worker, log, queues="interactive")
        hostname = f"{worker}@{socket.gethostname()}"
        try:
            deadline = time.monotonic() + 30
            while not dispatch.is_alive(hostname):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            with uvicorn_server(
                tmp_path,
                MASKWRIGHT_INTERACTIVE_METHODS=method,
                MASKWRIGHT_INTERACTIVE_RETRY_S="60",
            ) as (url, _log):
                yield url, hostname
        finally:
            stop_processes([proc])

    return stack()


def _page_on(
    browser: Browser, base_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh page on ``base_url``. A screenshot lands in tmp_path when the test failed;
    uncaught page errors and anything the Content-Security-Policy refused fail the test."""
    failed_before = request.session.testsfailed
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # what the Content-Security-Policy blocked (an inline style, a script from elsewhere)
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and "Content Security Policy" in msg.text
            and errors.append(msg.text)
        ),
    )
    yield page
    if request.session.testsfailed > failed_before:
        try:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        except PlaywrightError as exc:
            print(f"no screenshot: {exc}")
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(
    browser: Browser, live_server, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page on pytest-django's live server (plain HTTP: no websockets)."""
    yield from _page_on(browser, live_server.url, tmp_path, request)


@pytest.fixture
def stack_page(
    browser: Browser, live_stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page on the whole stack (``live_stack``: uvicorn with websockets, a Celery worker)."""
    yield from _page_on(browser, live_stack.url, tmp_path, request)


def login(page: Page, username: str) -> None:
    """Sign in through the login form with the tests' password."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/(#.*)?$"))
    expect(page.locator("header.topbar")).to_contain_text(username)


def run_mis(page: Page, dataset_id: int, *, label: str, max_per_image: int | None = None):
    """On the Jobs page: launch an MIS job with the tiny backbone and ``label``, wait until it
    succeeded with its progress bar at 100 %; returns the job's row."""
    form = page.get_by_role("form", name="Launch a job")
    form.get_by_label("Dataset").select_option(str(dataset_id))
    form.get_by_label("Job kind").select_option("mis")
    form.get_by_label("Backbone").select_option("tiny-effnet")
    if max_per_image is not None:
        form.get_by_label("Max proposals per image").fill(str(max_per_image))
    form.get_by_label("Label").select_option(label=label)
    form.get_by_role("button", name="Launch").click()
    row = page.locator("tr[data-kind=mis]")
    expect(row).to_have_attribute("data-state", "succeeded", timeout=180_000)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    return row


def export_coco(
    page: Page, tmp_path: Path, *, filter: str, dataset_id: int | None = None
) -> tuple[list[str], dict]:
    """On the Jobs page: launch a COCO (RLE) export, wait for it, download the zip; returns
    the zip's member names and its ``annotations/instances_default.json``."""
    form = page.get_by_role("form", name="Launch a job")
    if dataset_id is not None:
        form.get_by_label("Dataset").select_option(str(dataset_id))
    form.get_by_label("Job kind").select_option("export")
    form.get_by_label("Format").select_option("coco")
    form.get_by_label("Masks").select_option("rle")
    form.get_by_label("Filter").select_option(filter)
    form.get_by_role("button", name="Launch").click()
    row = page.locator("tr[data-kind=export]")
    expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    target = tmp_path / "export.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        return archive.namelist(), json.loads(archive.read("annotations/instances_default.json"))
