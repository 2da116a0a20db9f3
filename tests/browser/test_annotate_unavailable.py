"""The annotate view's method menu lists the methods no worker has the checkpoint of as
disabled options, the reason (model id and folder to use) as their title (scripted socket)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.browser.test_annotate import (
    CANVAS,
    PROMPT_METHODS,
    FakeServer,
    make_task,
    open_page,  # noqa: F401  (a fixture)
    opened,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=15_000)

WHY = (
    "no worker has the weights of facebook/sam3: put the checkpoint folder at "
    "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3 on a worker"
)


def test_unavailable_methods_are_disabled_with_why(live_server, open_page, tmp_path: Path):  # noqa: F811
    data = make_task()
    page = open_page(live_server.url, fake_socket=True)
    login(page, "anna")
    page.goto(f"/#/tasks/{data.task.id}/images/{data.image_ids[0]}")
    server = FakeServer(page)
    msg = server.expect("open")
    reply = opened(data, data.image_ids[0], msg["seq"], [], method="salt", methods=PROMPT_METHODS)
    reply["unavailable"] = [{"name": "sam3", "label": "SAM 3 (clicks, box)", "why": WHY}]
    server.reply(reply)
    expect(page.locator(f"{CANVAS}[data-state=ready]")).to_be_visible()
    menu = page.get_by_label("Method")
    option = menu.locator("option[data-unavailable=sam3]")
    expect(option).to_be_disabled()
    expect(option).to_have_attribute("title", WHY)
    expect(option).to_have_text("SAM 3 (clicks, box) (no weights)")
    # the offered ones stay choosable, and the method in use is still shown
    expect(menu).to_have_value("salt")
    assert menu.locator("option:not([disabled])").count() == len(PROMPT_METHODS)
