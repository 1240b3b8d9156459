"""``POST /v1/collections/{name}/vacuum`` with ``{"codec": C}`` (issue 26): the collection moves to codec C
keeping every document; text search answers as before (BM25 does not read the codes); an unknown codec is 422
``invalid_codec``; a collection being written (an indexing job, another process's writer) is 409
``collection_busy`` naming what to wait for, and is left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from service.collections.jobs import IndexJob, JobStatus
from tests.service.helpers import b64, pdf_bytes, ready_app


def _state(c: Any) -> tuple[Any, Any, Any]:
    docs = c.get("/v1/collections/v/documents").json()["data"]
    text = c.post("/v1/collections/v/search", json={"query": "report page", "top_k": 10, "mode": "text"})
    visual = c.post("/v1/collections/v/search", json={"query": "report page", "top_k": 10, "exhaustive": True})
    return docs, text.json()["results"], sorted((h["document_id"], h["page"]) for h in visual.json()["results"])


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def test_recode_keeps_documents_and_text_answers(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        assert c.post("/v1/collections", json={"name": "v", "codec": "float16"}).status_code == 201
        for i in range(3):
            body = {"pdf": b64(pdf_bytes(2)), "document_id": f"d{i}", "metadata": {"i": i}}
            assert c.post("/v1/collections/v/documents", json=body).status_code == 201
        before = _state(c)
        assert before[1]  # the text search finds something to compare
        for codec in ("residual2", "int8"):
            done = c.post("/v1/collections/v/vacuum", json={"codec": codec})
            assert done.status_code == 200, done.text
            assert "recoded 3 documents" in done.json()["note"]
            assert c.get("/v1/collections/v").json()["codec"] == codec
            assert _state(c) == before  # documents, text answers, and every page still found
        bad = _error(c.post("/v1/collections/v/vacuum", json={"codec": "residual3"}), 422, "invalid_codec")
        assert "unknown codec 'residual3'; expected one of" in bad
        assert c.post("/v1/collections/v/vacuum").status_code == 200  # no body: a plain vacuum, as before
        assert c.get("/v1/collections/v").json()["codec"] == "int8"


def test_recode_of_a_collection_being_written_is_409(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        assert c.post("/v1/collections", json={"name": "v", "codec": "float16"}).status_code == 201
        body = {"pdf": b64(pdf_bytes(1)), "document_id": "d0"}
        assert c.post("/v1/collections/v/documents", json=body).status_code == 201
        (db,) = tmp_path.glob("**/v/index.sqlite")
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another process's writer
        try:
            message = _error(c.post("/v1/collections/v/vacuum", json={"codec": "int8"}), 409, "collection_busy")
            assert "another process is writing" in message
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        jobs = c.app.state["collections"].jobs
        job = IndexJob("job-1", "v", "d1", status=JobStatus.RUNNING)
        jobs._jobs[job.id] = job  # an indexing job of this server under way
        message = _error(c.post("/v1/collections/v/vacuum", json={"codec": "int8"}), 409, "collection_busy")
        assert "job-1" in message
        assert "wait for them to finish" in message
        del jobs._jobs[job.id]
        assert c.get("/v1/collections/v").json()["codec"] == "float16"
        assert c.post("/v1/collections/v/vacuum", json={"codec": "int8"}).status_code == 200
