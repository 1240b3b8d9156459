"""Duplicate uploads (issue 13, item 4): the same bytes again, under another name or none, follow
``JEV4_DUPLICATE_POLICY`` — return the stored document (default), refuse (409), or allow a copy — on both
backends, over HTTP and in the ``index`` CLI; an explicit ``document_id`` is honoured."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.__main__ import main
from tests.service.helpers import b64, pdf_bytes, png_bytes, ready_app


@contextlib.contextmanager
def _app(tiny_encoder: Any, tmp_path: Path, **settings: Any) -> Iterator[Any]:
    with ready_app(tiny_encoder, tmp_path, **settings) as c:
        assert c.post("/v1/collections", json={"name": "dup"}).status_code == 201
        yield c


def _upload(c: Any, data: bytes, name: str, **fields: str) -> Any:
    return c.post("/v1/collections/dup/documents", files={"file": (name, data)}, data=fields)


def _ids(c: Any) -> list[str]:
    return sorted(d["id"] for d in c.get("/v1/collections/dup/documents").json()["data"])


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_return_existing_is_the_default(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    pdf = pdf_bytes(2)
    with _app(tiny_encoder, tmp_path, collection_backend=backend) as c:
        first = _upload(c, pdf, "a.pdf")
        assert first.status_code == 201, first.text
        assert first.json()["content_hash"] == "sha256:" + hashlib.sha256(pdf).hexdigest()
        assert "x-duplicate-of" not in first.headers
        # Before: a second document (another name) or 409 document_exists (the same name). Now: the stored one.
        for again in (_upload(c, pdf, "b.pdf"), _upload(c, pdf, "a.pdf")):
            assert again.status_code == 200, again.text
            assert again.headers["x-duplicate-of"] == "a.pdf"
            assert again.json()["id"] == "a.pdf"
            assert again.json()["created_at"] == first.json()["created_at"]
        as_json = c.post("/v1/collections/dup/documents?wait=false", json={"pdf": b64(pdf)})
        assert (as_json.status_code, as_json.json()["object"]) == (200, "document")
        assert _ids(c) == ["a.pdf"]
        # another page selection is another document; an explicit id is honoured
        assert _upload(c, pdf, "c.pdf", pages="1").status_code == 201
        assert _upload(c, pdf, "d.pdf", document_id="mine").status_code == 201
        assert _ids(c) == ["a.pdf", "c.pdf", "mine"]
        assert _upload(c, pdf, "e.pdf", pages="1").headers["x-duplicate-of"] == "c.pdf"
        # a replace is never a duplicate; other bytes under a taken name are still 409 document_exists
        assert _upload(c, pdf, "a.pdf", replace="true").status_code == 201
        taken = _upload(c, png_bytes(), "a.pdf")
        assert (taken.status_code, taken.json()["error"]["code"]) == (409, "document_exists")


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_refuse_names_the_document_and_the_setting(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    png = png_bytes(seed=3)
    with _app(tiny_encoder, tmp_path, collection_backend=backend, duplicate_policy="refuse") as c:
        assert _upload(c, png, "scan.png").status_code == 201
        refused = _upload(c, png, "scan-copy.png")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "duplicate_document"
        assert "'scan.png'" in error["message"]
        assert "JEV4_DUPLICATE_POLICY" in error["message"]
        assert _ids(c) == ["scan.png"]


def test_allow_stores_copies(tiny_encoder: Any, tmp_path: Path) -> None:
    png = png_bytes(seed=4)
    with _app(tiny_encoder, tmp_path, duplicate_policy="allow") as c:
        assert _upload(c, png, "one.png").status_code == 201
        assert _upload(c, png, "two.png").status_code == 201
        assert _ids(c) == ["one.png", "two.png"]


def test_bad_policy_is_refused_at_start() -> None:
    from service.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="JEV4_DUPLICATE_POLICY must be one of return_existing, refuse, allow"):
        Settings.from_env({"JEV4_DUPLICATE_POLICY": "skip"})


def test_cli_index_skips_or_refuses(
    tmp_path: Path, service_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("JEV4_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "page.png").write_bytes(png_bytes(seed=7))
    common = ["--collection", "dup", "--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data")]
    common += ["--pdf-dpi", "36", "--image-max-pixels", str(64 * 28 * 28), "--no-progress"]
    assert main(["index", str(tmp_path / "a"), *common]) == 0
    capsys.readouterr()
    assert main(["index", str(tmp_path / "b" / "page.png"), *common, "--duplicate-policy", "refuse"]) == 1
    err = capsys.readouterr().err
    assert "refused page.png" in err
    assert "'page.png'" in err
    (tmp_path / "b" / "copy.png").write_bytes(png_bytes(seed=7))
    assert main(["index", str(tmp_path / "b" / "copy.png"), *common]) == 0
    err = capsys.readouterr().err
    assert "skipped copy.png: the same content is document 'page.png'" in err
    assert main(["documents", "list", "--collection", "dup", "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # page.png only
    assert main(["index", str(tmp_path / "b" / "copy.png"), *common, "--duplicate-policy", "allow"]) == 0
    capsys.readouterr()
    assert main(["documents", "list", "--collection", "dup", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "page.png" in out
    assert "copy.png" in out
