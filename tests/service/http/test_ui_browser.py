"""The search page (``/ui/``) in a real browser against the live server (API keys required there).

One scripted session, a screenshot per step in ``test-artifacts/ui/``: a wrong key shows the API's error; with
the right key, create a collection, upload the sample PDF and see its progress bar reach the end; upload an
image whose file name and metadata are HTML (shown as text, never run); the collection's size on disk is the
API's ``disk_bytes``; a PDF uploaded with pages "1,3" shows those two pages and the hit view steps 1 -> 3;
search (no mode sent unless chosen, ``highlight`` always); open the first hit and check that the heatmap's
hottest cell (read back from the canvas) is the argmax of the map the API returns for that page; click a token
and check the same for its map; search in text mode and check the matched-word boxes drawn over the page
against the API's boxes (also on the next page, which is not a hit); axe-core finds no serious or critical
violation. The time from the API's answer to 20 painted results is printed (not asserted).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.service.browser import ARTIFACTS, ROOT, css, run_axe, server_has_text_collections, set_key, shot, wait
from tests.service.conftest import LiveServer

XSS = "<img src=x onerror=alert(1)>"
QUERY = "Which region had the highest revenue?"
# A document card's thumbnails, all shown. They load lazily (an IntersectionObserver, dom.js lazyImage): only once
# the card is within 200 px of the viewport, so a card below the fold must be scrolled to first. Whether a card
# starts out that near depends on how far the other cards' thumbnails have grown (decoded or not) when it appears.
THUMBS_LOADED = (
    "const imgs = arguments[0].querySelectorAll('.thumbs img');"
    "return imgs.length > 0 && [...imgs].every(i => i.complete && i.naturalWidth > 0)"
)
PAGE_LOADED = "const i = document.querySelector('#hit-image'); return i.complete && i.naturalWidth > 0"
# Records the JSON bodies the page POSTs to the search route (the page's own fetch, wrapped in place).
RECORD_SEARCHES = """
window.__searches = [];
const original = window.fetch;
window.fetch = (url, init) => {
  if (String(url).endsWith('/search') && init && typeof init.body === 'string') {
    window.__searches.push(JSON.parse(init.body));
  }
  return original(url, init);
};
"""
# The drawn word boxes in pixels of the page image: CSS box relative to the image, scaled by natural/shown size.
DRAWN_BOXES = """
const img = document.querySelector('#hit-image');
const r = img.getBoundingClientRect();
const sx = img.naturalWidth / r.width, sy = img.naturalHeight / r.height;
return [...document.querySelectorAll('#hit-boxes .word-box')].map(b => {
  const q = b.getBoundingClientRect();
  return {word: b.dataset.word, x0: (q.left - r.left) * sx, y0: (q.top - r.top) * sy,
          x1: (q.right - r.left) * sx, y1: (q.bottom - r.top) * sy};
});
"""


def canvas_hottest(driver: Any) -> tuple[set[tuple[int, int]], int]:
    """The (row, col) cells of the heatmap at its highest alpha (one canvas pixel per grid cell), and that alpha:
    at most two, as two map values closer than an alpha step paint the same (either is the map's argmax)."""
    rows, cols, alphas = driver.execute_script(
        "const c = document.querySelector('#hit-heatmap');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const a = []; for (let i = 3; i < d.length; i += 4) a.push(d[i]);"
        "return [c.height, c.width, a];"
    )
    grid = np.array(alphas, dtype=np.int64).reshape(rows, cols)
    hottest = {(int(r), int(c)) for r, c in zip(*np.nonzero(grid == grid.max()), strict=True)}
    assert len(hottest) <= 2, "the hottest cell is not distinct on the canvas"
    return hottest, int(grid.max())


def expected_argmax(grid: np.ndarray) -> tuple[int, int]:
    r, c = np.unravel_index(int(grid.argmax()), grid.shape)
    return int(r), int(c)


def report_copy(i: int) -> bytes:
    """The sample report with a line naming copy ``i`` (distinct bytes: no duplicate-content refusal)."""
    import pymupdf

    with pymupdf.open(ROOT / "samples" / "report.pdf") as doc:
        doc[0].insert_text((20, 20), f"copy {i}", fontsize=8)
        data: bytes = doc.tobytes()
    return data


def format_bytes(n: int | None) -> str:
    """The page's formatBytes (dom.js), written out: 1024-based units, one decimal above bytes; None -> —."""
    if n is None:
        return "—"
    value, units = float(n), ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    return f"{value:.{1 if i else 0}f} {units[i]}"


def assert_boxes_match(drawn: list[dict[str, Any]], api: list[dict[str, Any]]) -> None:
    """The drawn boxes are the API's, in order, within 1.5 px of the page image on every edge."""
    assert len(drawn) == len(api) > 0
    for got, want in zip(drawn, api, strict=True):
        assert got["word"] == want["word"]
        for edge in ("x0", "y0", "x1", "y1"):
            assert abs(got[edge] - want[edge]) <= 1.5, (edge, got, want)


def test_search_page_session(driver: Any, live_server: LiveServer, client: httpx.Client, tmp_path: Path) -> None:
    """One browser session whose numbered steps build on each other (key, collection, uploads, search, hit view,
    accessibility); each step is a function below, in order."""
    _keys(driver, live_server)
    name = _create_collection(driver, client)
    _upload_report(driver)
    _hostile_names_and_disk_size(driver, client, tmp_path, name)
    _page_selection(driver, client, tmp_path, name)
    hits, api = _search_20(driver, client, name)
    _heatmaps(driver, client, name, hits, api)
    _text_mode_boxes(driver, client, name)
    _filter_warning(driver)
    _accessibility_and_console(driver)


def _keys(driver: Any, live_server: LiveServer) -> None:
    """Step 1."""
    # 1. keys: the page asks for one; a wrong key shows the API's own message
    driver.get(f"{live_server.url}/ui/")
    wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is not None)
    driver.execute_script(RECORD_SEARCHES)
    wrong = httpx.get(f"{live_server.url}/v1/collections", headers={"Authorization": "Bearer wrong-key"}).json()
    set_key(driver, "wrong-key")
    wait(driver, lambda d: css(d, "#key-error").text == wrong["error"]["message"])
    assert css(driver, "#key-dialog").get_attribute("open") is not None
    shot(driver, "01-invalid-key")
    set_key(driver, live_server.api_key)
    wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is None)


def _create_collection(driver: Any, client: httpx.Client) -> str:
    """Step 2; the new collection's name."""
    from selenium.webdriver.support.ui import Select

    # 2. create a collection
    name = f"ui-{uuid.uuid4().hex[:8]}"
    css(driver, "#create-details summary").click()
    css(driver, "#create-form input[name=name]").send_keys(name)
    Select(css(driver, "#create-form select[name=dimensions]")).select_by_index(1)
    css(driver, "#create-form button[type=submit]").click()
    wait(driver, lambda d: css(d, "#collection-title").text.startswith(name))
    assert client.get(f"/v1/collections/{name}").status_code == 200
    # task / content kind are offered exactly when this server has text/code collections (issue 16)
    has_text = server_has_text_collections(client)
    wait(driver, lambda d: css(d, "#create-kind").is_displayed() == has_text, timeout=10)
    assert css(driver, "#upload-pages-label").is_displayed()
    shot(driver, "02-collection-created")
    return name


def _upload_report(driver: Any) -> None:
    """Step 3."""
    from selenium.webdriver.common.by import By

    # 3. upload the sample PDF: its bar reaches the end (pages_done == pages_total)
    css(driver, "#file-input").send_keys(str(ROOT / "samples" / "report.pdf"))
    wait(driver, lambda d: "done" in css(d, "#uploads li").get_attribute("class"), timeout=240)
    bar = css(driver, "#uploads li progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "3"
    assert "3 / 3 pages" in css(driver, "#uploads li .status").text
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#documents .document")) == 1)
    wait(driver, lambda d: d.execute_script(THUMBS_LOADED, css(d, "#documents .document")))  # the top card
    shot(driver, "03-pdf-uploaded")


def _hostile_names_and_disk_size(driver: Any, client: httpx.Client, tmp_path: Path, name: str) -> None:
    """Steps 4 and 4b."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    # 4. a hostile file name and metadata are text, never markup
    hostile = tmp_path / f"{XSS}.png"
    shutil.copyfile(ROOT / "samples" / "dashboard.png", hostile)
    css(driver, "#upload-metadata").send_keys(json.dumps({"title": XSS}))
    css(driver, "#file-input").send_keys(str(hostile))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#uploads li.done")) == 2, timeout=240)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#documents .document")) == 2)
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#uploads .file-name")]
    assert f"{XSS}.png" in names
    assert XSS in [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#documents .meta dd")]
    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x']") == []
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    css(driver, "#upload-metadata").clear()
    hostile_card = next(e for e in driver.find_elements(By.CSS_SELECTOR, "#documents .document") if XSS in e.text)
    driver.execute_script("arguments[0].scrollIntoView()", hostile_card)
    shot(driver, "04-hostile-names-as-text")
    driver.execute_script("window.scrollTo(0, 0)")

    # 4b. size on disk: the collection object's disk_bytes, formatted (the list reloads after uploads)
    disk = client.get(f"/v1/collections/{name}").json()["disk_bytes"]
    assert isinstance(disk, int)
    assert disk > 0
    facts = f"#collection-list button[data-collection='{name}'] .facts"
    wait(driver, lambda d: css(d, facts).text.endswith(f"· {format_bytes(disk)} on disk"), timeout=10)


def _page_selection(driver: Any, client: httpx.Client, tmp_path: Path, name: str) -> None:
    """Step 4c."""
    from selenium.webdriver.common.by import By

    # 4c. a page selection: pages 1 and 3 of the report are that document's pages (thumbnails and navigation)
    selection = tmp_path / "selection.pdf"
    shutil.copyfile(ROOT / "samples" / "report.pdf", selection)
    css(driver, "#upload-pages").send_keys("1,3")
    css(driver, "#file-input").send_keys(str(selection))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#uploads li.done")) == 3, timeout=240)
    css(driver, "#upload-pages").clear()
    assert client.get(f"/v1/collections/{name}/documents/selection.pdf").json()["page_numbers"] == [1, 3]
    card = "#documents .document[data-document-id='selection.pdf']"
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .thumbs[data-pages='1,3']"))
    labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, f"{card} .thumb span")]
    assert labels == ["p. 1", "p. 3"]
    driver.execute_script("arguments[0].scrollIntoView()", css(driver, card))  # the third card: maybe below the fold
    wait(driver, lambda d: d.execute_script(THUMBS_LOADED, css(d, card)))
    assert driver.find_elements(By.CSS_SELECTOR, f"{card} .img-missing") == []
    shot(driver, "04c-page-selection")
    css(driver, f"{card} .thumb").click()
    wait(driver, lambda d: css(d, "#hit-stage").get_attribute("data-pages") == "1,3")
    assert css(driver, "#hit-title").text.startswith("selection.pdf · page 1")
    assert css(driver, "#hit-prev").get_attribute("disabled") is not None
    css(driver, "#hit-next").click()
    wait(driver, lambda d: css(d, "#hit-title").text.startswith("selection.pdf · page 3"))
    wait(driver, lambda d: css(d, "#hit-next").get_attribute("disabled") is not None)
    assert css(driver, "#hit-prev").get_attribute("disabled") is None
    wait(driver, lambda d: d.execute_script(PAGE_LOADED))
    css(driver, "#hit-close").click()
    driver.execute_script("window.scrollTo(0, 0)")


def _search_20(driver: Any, client: httpx.Client, name: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Step 5; the hit cards and the API's results."""
    from selenium.webdriver.common.by import By

    # 5. search: 20 results (six more copies of the report added by the API: 22 pages in all)
    for i in range(6):
        files = {"file": (f"copy-{i}.pdf", report_copy(i), "application/pdf")}
        added = client.post(f"/v1/collections/{name}/documents", files=files, data={"document_id": f"copy-{i}"})
        assert added.status_code == 201, added.text
    box = css(driver, "#query")
    box.send_keys(QUERY)
    top_k = css(driver, "#search-form input[name=top_k]")
    top_k.clear()
    top_k.send_keys("20")
    css(driver, "#search-form button[type=submit]").click()
    wait(driver, lambda d: css(d, "#results").get_attribute("data-paint-ms") is not None)
    hits = driver.find_elements(By.CSS_SELECTOR, "#results .hit")
    sent = driver.execute_script("return window.__searches")
    assert sent == [{"query": QUERY, "top_k": 20, "highlight": True}]  # no mode: the server's default applies
    api = client.post(f"/v1/collections/{name}/search", json=sent[0]).json()["results"]
    assert len(hits) == len(api) == 20
    assert [h.find_element(By.CSS_SELECTOR, ".hit-doc").text for h in hits] == [r["document_id"] for r in api]
    paint = css(driver, "#results").get_attribute("data-paint-ms")
    (ARTIFACTS / "timings.txt").write_text(f"20 results painted {paint} ms after the API's answer\n")
    print(f"\n20 results painted {paint} ms after the API's answer")
    shot(driver, "05-search-results")
    return hits, api


def _heatmaps(driver: Any, client: httpx.Client, name: str, hits: list[Any], api: list[dict[str, Any]]) -> None:
    """Steps 6 and 7."""
    from selenium.webdriver.common.by import By

    # 6. open the first hit (keyboard): the heatmap's hottest cell is the argmax of the API's map
    first = hits[0].find_element(By.CSS_SELECTOR, "button")
    driver.execute_script("arguments[0].focus()", first)
    first.send_keys("\n")
    wait(driver, lambda d: css(d, "#hit-heatmap").get_attribute("data-token") == "all")
    wait(driver, lambda d: d.execute_script(PAGE_LOADED))
    top = api[0]
    answer = client.post(
        f"/v1/collections/{name}/documents/{top['document_id']}/pages/{top['page']}/similarity", json={"query": QUERY}
    ).json()["similarity_map"]
    maps = np.array(answer["maps"], dtype=np.float32)  # (Lq, rows, cols)
    hottest, alpha = canvas_hottest(driver)
    assert expected_argmax(maps.max(axis=0)) in hottest
    assert alpha == 255
    shot(driver, "06-hit-heatmap-whole-query")

    # 7. a token's own map: pick the token whose argmax differs most from the whole query's
    whole = expected_argmax(maps.max(axis=0))
    token = next((t for t in range(len(maps)) if expected_argmax(maps[t]) != whole), len(maps) - 1)
    css(driver, f"#hit-tokens button[data-token='{token}']").click()
    wait(driver, lambda d: css(d, "#hit-heatmap").get_attribute("data-token") == str(token))
    assert expected_argmax(maps[token]) in canvas_hottest(driver)[0]
    assert css(driver, f"#hit-tokens button[data-token='{token}']").get_attribute("aria-pressed") == "true"
    shot(driver, "07-hit-heatmap-one-token")


def _text_mode_boxes(driver: Any, client: httpx.Client, name: str) -> None:
    """Step 7b."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    box = css(driver, "#query")
    # 7b. text mode: the mode selector changes the request; the hit view outlines the matched words where the
    # API's boxes are; the next page (not a hit) gets its boxes from the similarity route
    css(driver, "#hit-close").click()
    Select(css(driver, "#search-mode")).select_by_value("text")
    box.clear()
    box.send_keys("revenue")
    # the first search's 20 hits stay until this answer is painted (and may be as many): wait for the paint mark
    driver.execute_script("document.querySelector('#results').removeAttribute('data-paint-ms')")
    css(driver, "#search-form button[type=submit]").click()
    wait(driver, lambda d: len(d.execute_script("return window.__searches")) == 2)
    sent = driver.execute_script("return window.__searches")[1]
    assert sent == {"query": "revenue", "top_k": 20, "highlight": True, "mode": "text"}
    api = client.post(f"/v1/collections/{name}/search", json=sent).json()["results"]
    wait(driver, lambda d: css(d, "#results").get_attribute("data-paint-ms") is not None)
    hits = driver.find_elements(By.CSS_SELECTOR, "#results .hit")
    assert [h.find_element(By.CSS_SELECTOR, ".hit-doc").text for h in hits] == [r["document_id"] for r in api]
    assert set(api[0]["signals"]) == {"text"}
    assert f"text #{api[0]['signals']['text']['rank']}" in hits[0].find_element(By.CSS_SELECTOR, ".signals").text
    top = api[0]
    hits[0].find_element(By.CSS_SELECTOR, "button").click()
    wait(driver, lambda d: css(d, "#hit-boxes").get_attribute("data-count") == str(len(top["highlights"])))
    assert_boxes_match(driver.execute_script(DRAWN_BOXES), top["highlights"])
    shot(driver, "07b-hit-matched-words")
    numbers = client.get(f"/v1/collections/{name}/documents/{top['document_id']}").json()["page_numbers"]
    other = numbers[numbers.index(top["page"]) + (1 if top["page"] != numbers[-1] else -1)]
    driver.execute_script("arguments[0].focus()", css(driver, "#hit-close"))
    css(driver, "#hit-close").send_keys(Keys.ARROW_RIGHT if other > top["page"] else Keys.ARROW_LEFT)
    wait(driver, lambda d: css(d, "#hit-title").text.startswith(f"{top['document_id']} · page {other}"))
    answer = client.post(
        f"/v1/collections/{name}/documents/{top['document_id']}/pages/{other}/similarity",
        json={"query": "revenue", "highlight": True},
    ).json()
    wait(driver, lambda d: css(d, "#hit-boxes").get_attribute("data-count") == str(len(answer["highlights"])))
    wait(driver, lambda d: d.execute_script(PAGE_LOADED))
    assert_boxes_match(driver.execute_script(DRAWN_BOXES), answer["highlights"])


def _filter_warning(driver: Any) -> None:
    """Step 7c."""
    from selenium.webdriver.common.by import By

    # 7c. a filter on a key no document has: the answer's warning is shown above the (empty) results
    css(driver, "#hit-close").click()
    flt = css(driver, "#search-form input[name=filter]")
    flt.send_keys('{"knd": "report"}')
    css(driver, "#search-form button[type=submit]").click()
    wait(driver, lambda d: css(d, "#search-warnings").is_displayed())
    assert "'knd'" in css(driver, "#search-warnings").text
    assert driver.find_elements(By.CSS_SELECTOR, "#results .hit") == []
    flt.clear()
    css(driver, "#search-form button[type=submit]").click()
    wait(driver, lambda d: not css(d, "#search-warnings").is_displayed())
    shot(driver, "07c-filter-warning-cleared")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
    driver.find_elements(By.CSS_SELECTOR, "#results .hit")[0].find_element(By.CSS_SELECTOR, "button").click()
    wait(driver, lambda d: css(d, "#hit-close").is_displayed())  # the hit view open again for step 8


def _accessibility_and_console(driver: Any) -> None:
    """Step 8."""
    # 8. accessibility: no serious or critical axe-core violation, dialog open and closed
    bad = [v for v in run_axe(driver) if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    css(driver, "#hit-close").click()
    bad = [v for v in run_axe(driver) if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    logs = driver.get_log("browser")
    severe = [e for e in logs if e["level"] == "SEVERE" and "status of 401" not in e["message"]]  # 401: step 1
    assert severe == [], severe
