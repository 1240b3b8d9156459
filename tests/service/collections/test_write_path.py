"""The one write path (issue 24 items 2 and 5; issue 25's id and content-hash fixes): every kind of document
goes through one converter per kind and one ``add_document``; the task is decided once; unit metadata travels as
types; ids are kept as given; text hashes carry the ``sha256:`` prefix."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from colbert.catalog import Catalog
from colbert.store import CollectionConfig
from colbert.units import ChunkInfo
from model.layout import PageLayout
from model.types import PromptType, Task
from service.collections import converters, writing
from service.collections.duplicates import admit
from service.collections.tasks import task_spec
from service.collections.units import PageUnitInfo
from tests.service.helpers import api_error, create_collection, pdf_bytes, png_bytes, ready_app

CODE = b"import os\n\n\ndef main() -> None:\n    print(os.getcwd())\n"


def test_each_kind_is_stored_by_the_one_commit(
    tiny_encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PDF, an image and a code file (multipart) and a JSON text document each reach the store through
    ``writing.commit`` exactly once, with the converter the content picks."""
    committed: list[tuple[str, list[str]]] = []
    real = writing.commit

    def commit(store: Any, document_id: str, units: list[Any], *args: Any, **kwargs: Any) -> Any:
        committed.append((document_id, sorted({u.kind for u in units})))
        return real(store, document_id, units, *args, **kwargs)

    monkeypatch.setattr(writing, "commit", commit)
    with ready_app(tiny_encoder, tmp_path) as client:
        create_collection(client, "pages")
        create_collection(client, "code", task="code")
        url = "/v1/collections/{}/documents"
        uploads = [
            ("pages", {"files": {"file": ("a.pdf", pdf_bytes(2), "application/pdf")}}),
            ("pages", {"files": {"file": ("b.png", png_bytes(), "image/png")}}),
            ("code", {"files": {"file": ("tool.py", CODE, "text/x-python")}}),
            ("code", {"json": {"text": "# Title\n\nSome words here.\n", "path": "notes.md"}}),
        ]
        for name, body in uploads:
            response = client.post(url.format(name), **body)
            assert response.status_code == 201, response.text
    assert committed == [
        ("a.pdf", ["page"]),
        ("b.png", ["page"]),
        ("tool.py", ["chunk"]),
        ("notes.md", ["chunk"]),
    ]


def test_converters_are_picked_from_declared_type_and_bytes() -> None:
    pdf, png = pdf_bytes(1), png_bytes()
    assert converters.pick(pdf) == "pdf"
    assert converters.pick(png, path="scan.png") == "image"
    assert converters.pick(pdf, path="tool.py") == "text"  # a declared text file is text, whatever its bytes
    assert converters.pick(png, language="text") == "text"
    assert converters.pick(b"not an image") == "image"  # the fallback: its decoder names what is wrong
    assert [c.kind for c in converters.FORMATS][-1] == "image"
    with pytest.raises(ValueError, match="no page format 'nope'"):
        converters.page_converter("nope")
    with pytest.raises(ValueError, match="converted to PDF first"):  # a PdfProducer has no page converter
        converters.page_converter("docx")


# ---- the task ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit_kind", ["page", "chunk"])
@pytest.mark.parametrize("task", ["retrieval", "code"])
def test_units_and_queries_share_one_adapter(task: str, unit_kind: str) -> None:
    config = CollectionConfig(128, task=task, unit_kind=unit_kind)
    passage, query = task_spec(config, PromptType.PASSAGE), task_spec(config, PromptType.QUERY)
    assert passage.task == query.task
    assert (passage.prompt, query.prompt) == (PromptType.PASSAGE, PromptType.QUERY)
    # pages are embedded by the retrieval adapter (the code adapter never saw page images); chunks by their task
    assert passage.task == (Task.RETRIEVAL if unit_kind == "page" else Task(task))


def test_a_code_task_page_collection_is_refused(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as client:
        response = client.post("/v1/collections", json={"name": "c", "task": "code", "unit_kind": "page"})
        message = api_error(response, 422, "invalid_task")["message"]
        assert "retrieval adapter" in message
        assert '"unit_kind": "chunk"' in message
        assert client.get("/v1/collections/c").status_code == 404
        assert create_collection(client, "ok", task="code")["unit_kind"] == "chunk"  # the default stays valid


def test_page_indexing_and_search_embed_with_the_one_task(
    tiny_encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older code-task page collection: its pages and its queries both go through retrieval."""
    from service.collections import search

    asked: list[str] = []
    real = task_spec

    def spy(config: Any, prompt: PromptType) -> Any:
        spec = real(config, prompt)
        asked.append(spec.api_name)
        return spec

    monkeypatch.setattr(writing, "task_spec", spy)
    monkeypatch.setattr(search, "task_spec", spy)
    with Catalog(tmp_path) as catalog:
        info = tiny_encoder.info
        config = CollectionConfig(info.hidden_size, info.multivector_dim, task="code", unit_kind="page")
        catalog.create("old", config)
    with ready_app(tiny_encoder, tmp_path) as client:
        add = client.post("/v1/collections/old/documents", files={"file": ("a.png", png_bytes(), "image/png")})
        assert add.status_code == 201, add.text
        found = client.post("/v1/collections/old/search", json={"query": "a chart", "mode": "visual"})
        assert found.status_code == 200, found.text
    assert asked == ["retrieval.passage", "retrieval.query"]


# ---- typed unit info -----------------------------------------------------------------------------------


def test_stored_page_layout_round_trips_and_matches_the_stored_image(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path, keep_originals=False) as client:  # a stored image (no kept PDF)
        create_collection(client, "pages")
        response = client.post(
            "/v1/collections/pages/documents", files={"file": ("a.pdf", pdf_bytes(1), "application/pdf")}
        )
        assert response.status_code == 201, response.text
    with Catalog(tmp_path) as catalog:
        unit = catalog.get("pages").get_unit("a.pdf", 1)
    assert unit is not None
    assert unit.image is not None
    info = PageUnitInfo.from_metadata(unit.metadata)
    assert info is not None
    assert info.image_span is not None
    assert info.to_metadata() == dict(unit.metadata)  # the stored keys, unchanged
    assert Image.open(io.BytesIO(unit.image)).size == info.layout.image_size
    start, stop = info.image_span
    assert stop - start == info.layout.num_patches
    assert info.words  # the sample PDF has a text layer


def test_layout_and_chunk_info_parse_their_stored_form() -> None:
    assert PageLayout.from_grid_thw((1, 6, 8)) == PageLayout(3, 4)
    assert PageLayout(3, 4).image_size == (4 * 28, 3 * 28)
    assert PageUnitInfo.from_metadata({"path": "a.py"}) is None  # a chunk unit has no page layout
    stored = {
        "path": "a.md",
        "language": "markdown",
        "chunk_kind": "section",
        "char_span": [0, 9],
        "lines": [1, 2],
        "name": "Intro",
        "headings": ["Intro"],
    }
    info = ChunkInfo.from_metadata(stored)
    assert (info.lines, info.char_span, info.extra) == ((1, 2), (0, 9), {"headings": ["Intro"]})
    assert info.to_metadata() == stored


# ---- ids and content hashes ----------------------------------------------------------------------------


def test_ids_are_kept_as_given(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as client:
        create_collection(client, "code", task="code")
        url = "/v1/collections/code/documents"
        kept = client.post(url, files={"file": ("_compat.py", CODE, "text/x-python")})
        assert kept.status_code == 201, kept.text
        assert kept.json()["id"] == "_compat.py"  # was renamed d_compat.py
        explicit = client.post(url, json={"text": "x = 1\n", "path": "b.py", "document_id": "_b"})
        assert explicit.status_code == 201, explicit.text
        assert explicit.json()["id"] == "_b"
        dotted = client.post(url, files={"file": (".hidden.py", b"y = 2\n", "text/x-python")})
        assert dotted.json()["id"] == "_hidden.py"
        bad = client.post(url, json={"text": "x = 1\n", "path": "c.py", "document_id": ".c"})
        assert bad.status_code == 422, bad.text


def test_text_documents_store_a_prefixed_content_hash(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path) as client:
        create_collection(client, "code", task="code")
        added = client.post("/v1/collections/code/documents", json={"text": "x = 1\n", "path": "a.py"})
        assert added.status_code == 201, added.text
        assert added.json()["content_hash"].startswith("sha256:")


def test_skip_unchanged_reads_the_unprefixed_hash_stored_before() -> None:
    """A text document stored with a bare hex hash (before the prefix) is unchanged for the prefixed form: the one
    skip-unchanged rule (``admit(skip_unchanged=True)``) answers the stored document; changed content is admitted."""
    stored = SimpleNamespace(doc_id="a.py", content_hash="ab12")
    store = SimpleNamespace(get_document=lambda _id: stored)

    def check(key: str) -> Any:
        admitted = admit(
            store,  # type: ignore[arg-type]
            "c",
            "a.py",
            key,
            replace=True,
            explicit_id=False,
            policy="allow",
            skip_unchanged=True,
        )
        return asyncio.run(admitted)

    assert check("sha256:ab12") is stored
    assert check("sha256:cd34") is None
