"""The hit view's regions (citations) in a real browser against the live server: a text search on the sample
report, open the first hit, and the numbered boxes drawn over the page are the API's regions for that page
(``bbox`` fractions x the displayed image size, within 1.5 px on every edge), listed beside the page with their
text. Screenshot in ``test-artifacts/ui/``."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.service.browser import ROOT, css, set_key, shot, wait
from tests.service.conftest import LiveServer

PAGE_LOADED = "const i = document.querySelector('#hit-image'); return i.complete && i.naturalWidth > 0"
# The drawn region boxes in CSS pixels relative to the shown image, with the image's shown size
DRAWN_REGIONS = """
const img = document.querySelector('#hit-image');
const r = img.getBoundingClientRect();
return {width: r.width, height: r.height, boxes: [...document.querySelectorAll('#hit-regions .region-box')].map(b => {
  const q = b.getBoundingClientRect();
  return {n: b.dataset.region, source: b.dataset.source, x0: q.left - r.left, y0: q.top - r.top,
          x1: q.right - r.left, y1: q.bottom - r.top};
})};
"""


def test_regions_drawn_where_the_api_places_them(driver: Any, live_server: LiveServer, client: httpx.Client) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    name = f"cite-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    files = {"file": ("report.pdf", (ROOT / "samples" / "report.pdf").read_bytes(), "application/pdf")}
    assert client.post(f"/v1/collections/{name}/documents", files=files).status_code == 201
    driver.get(f"{live_server.url}/ui/")
    if not driver.execute_script("return sessionStorage.getItem('jev4.apiKey')"):
        wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is not None)
        set_key(driver, live_server.api_key)
    wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is None)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button[data-collection='{name}']"))
    css(driver, f"button[data-collection='{name}']").click()
    Select(css(driver, "#search-mode")).select_by_value("text")
    css(driver, "#query").send_keys("revenue")
    css(driver, "#search-form button[type=submit]").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
    api = client.post(f"/v1/collections/{name}/search", json={"query": "revenue", "mode": "text"}).json()["results"]
    top = api[0]
    driver.find_elements(By.CSS_SELECTOR, "#results .hit")[0].find_element(By.CSS_SELECTOR, "button").click()
    path = f"/v1/collections/{name}/documents/{top['document_id']}/pages/{top['page']}/similarity"
    regions = client.post(path, json={"query": "revenue", "regions": True}).json()["regions"]
    assert regions
    assert regions[0]["source"] == "text"
    wait(driver, lambda d: css(d, "#hit-regions").get_attribute("data-count") == str(len(regions)))
    wait(driver, lambda d: d.execute_script(PAGE_LOADED))
    drawn = driver.execute_script(DRAWN_REGIONS)
    width, height = drawn["width"], drawn["height"]
    assert width > 100
    assert len(drawn["boxes"]) == len(regions)
    for i, (got, want) in enumerate(zip(drawn["boxes"], regions, strict=True)):
        assert (got["n"], got["source"]) == (str(i + 1), want["source"])
        x0, y0, x1, y1 = want["bbox"]
        for edge, expected in (("x0", x0 * width), ("y0", y0 * height), ("x1", x1 * width), ("y1", y1 * height)):
            assert abs(got[edge] - expected) <= 1.5, (edge, got, want)
    listed = driver.find_elements(By.CSS_SELECTOR, "#hit-citations li")
    assert len(listed) == len(regions)
    for item, want in zip(listed, regions, strict=True):
        shown = item.find_element(By.CSS_SELECTOR, ".region-text").text
        assert shown == want["text"] if want["text"] else shown.startswith("(no text in this area")
        assert item.find_element(By.CSS_SELECTOR, ".region-tag").text.startswith(f"{listed.index(item) + 1} · ")
    shot(driver, "08-hit-regions")
