"""URL ingestion (issue 27 item 5): ``POST …/documents`` with ``{"url": …}`` fetches a PDF, a web page or an image
through the guard every remote input takes, runs the converter path of an uploaded file, and keeps the URL as the
document's ``source``; the Python client's ``upload_url`` uses the same route. The app runs in-process with
loopback fetching allowed by its explicit test setting (``allow_private_addresses``); the guard's refusals are
shown with the default settings."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.client import Client
from service.collections.upload_files import fetch_document
from service.errors import PayloadTooLargeError, RemoteURLDisabledError, URLNotAllowedError
from service.http.app import create_app
from service.settings import Settings
from tests.service.helpers import png_bytes

REPORT = (Path(__file__).resolve().parents[4] / "samples" / "report.pdf").read_bytes()
PAGE = (
    b"<!doctype html><html><head><title>Harbour notes</title></head><body><h1>Harbour notes</h1>"
    b"<p>The lighthouse keeper logged a quiet night.</p></body></html>"
)
SEEN: list[str] = []


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append(self.path)
        port = self.server.server_address[1]
        routes: dict[str, tuple[int, str, bytes]] = {
            "/docs/report.pdf": (200, "application/pdf", REPORT),
            "/notes/": (200, "text/html; charset=utf-8", PAGE),
            "/program.exe": (200, "application/octet-stream", b"MZ\x90\x00" + bytes(200)),
            "/shots/photo.png?size=large": (200, "image/png", png_bytes(120, 90)),
            "/missing.pdf": (404, "text/plain", b"no"),
        }
        if self.path == "/hop":  # a redirect to another host name of the same server
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/docs/report.pdf")
            self.end_headers()
            return
        status, media, body = routes.get(self.path, (404, "text/plain", b"no"))
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Any) -> Iterator[TestClient[Any]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        allow_remote_urls=True,
        allow_private_addresses=True,  # the test server is on loopback: allowed by this explicit setting only
        pdf_dpi=36,
        image_max_pixels=64 * 28 * 28,
        ocr="never",
        ui=False,
    )
    with TestClient(create_app(settings, encoder=tiny_encoder)) as c:
        deadline = time.monotonic() + 120
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.post("/v1/collections", json={"name": "web"}).status_code == 201
        yield c


def _text_hits(app: TestClient[Any], query: str) -> list[dict[str, Any]]:
    found = app.post("/v1/collections/web/search", json={"query": query, "mode": "text", "top_k": 3})
    assert found.status_code == 200, found.text
    hits: list[dict[str, Any]] = found.json()["results"]
    return hits


def test_a_pdf_by_url_is_indexed_with_its_url_as_source(app: TestClient[Any], files: str) -> None:
    url = f"{files}/docs/report.pdf"
    added = app.post("/v1/collections/web/documents", json={"url": url, "metadata": {"year": 2024}})
    assert added.status_code == 201, added.text
    doc = added.json()
    assert (doc["id"], doc["pages"], doc["metadata"]) == ("report.pdf", 3, {"source": url, "year": 2024})
    hit = _text_hits(app, "Northwind")[0]
    assert (hit["document_id"], hit["page"]) == ("report.pdf", 1)


def test_a_web_page_by_url_becomes_pages(app: TestClient[Any], files: str) -> None:
    url = f"{files}/notes/"
    added = app.post("/v1/collections/web/documents", json={"url": url, "document_id": "harbour"})
    assert added.status_code == 201, added.text
    assert added.json()["metadata"] == {"source": url}
    assert _text_hits(app, "lighthouse")[0]["document_id"] == "harbour"


def test_bad_url_documents_are_clear_4xx(app: TestClient[Any], files: str) -> None:
    exe = app.post("/v1/collections/web/documents", json={"url": f"{files}/program.exe"})
    assert (exe.status_code, exe.json()["error"]["code"]) == (415, "unsupported_format"), exe.text
    gone = app.post("/v1/collections/web/documents", json={"url": f"{files}/missing.pdf"})
    assert (gone.status_code, gone.json()["error"]["code"]) == (422, "download_failed"), gone.text
    assert "HTTP 404" in gone.json()["error"]["message"]
    both = app.post("/v1/collections/web/documents", json={"url": f"{files}/docs/report.pdf", "pdf": "JVBERi0="})
    assert both.status_code == 422, both.text
    ftp = app.post("/v1/collections/web/documents", json={"url": "ftp://example.com/a.pdf"})
    assert ftp.status_code in (400, 403, 422), ftp.text
    count = app.get("/v1/collections/web").json()["documents"]
    assert count == len(app.get("/v1/collections/web/documents").json()["data"])  # nothing half-stored


def test_the_client_uploads_by_url(app: TestClient[Any], files: str) -> None:
    def forward(request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}  # the app's own test host
        return app.request(request.method, request.url.raw_path.decode(), content=request.content, headers=headers)

    url = f"{files}/docs/report.pdf"
    with Client("http://testserver", transport=httpx.MockTransport(forward)) as client:
        doc = client.upload_url("web", url, document_id="by-client", poll_s=0.05, timeout_s=120)
    assert (doc.id, doc.pages, doc.metadata["source"], doc.warnings) == ("by-client", 3, url, [])


def test_the_guard_refuses_loopback_disabled_urls_hops_and_size(files: str) -> None:
    port = files.rsplit(":", 1)[1]
    strict = Settings(allow_remote_urls=True)  # the defaults: no private or loopback address
    with pytest.raises(URLNotAllowedError, match="loopback"):
        asyncio.run(fetch_document(f"{files}/docs/report.pdf", strict))
    with pytest.raises(RemoteURLDisabledError):
        asyncio.run(fetch_document(f"{files}/docs/report.pdf", Settings()))
    # each redirect is checked again: localhost is allowed, the hop to 127.0.0.1 is not
    hosts = Settings(allow_remote_urls=True, allow_private_addresses=True, allowed_url_hosts=("localhost",))
    SEEN.clear()
    with pytest.raises(URLNotAllowedError, match=r"127\.0\.0\.1"):
        asyncio.run(fetch_document(f"http://localhost:{port}/hop", hosts))
    assert SEEN == ["/hop"]  # the refused hop was never requested
    small = Settings(allow_remote_urls=True, allow_private_addresses=True, max_pdf_bytes=10_000)
    with pytest.raises(PayloadTooLargeError, match="JEV4_MAX_PDF_BYTES"):
        asyncio.run(fetch_document(f"{files}/docs/report.pdf", small))


def test_an_image_by_url(app: TestClient[Any], files: str) -> None:
    added = app.post("/v1/collections/web/documents", json={"url": f"{files}/shots/photo.png?size=large"})
    assert added.status_code == 201, added.text
    assert (added.json()["id"], added.json()["pages"]) == ("photo.png", 1)
