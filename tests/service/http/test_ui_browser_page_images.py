"""The search page over a page rendered on demand (issue 26, item 5): a server that keeps originals
(``JEV4_KEEP_ORIGINALS=1``) stores no page image for a PDF, so the hit view shows the page rendered again from the
kept PDF (:mod:`service.collections.page_images`). Uploaded: the real sample report; searched with the page's own
words; the first hit opened. The image's natural size is the layout's (``cols*28`` x ``rows*28`` from the API's
similarity map), the heatmap canvas and the box layer cover the image exactly, the heatmap's hottest cell is the
argmax of the API's map, and the drawn word boxes are the API's within 1.5 px. Screenshot:
``test-artifacts/ui/page-images-rendered-on-demand.png``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.service.browser import ROOT, css, set_key, shot, wait
from tests.service.conftest import LiveServer, start_server, stop_process
from tests.service.http.test_ui_browser import (
    DRAWN_BOXES,
    PAGE_LOADED,
    assert_boxes_match,
    canvas_hottest,
    expected_argmax,
)

QUERY = "revenue by region"
RECTS = """
const rect = s => { const r = document.querySelector(s).getBoundingClientRect();
                    return [r.left, r.top, r.width, r.height]; };
const img = document.querySelector('#hit-image');
return {image: rect('#hit-image'), heatmap: rect('#hit-heatmap'), boxes: rect('#hit-boxes'),
        natural: [img.naturalWidth, img.naturalHeight]};
"""


@pytest.fixture(scope="module")
def keeping_server(tmp_path_factory: pytest.TempPathFactory, service_checkpoint: Path) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("keeping")
    server = start_server(
        service_checkpoint, base / "data", base / "server.log", env={"JEV4_KEEP_ORIGINALS": "1", "JEV4_PDF_DPI": "72"}
    )
    try:
        yield server
    finally:
        stop_process(server.process)


def test_page_rendered_on_demand_lines_up(driver: Any, keeping_server: LiveServer) -> None:
    name = f"render-{uuid.uuid4().hex[:8]}"
    with keeping_server.client() as client:
        assert client.post("/v1/collections", json={"name": name}).status_code == 201
        pdf = (ROOT / "samples" / "report.pdf").read_bytes()
        up = client.post(
            f"/v1/collections/{name}/documents",
            files={"file": ("report.pdf", pdf, "application/pdf")},
            data={"document_id": "report"},
        )
        assert up.status_code == 201, up.text
        assert up.json()["file"]["media_type"] == "application/pdf"  # kept: its pages render from it
        served = client.get(f"/v1/collections/{name}/documents/report/pages/1/image")
        assert served.headers["content-type"] == "image/png"  # rendered again, lossless

        driver.get(f"{keeping_server.url}/ui/")
        if driver.execute_script("return sessionStorage.getItem('jev4.apiKey')") != keeping_server.api_key:
            wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is not None)
            set_key(driver, keeping_server.api_key)
        wait(driver, lambda d: css(d, "#key-dialog").get_attribute("open") is None)
        wait(driver, lambda d: d.find_elements("css selector", f"#collection-list button[data-collection='{name}']"))
        css(driver, f"#collection-list button[data-collection='{name}']").click()
        wait(driver, lambda d: css(d, "#collection-title").text.startswith(name))

        css(driver, "#query").send_keys(QUERY)
        css(driver, "#search-form button[type=submit]").click()
        wait(driver, lambda d: d.find_elements("css selector", "#results .hit"))
        api = client.post(f"/v1/collections/{name}/search", json={"query": QUERY, "highlight": True}).json()
        top = api["results"][0]
        assert top["highlights"], "the query's words are on the page: the API has boxes to draw"
        driver.find_elements("css selector", "#results .hit")[0].find_element("css selector", "button").click()
        wait(driver, lambda d: css(d, "#hit-heatmap").get_attribute("data-token") == "all")
        wait(driver, lambda d: d.execute_script(PAGE_LOADED))
        wait(driver, lambda d: css(d, "#hit-boxes").get_attribute("data-count") == str(len(top["highlights"])))

        answer = client.post(
            f"/v1/collections/{name}/documents/{top['document_id']}/pages/{top['page']}/similarity",
            json={"query": QUERY},
        ).json()["similarity_map"]
    rects = driver.execute_script(RECTS)
    assert rects["natural"] == [answer["cols"] * 28, answer["rows"] * 28]  # the grid's pixels, no more, no less
    for layer in ("heatmap", "boxes"):
        assert np.allclose(rects[layer], rects["image"], atol=1.0), (layer, rects)
    maps = np.array(answer["maps"], dtype=np.float32)  # (Lq, rows, cols)
    assert expected_argmax(maps.max(axis=0)) in canvas_hottest(driver)[0]
    assert_boxes_match(driver.execute_script(DRAWN_BOXES), top["highlights"])
    shot(driver, "page-images-rendered-on-demand")
