"""A write that waits longer than ``JEV4_STORE_BUSY_TIMEOUT_S`` for another process's write lock answers 503
``index_busy`` naming that setting — on every write route (page and text uploads, metadata patches, deletes) —
and stores nothing; once the lock is released the same request succeeds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.service.helpers import b64, pdf_bytes, ready_app


def _busy(response: Any) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "index_busy", error
    assert "JEV4_STORE_BUSY_TIMEOUT_S" in error["message"], error


def test_every_write_route_names_the_busy_timeout(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path, store_busy_timeout_s=0.3) as client:
        assert client.post("/v1/collections", json={"name": "pages", "codec": "float32"}).status_code == 201
        assert client.post("/v1/collections", json={"name": "notes", "unit_kind": "chunk"}).status_code == 201
        pdf = {"pdf": b64(pdf_bytes(1)), "document_id": "p"}
        text = {"text": "# Title\n\nSome words about disks.\n", "path": "a.md", "document_id": "t"}
        assert client.post("/v1/collections/pages/documents", json=pdf).status_code == 201
        assert client.post("/v1/collections/notes/documents", json=text).status_code == 201
        locks = {}
        for name in ("pages", "notes"):  # another process's writer holds each collection's write lock
            (db,) = tmp_path.glob(f"**/{name}/index.sqlite")
            locks[name] = sqlite3.connect(db, isolation_level=None)
            locks[name].execute("BEGIN IMMEDIATE")
        _busy(client.post("/v1/collections/pages/documents", json={**pdf, "document_id": "p2"}))
        _busy(client.post("/v1/collections/notes/documents", json={**text, "document_id": "t2"}))
        _busy(client.patch("/v1/collections/notes/documents/t", json={"metadata": {"x": 1}}))
        _busy(client.delete("/v1/collections/pages/documents/p"))
        for lock in locks.values():
            lock.execute("ROLLBACK")
            lock.close()
        assert client.get("/v1/collections/pages").json()["documents"] == 1  # nothing stored meanwhile
        assert client.post("/v1/collections/notes/documents", json={**text, "document_id": "t2"}).status_code == 201
        assert client.patch("/v1/collections/notes/documents/t", json={"metadata": {"x": 1}}).status_code == 200
        assert client.delete("/v1/collections/pages/documents/p").status_code == 200
