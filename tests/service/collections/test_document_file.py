"""A document's original file by route (issue 13, item 8): ``GET /v1/collections/{name}/documents/{id}/file``
when ``JEV4_KEEP_ORIGINALS`` is on — the uploaded bytes with their media type, a safe Content-Disposition,
ETag/304, the API-key rule of every /v1 route; 404 ``original_not_kept`` (naming the setting) or
``document_not_found``; GET document's ``file``; replace and delete take the original with them."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.service.helpers import b64, pdf_bytes, png_bytes, ready_app
from tests.service.helpers import error_message as _error

SMALL: dict[str, Any] = {"pdf_dpi": 36, "image_max_pixels": 64 * 28 * 28}
BASE = "/v1/collections/lib/documents"


@contextlib.contextmanager
def _app(tiny_encoder: Any, tmp_path: Path, **settings: Any) -> Iterator[Any]:
    with ready_app(tiny_encoder, tmp_path, **{**SMALL, **settings}) as c:
        assert c.post("/v1/collections", json={"name": "lib"}).status_code == 201
        yield c


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_original_file_round_trip(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    pdf = pdf_bytes(2)
    with _app(tiny_encoder, tmp_path, collection_backend=backend) as c:  # originals are kept by default
        hostile = 'Q3 "final"\r\nX-Evil: 1; 100% r\u00e9sum\u00e9 \u5831\u544a.pdf'
        kept = hostile.replace("\r", "_").replace("\n", "_")  # control characters are not kept
        up = c.post(BASE, files={"file": (hostile, pdf, "text/html")}, data={"document_id": "q3"})
        assert up.status_code == 201, up.text
        assert up.json()["file"] == {"media_type": "application/pdf", "bytes": len(pdf), "name": kept}
        assert c.get(f"{BASE}/q3").json()["file"] == up.json()["file"]
        assert [d["file"] for d in c.get(BASE).json()["data"]] == [up.json()["file"]]

        got = c.get(f"{BASE}/q3/file")
        assert got.status_code == 200
        assert got.content == pdf  # bit-exact
        assert got.headers["content-type"] == "application/pdf"  # read from the bytes, not the part's text/html
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "x-evil" not in got.headers
        disposition = got.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="')
        ascii_name = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert all(32 <= ord(ch) < 127 and ch not in '"\\/' for ch in ascii_name)
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == kept  # the exact (kept) name
        etag = got.headers["etag"]
        assert etag == f'"{hashlib.sha256(pdf).hexdigest()[:32]}-file"'
        again = c.get(f"{BASE}/q3/file", headers={"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert c.get(f"{BASE}/q3/file", headers={"If-None-Match": '"other"'}).status_code == 200

        # an image (JSON upload: no file name -> the document id names the download)
        png = png_bytes(seed=3)
        assert c.post(BASE, json={"image": b64(png), "document_id": "pic"}).status_code == 201
        pic = c.get(f"{BASE}/pic/file")
        assert (pic.content, pic.headers["content-type"]) == (png, "image/png")
        assert pic.headers["content-disposition"] == "attachment; filename=\"pic\"; filename*=UTF-8''pic"
        assert c.get(f"{BASE}/pic").json()["file"] == {"media_type": "image/png", "bytes": len(png), "name": None}

        # a replace replaces it (new bytes, new tag)
        other = pdf_bytes(3)
        up = c.post(BASE, files={"file": ("v2.pdf", other)}, data={"document_id": "q3", "replace": "true"})
        assert up.status_code == 201, up.text
        new = c.get(f"{BASE}/q3/file", headers={"If-None-Match": etag})
        assert (new.status_code, new.content) == (200, other)
        assert new.headers["etag"] != etag
        assert 'filename="v2.pdf"' in new.headers["content-disposition"]

        # a delete deletes it
        assert c.delete(f"{BASE}/q3").status_code == 200
        _error(c.get(f"{BASE}/q3/file"), 404, "document_not_found")
        _error(c.get("/v1/collections/nope/documents/q3/file"), 404, "collection_not_found")


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_off_says_which_setting(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    pdf = pdf_bytes(1)
    with _app(tiny_encoder, tmp_path, collection_backend=backend, keep_originals=False) as c:
        up = c.post(BASE, files={"file": ("a.pdf", pdf)})
        assert up.status_code == 201, up.text
        assert up.json()["file"] is None
        assert c.get(f"{BASE}/a.pdf").json()["file"] is None
        message = _error(c.get(f"{BASE}/a.pdf/file"), 404, "original_not_kept")
        assert "JEV4_KEEP_ORIGINALS" in message
        assert "off now" in message


def test_background_job_keeps_it_and_reports_it(tiny_encoder: Any, tmp_path: Path) -> None:
    pdf = pdf_bytes(2)
    with _app(tiny_encoder, tmp_path, keep_originals=True) as c:
        job = c.post(f"{BASE}?wait=false", files={"file": ("bg.pdf", pdf)})
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 60
        while (state := c.get(f"/v1/collections/lib/jobs/{job.json()['id']}").json())["status"] != "succeeded":
            assert state["status"] in ("queued", "running"), state
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["document"]["file"] == {"media_type": "application/pdf", "bytes": len(pdf), "name": "bg.pdf"}
        assert c.get(f"{BASE}/bg.pdf/file").content == pdf


def test_same_api_key_rule(tiny_encoder: Any, tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from service.http.app import create_app
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path, api_keys=("k",), keep_originals=True, **SMALL)
    with TestClient(create_app(settings, encoder=tiny_encoder)) as c:
        key = {"Authorization": "Bearer k"}
        deadline = time.monotonic() + 60
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.post("/v1/collections", json={"name": "lib"}, headers=key).status_code == 201
        assert c.post(BASE, json={"pdf": b64(pdf_bytes(1)), "document_id": "d"}, headers=key).status_code == 201
        assert c.get(f"{BASE}/d/file").status_code == 401
        assert c.get(f"{BASE}/d/file", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get(f"{BASE}/d/file", headers=key).status_code == 200


def test_openapi_documents_the_route(tiny_encoder: Any, tmp_path: Path) -> None:
    with _app(tiny_encoder, tmp_path) as c:
        spec = c.get("/docs/openapi.json").json()
        op = spec["paths"]["/v1/collections/{name}/documents/{document_id}/file"]["get"]
        assert "JEV4_KEEP_ORIGINALS" in op["description"]
        # any type: the file is served with the media type read from its bytes (a PDF, any image, text, code)
        assert list(op["responses"]["200"]["content"]) == ["*/*"]
        assert "404" in op["responses"]
        schema = spec["components"]["schemas"]["DocumentObject"]["properties"]["file"]
        assert "JEV4_KEEP_ORIGINALS" in schema.get("description", "") or "oneOf" in schema or "anyOf" in schema


def test_cli_index_keeps_originals_too(
    tmp_path: Path, service_checkpoint: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m service index`` with JEV4_KEEP_ORIGINALS keeps each file as the upload route does; ``documents
    get-file`` writes it back."""
    from service.__main__ import main

    for name in ("JEV4_PDF_DPI", "JEV4_IMAGE_MAX_PIXELS"):
        monkeypatch.setenv(name, str(SMALL[name[5:].lower()]))
    monkeypatch.setenv("JEV4_KEEP_ORIGINALS", "true")
    png = png_bytes(seed=5)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "chart one.png").write_bytes(png)
    common = ["--collection", "k", "--data-dir", str(tmp_path / "data")]
    assert main(["index", str(tmp_path / "in"), *common, "--model", str(service_checkpoint), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "back.png"
    assert main(["documents", "get-file", "chart_one.png", *common, "-o", str(out)]) == 0
    assert out.read_bytes() == png
    assert 'image/png ("chart one.png")' in capsys.readouterr().out


def test_text_media_type_is_served_as_stored(tiny_encoder: Any, tmp_path: Path) -> None:
    """An original stored as ``text/plain; charset=utf-8`` (what text/code uploads keep) is served with exactly that
    Content-Type (Litestar appends its own charset to text/* unless told)."""
    import numpy as np

    from colbert.catalog import Catalog
    from colbert.store import CollectionConfig, OriginalFile, UnitRecord

    source = "def area(r):\n    return 3.14159 * r * r  # r\u00e9sum\u00e9\n".encode()
    with Catalog(tmp_path) as catalog:
        store = catalog.create("txt", CollectionConfig(dense_dim=64, multivector_dim=8))
        unit = UnitRecord(1, np.ones(64, np.float32), np.ones((2, 8), np.float32), kind="chunk", text="def area")
        store.add_document("area.py", [unit], original=OriginalFile(source, "text/plain; charset=utf-8", "area.py"))
    with _app(tiny_encoder, tmp_path) as c:
        got = c.get("/v1/collections/txt/documents/area.py/file")
        assert (got.status_code, got.content) == (200, source)
        assert got.headers["content-type"] == "text/plain; charset=utf-8"


def test_text_document_keeps_its_file(tiny_encoder: Any, tmp_path: Path) -> None:
    """A code file uploaded to a code collection: kept as uploaded, served as UTF-8 text."""
    source = "def area(r):\n    # r\u00e9sum\u00e9\n    return 3.14159 * r * r\n".encode()
    with _app(tiny_encoder, tmp_path, keep_originals=True) as c:
        assert c.post("/v1/collections", json={"name": "src", "task": "code"}).status_code == 201
        up = c.post("/v1/collections/src/documents", files={"file": ("geo/area.py", source)})
        assert up.status_code == 201, up.text
        doc_id = up.json()["id"]
        want = {"media_type": "text/plain; charset=utf-8", "bytes": len(source), "name": "area.py"}
        assert up.json()["file"] == want
        got = c.get(f"/v1/collections/src/documents/{doc_id}/file")
        assert (got.status_code, got.content) == (200, source)
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
