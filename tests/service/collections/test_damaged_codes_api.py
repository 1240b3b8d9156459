"""Damaged codes over HTTP (issue 26, "Bad input: a corrupt code file"): a multi-vector blob or a codebook that does
not decode makes a search 503 ``index_unavailable`` naming the collection's index file and the remedy (restore from
an export, or delete and re-add the documents) — never a 500 and never an answer computed from the damage — while
what does not read the codes keeps answering (the document list, text search) — unless the codebook is the damaged
part: opening the collection reads it, so all of the collection is 503 until it is restored."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.colbert.test_damaged_blobs import flip_last_byte
from tests.service.helpers import b64, pdf_bytes, ready_app

VISUAL = {"query": "report page", "top_k": 5, "exhaustive": True}


def _fill(c: Any, codec: str) -> None:
    assert c.post("/v1/collections", json={"name": "v", "codec": codec}).status_code == 201
    for i in range(2):
        body = {"pdf": b64(pdf_bytes(2)), "document_id": f"d{i}"}
        assert c.post("/v1/collections/v/documents", json=body).status_code == 201


def _unavailable(c: Any, *, rest_answers: bool = True) -> str:
    response = c.post("/v1/collections/v/search", json=VISUAL)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "index_unavailable", error
    message = str(error["message"])
    assert "index.sqlite" in message
    assert "restore the collection from an export" in message
    text = c.post("/v1/collections/v/search", json={**VISUAL, "mode": "text"})
    assert text.status_code == (200 if rest_answers else 503), text.text  # BM25 does not read the codes
    listed = c.get("/v1/collections/v/documents")
    assert listed.status_code == (200 if rest_answers else 503), listed.text
    assert not rest_answers or len(listed.json()["data"]) == 2
    return message


@pytest.mark.parametrize("codec", ["residual2", "binary"])
def test_a_damaged_code_blob_is_503_naming_the_file(tiny_encoder: Any, tmp_path: Path, codec: str) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        _fill(c, codec)
        assert c.post("/v1/collections/v/search", json=VISUAL).status_code == 200
        (db,) = tmp_path.glob("**/v/index.sqlite")
        with sqlite3.connect(db) as conn:  # one page's codes cut short, in a row without a checksum
            conn.execute(
                "UPDATE multivectors SET data = substr(data, 1, length(data) - 3), crc = NULL WHERE page_id = 2"
            )
        assert f"stored {codec} multi-vector codes are damaged" in _unavailable(c)


@pytest.mark.parametrize("codec", ["float16", "int8", "residual2", "binary"])
def test_a_flipped_byte_is_503_naming_the_document(tiny_encoder: Any, tmp_path: Path, codec: str) -> None:
    """The same length, so the codes still decode: the blob's checksum (colbert.local.checksum) is what catches it."""
    with ready_app(tiny_encoder, tmp_path) as c:
        _fill(c, codec)
        (db,) = tmp_path.glob("**/v/index.sqlite")
        flip_last_byte(db, 3)  # d1's first page (the service numbers pages from 1)
        message = _unavailable(c)
        assert "multi-vector codes of document 'd1' unit 1 (row 3) are damaged (checksum mismatch)" in message
        mapped = c.post("/v1/collections/v/documents/d1/pages/1/similarity", json={"query": "report"})
        assert mapped.status_code == 503, mapped.text  # the page's map reads its codes too (get_unit)
        assert c.post("/v1/collections/v/documents/d0/pages/1/similarity", json={"query": "report"}).status_code == 200


def test_a_damaged_codebook_is_503_naming_the_file(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        _fill(c, "residual2")
    (db,) = tmp_path.glob("**/v/index.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE codebook SET data = zeroblob(length(data))")
    with ready_app(tiny_encoder, tmp_path) as c:  # a fresh process reads the codebook when it first needs it
        # opening the collection reads the codebook: everything of it is refused until it is restored
        assert "the stored codebook is damaged" in _unavailable(c, rest_answers=False)
