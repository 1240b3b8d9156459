"""What the search page tells a person that is not an error (issue 25): on the random test checkpoint, a notice
that rankings are random (from ``/ready``'s ``test_checkpoint``); a file dropped again whose bytes are already
stored shows "already stored as <id>" in a neutral colour (the server's 200 + ``X-Duplicate-Of``), never a
failure. Screenshots in ``test-artifacts/ui/``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.service.browser import css, set_key, shot, wait
from tests.service.conftest import LiveServer
from tests.service.helpers import png_bytes


def test_notices_on_test_checkpoint_and_duplicate(
    driver: Any, live_server: LiveServer, client: httpx.Client, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live_server.url}/ui/")
    if driver.execute_script("return sessionStorage.getItem('jev4.apiKey')") != live_server.api_key:
        wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is not None)
        set_key(driver, live_server.api_key)
    wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is None)

    # the session server runs model.testing's checkpoint: /ready says so, the page shows it
    assert client.get("/ready").json()["test_checkpoint"] is True
    wait(driver, lambda d: css(d, "#test-checkpoint").is_displayed())
    assert css(driver, "#test-checkpoint").text.startswith("test checkpoint: rankings are random")

    name = f"dup-{uuid.uuid4().hex[:8]}"
    if css(driver, "#create-details").get_attribute("open") is None:
        css(driver, "#create-details summary").click()
    css(driver, "#create-form input[name=name]").send_keys(name)
    css(driver, "#create-form button[type=submit]").click()
    wait(driver, lambda d: css(d, "#collection-title").text.startswith(name))

    first = tmp_path / "scan.png"
    first.write_bytes(png_bytes(seed=25))
    css(driver, "#file-input").send_keys(str(first))
    wait(driver, lambda d: "done" in css(d, "#uploads li").get_attribute("class"), timeout=240)
    stored_id = client.get(f"/v1/collections/{name}/documents").json()["data"][0]["id"]

    again = tmp_path / "scan-again.png"  # the same bytes under another name: the stored document answers
    again.write_bytes(first.read_bytes())
    css(driver, "#file-input").send_keys(str(again))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#uploads li")) == 2)
    newest = css(driver, "#uploads li")  # prepended
    wait(driver, lambda d: "duplicate" in newest.get_attribute("class"), timeout=60)
    assert newest.find_element(By.CSS_SELECTOR, ".status").text == f"already stored as {stored_id}"
    assert "failed" not in newest.get_attribute("class")
    colour = newest.find_element(By.CSS_SELECTOR, ".status").value_of_css_property("color")
    danger = driver.execute_script("return getComputedStyle(document.body).getPropertyValue('--danger')")
    assert colour != driver.execute_script(
        "const e = document.createElement('span'); e.style.color = arguments[0]; document.body.append(e);"
        "const c = getComputedStyle(e).color; e.remove(); return c;",
        danger.strip(),
    )
    assert len(client.get(f"/v1/collections/{name}/documents").json()["data"]) == 1
    shot(driver, "10-duplicate-and-test-checkpoint")
