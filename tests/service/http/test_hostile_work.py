"""Issue 25 item 6, bounded work per input: each attack that worked, against the live session server.

Every case: the answer comes within its bound (seconds, on the 2 shared cores of the test machine; the bound is in
the case), ``/health`` answers within :data:`HEALTH_BOUND_S` (PDFs) or :data:`CODE_HEALTH_BOUND_S` (code) the
whole time (polled from another thread), and a refused document leaves nothing stored. Before: the 4 MB one-line
bundle took 516 s before a 422; the 2 MB line of ``[`` 89 s; the nested code answered 500; the 50,000-line PDF
page took 77 s with ``/health`` silent.

- code: a line over ``JEV4_MAX_CODE_LINE_CHARS`` -> 413 ``line_too_long`` before tokenizing; more definitions
  than units per document -> 413 ``too_many_chunks`` before embedding; nesting beyond the walk's depth is
  indexed as plain code (201) instead of a RecursionError;
- PDF: the page renders in a worker process, killed after ``JEV4_RENDER_PAGE_TIMEOUT_S`` (5 s on the session
  server) -> 422 ``render_timeout`` naming page 1 and the setting.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.service.conftest import LiveServer
from tests.service.helpers import add_pdf

HEALTH_BOUND_S = 1.0
CODE_HEALTH_BOUND_S = 2.5
"""While a code document is parsed: tree-sitter holds the GIL in its final pass over the tree and when freeing it
(measured 1.2 s and 0.55 s for a 4 MB file of 250,000 statements on the loaded 2-core test machine; before, it
held it for the whole parse: /health took 8.5 s). Parsing in worker processes would remove it (not done yet)."""
CODE = "hostile-work-code"
PAGES = "hostile-work-pages"


@dataclass
class HealthWatch:
    """Polls ``/health`` every 0.1 s from a thread; ``worst`` is its slowest answer (a failure counts as inf)."""

    url: str
    worst: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get("/health").status_code == 200
                except httpx.HTTPError as exc:
                    print("health error", type(exc).__name__, exc, time.perf_counter() - start)
                    ok = False
                took = time.perf_counter() - start if ok else float("inf")
                self.worst = max(self.worst, took)
                self._stop.wait(0.1)


def _watched(live_server: LiveServer, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float, float]:
    """(the answer, its seconds, /health's worst seconds meanwhile)."""
    watch = HealthWatch(live_server.url)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        response = send()
    finally:
        took = time.perf_counter() - start
        watch._stop.set()
        thread.join(15)
    return response, took, watch.worst


@pytest.fixture(scope="module")
def collections(client: httpx.Client) -> Iterator[None]:
    for name, body in ((CODE, {"task": "code"}), (PAGES, {})):
        client.delete(f"/v1/collections/{name}")
        assert client.post("/v1/collections", json={"name": name, **body}).status_code == 201
    yield
    for name in (CODE, PAGES):
        client.delete(f"/v1/collections/{name}")


def _minified_js(size: int) -> bytes:
    unit = b"function a(b){return b+1};var x={k:1,y:[1,2,3]};"
    return (unit * (size // len(unit) + 1))[:size]


def _many_definitions(size: int) -> bytes:
    line = b"function a(b){return b+1};var x={k:1,y:[1,2,3]};" * 200 + b"\n"  # 9,801-character lines
    return (line * (size // len(line) + 1))[:size]


def _nested_python(depth: int) -> bytes:
    return ("".join(" " * i + f"class C{i}:\n" for i in range(depth)) + " " * depth + "x = 1\n").encode()


def _nested_rust(depth: int) -> bytes:
    return ("".join(f"mod m{i} {{\n" for i in range(depth)) + "fn f() {}\n" + "}\n" * depth).encode()


REFUSED = [  # (name, file name, bytes, code, seconds at most)
    ("minified-4MB-one-line", "bundle.min.js", _minified_js(4_000_000), "line_too_long", 30),
    ("brackets-2MB", "brackets.js", b"[" * 2_000_000, "line_too_long", 30),
    ("4MB-of-definitions", "defs.js", _many_definitions(4_000_000), "too_many_chunks", 60),
]


@pytest.mark.parametrize(("name", "filename", "data", "code", "bound"), REFUSED, ids=[r[0] for r in REFUSED])
def test_costly_code_is_refused_before_the_work(
    live_server: LiveServer,
    client: httpx.Client,
    collections: None,
    name: str,
    filename: str,
    data: bytes,
    code: str,
    bound: float,
) -> None:
    url = f"/v1/collections/{CODE}/documents"
    files = {"file": (filename, data, "text/plain")}
    response, took, health = _watched(live_server, lambda: client.post(url, files=files, data={"document_id": name}))
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "JEV4_" in error["message"]  # names the setting (or the limit) to change
    assert took < bound, f"{name}: refused after {took:.1f} s (bound {bound} s)"
    assert health < CODE_HEALTH_BOUND_S, f"{name}: /health took {health:.2f} s meanwhile"
    assert client.get(f"{url}/{name}").status_code == 404  # nothing half-indexed


NESTED = [
    ("600-nested-python-classes", "deep.py", _nested_python(600)),
    ("2000-nested-rust-mods", "deep.rs", _nested_rust(2000)),
]


@pytest.mark.parametrize(("name", "filename", "data"), NESTED, ids=[n[0] for n in NESTED])
def test_deep_nesting_is_indexed_as_plain_code(
    live_server: LiveServer, client: httpx.Client, collections: None, name: str, filename: str, data: bytes
) -> None:
    url = f"/v1/collections/{CODE}/documents"
    files = {"file": (filename, data, "text/plain")}
    response, took, health = _watched(live_server, lambda: client.post(url, files=files, data={"document_id": name}))
    assert response.status_code == 201, response.text  # was a 500 (RecursionError walking the syntax tree)
    assert took < 120, f"{name}: indexed after {took:.1f} s"
    assert health < CODE_HEALTH_BOUND_S, f"{name}: /health took {health:.2f} s meanwhile"
    hits = client.post(
        f"/v1/collections/{CODE}/search", json={"query": "f" if filename.endswith(".rs") else "x", "mode": "text"}
    )
    assert hits.status_code == 200, hits.text


def _hostile_pdf(lines: int) -> bytes:
    """A one-page PDF whose content is one path of ``lines`` strokes across the page (a few KiB deflated)."""
    strokes = "".join(f"0 {i % 842} m 595 {(i * 7) % 842} l\n" for i in range(lines))
    stream = zlib.compress(f"0.5 w\n{strokes}S\n".encode(), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.mark.parametrize("how", ["upload", "embeddings"])
def test_a_page_over_its_render_budget_does_not_stall_the_server(
    live_server: LiveServer, client: httpx.Client, collections: None, how: str
) -> None:
    data = _hostile_pdf(100_000)  # the issue's 50,000 lines, twice: over 5 s on a fast core too
    bound = 5 + 25  # JEV4_RENDER_PAGE_TIMEOUT_S on the session server, plus a worker's start on a loaded machine

    def send() -> httpx.Response:
        if how == "upload":
            files = {"file": ("lines.pdf", data, "application/pdf")}
            return client.post(f"/v1/collections/{PAGES}/documents", files=files, data={"document_id": "lines"})
        import base64

        return client.post("/v1/embeddings", json={"input": [{"pdf": base64.b64encode(data).decode()}]})

    response, took, health = _watched(live_server, send)
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "render_timeout"
    assert "page 1" in error["message"]
    assert "JEV4_RENDER_PAGE_TIMEOUT_S" in error["message"]
    assert took < bound, f"refused after {took:.1f} s (bound {bound} s)"
    assert health < HEALTH_BOUND_S, f"/health took {health:.2f} s meanwhile"
    assert client.get(f"/v1/collections/{PAGES}/documents/lines").status_code == 404
    add_pdf(client, PAGES, 2, document_id=f"fine-{how}")  # the killed worker was replaced: PDFs still render
