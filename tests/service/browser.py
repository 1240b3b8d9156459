"""Driving the search page in a real browser: Debian's ``chromium`` + ``chromium-driver`` through selenium
(no browser download), axe-core from npm (``node_modules``, installed by ``scripts/setup.sh --test``).

``browser_or_skip`` gives the reason the browser tests cannot run here; under ``CI`` a missing browser is a
failure instead of a skip (CI must run them). Screenshots go to ``test-artifacts/ui/`` (gitignored; override
with ``JEV4_UI_ARTIFACTS``), and so does what the page showed when a ``wait`` ran out (``failure-*``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("JEV4_UI_ARTIFACTS", ROOT / "test-artifacts" / "ui"))


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (apt-get install chromium chromium-driver; scripts/setup.sh --test does)"
    if not AXE.is_file():
        return f"axe-core is not installed at {AXE} (npm ci; bash scripts/setup.sh --test does)"
    return None


def browser_or_skip() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


def chrome() -> Any:
    """A headless Chromium (the system's) with its matching system driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,1000",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(60)
    return driver


def run_axe(driver: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the current page (all rules of its default set)."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.map(n => n.target.join(' '))})))).catch(e => done({error: String(e)}));"
    )
    if isinstance(result, dict):
        raise AssertionError(f"axe-core failed: {result}")
    return list(result)


def wait(driver: Any, condition: Any, timeout: float = 60) -> Any:
    """``condition(driver)`` once truthy; on a timeout, what the page showed is saved (``failure_dump``).

    An element found and then replaced before it is read (the page re-renders its lists of collections,
    documents and results after each change) is looked for again, as one not there yet is."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(condition)
    except TimeoutException as exc:
        raise AssertionError(f"waited {timeout} s in vain; {failure_dump(driver)}") from exc


def failure_dump(driver: Any) -> str:
    """A screenshot, the browser console, the page's HTML and its finished requests at a failure, saved under
    ARTIFACTS; where."""
    import json
    import time

    stem = ARTIFACTS / f"failure-{time.strftime('%H%M%S')}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(f"{stem}.png")
    Path(f"{stem}.console.json").write_text(json.dumps(driver.get_log("browser"), indent=1), encoding="utf-8")
    Path(f"{stem}.html").write_text(driver.page_source, encoding="utf-8")
    requests = driver.execute_script(  # the page's finished requests: which ones ran, when, how long
        "return performance.getEntriesByType('resource').map(e => [e.name, Math.round(e.startTime), "
        "Math.round(e.duration), e.responseStatus ?? null])"
    )
    Path(f"{stem}.requests.json").write_text(json.dumps(requests, indent=1), encoding="utf-8")
    return f"screenshot, console, HTML and requests at {stem}.*"


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def shot(driver: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def set_key(driver: Any, key: str) -> None:
    box = css(driver, "#key-input")
    box.clear()
    box.send_keys(key)
    css(driver, "#key-form button[type=submit]").click()


def server_has_text_collections(client: httpx.Client) -> bool:
    """Whether this server's API has text/code collections (issue 16): its create body names ``task``."""
    schemas = client.get("/docs/openapi.json").json()["components"]["schemas"]
    create = next(v for k, v in schemas.items() if k.endswith("CreateCollectionRequest"))
    return "task" in create["properties"]
