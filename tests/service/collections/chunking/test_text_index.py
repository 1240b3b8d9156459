"""Text documents in a real embedded store: chunk units with their info, atomic replace, skip-unchanged by hash,
bad input refused before anything is written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from colbert.local import LocalStore
from colbert.store import CollectionConfig
from model.types import PromptType, Task, TaskSpec
from service.collections.duplicates import admit
from service.collections.late import LateChunker
from service.collections.texts import TextIndexer, TextOptions, TextSource
from service.collections.writing import write_text
from service.errors import PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError
from tests.service.collections.chunking.conftest import DATA

CODE = TaskSpec(Task.CODE, PromptType.PASSAGE)


@pytest.fixture
def store(tmp_path: Path, tiny_encoder: Any) -> Iterator[LocalStore]:
    s = LocalStore.create(tmp_path / "code", CollectionConfig(dense_dim=tiny_encoder.info.hidden_size))
    yield s
    s.close()


@pytest.fixture(scope="module")
def indexer(tiny_encoder: Any) -> Iterator[TextIndexer]:
    calls: list[int] = []

    async def embed_late(late: Any) -> Any:
        calls.append(late.prepared.num_tokens)
        return tiny_encoder.embed_late_chunks(late, return_multivector=True)

    chunker = LateChunker(tiny_encoder.processor, embed_late)
    with ThreadPoolExecutor(1) as pool:
        ix = TextIndexer(
            chunker,
            pool,
            TextOptions(max_bytes=2_000_000),
            hidden_size=tiny_encoder.info.hidden_size,
            matryoshka_dims=tiny_encoder.info.matryoshka_dims,
        )
        ix.calls = calls  # type: ignore[attr-defined]
        yield ix


def _index(
    indexer: TextIndexer, store: LocalStore, doc: str, source: TextSource, *, replace: bool = False, **kwargs: Any
) -> Any:
    """Plan, admit and write one text document as ``Collections.add_document`` does; ``skip_unchanged``: answer
    the stored document (``skipped``) when the admission check finds it unchanged."""

    async def run() -> Any:
        planned = await indexer.prepared(source, CODE)
        existing = await admit(
            store,
            "code",
            doc,
            planned.content_hash,
            replace=replace,
            explicit_id=True,
            policy="allow",
            skip_unchanged=kwargs.pop("skip_unchanged", False),
        )
        if existing is not None:
            return SimpleNamespace(document=existing, tokens=0, skipped=True)
        written = await write_text(indexer, store, doc, planned, CODE, replace=replace, **kwargs)
        return SimpleNamespace(document=written.document, tokens=written.tokens, skipped=False)

    return asyncio.run(run())


def test_chunks_stored_with_text_and_info(indexer: TextIndexer, store: LocalStore) -> None:
    data = (DATA / "sample.py").read_bytes()
    result = _index(indexer, store, "sample.py", TextSource(data, "pkg/sample.py"))
    assert result.document.num_units == 5
    assert result.document.metadata == {"path": "pkg/sample.py", "language": "python"}
    unit = store.get_unit("sample.py", 3)
    assert unit is not None
    assert unit.kind == "chunk"
    assert unit.metadata["name"] == "Encoder.encode_text"
    assert unit.metadata["lines"] == [14, 17]
    assert unit.metadata["chunk_kind"] == "method"
    assert unit.metadata["path"] == "pkg/sample.py"
    start, end = unit.metadata["char_span"]
    assert unit.text == data.decode()[start:end]
    assert unit.text is not None
    assert unit.text.startswith("@staticmethod")


def test_replace_is_atomic_and_unchanged_files_are_skipped(indexer: TextIndexer, store: LocalStore) -> None:
    calls: list[int] = indexer.calls  # type: ignore[attr-defined]
    first = (DATA / "sample.py").read_bytes()
    _index(indexer, store, "doc", TextSource(first, "a.py"))
    before = len(calls)
    again = _index(indexer, store, "doc", TextSource(first, "a.py"), replace=True, skip_unchanged=True)
    assert again.skipped
    assert len(calls) == before  # nothing embedded
    changed = first.replace(b"def make_encoder", b"def build_encoder")
    result = _index(indexer, store, "doc", TextSource(changed, "a.py"), replace=True, skip_unchanged=True)
    assert not result.skipped
    names = [store.get_unit("doc", k).metadata.get("name") for k in range(result.document.num_units)]  # type: ignore[union-attr]
    assert "build_encoder" in names
    assert "make_encoder" not in names
    assert store.count() == (1, result.document.num_units)


def test_a_failure_mid_document_leaves_the_old_version(
    indexer: TextIndexer, store: LocalStore, tiny_encoder: Any
) -> None:
    _index(indexer, store, "doc", TextSource((DATA / "sample.go").read_bytes(), "s.go"))
    before = store.get_document("doc")

    async def broken(late: Any) -> Any:
        raise RuntimeError("the model failed")

    failing = TextIndexer(
        LateChunker(tiny_encoder.processor, broken, window=1024, overlap=0),
        indexer.pool,
        TextOptions(),
        hidden_size=indexer.hidden_size,
        matryoshka_dims=indexer.matryoshka_dims,
    )
    with pytest.raises(RuntimeError):
        _index(failing, store, "doc", TextSource((DATA / "sample.rs").read_bytes(), "s.rs"), replace=True)
    after = store.get_document("doc")
    assert after == before


@pytest.mark.parametrize(
    ("source", "error", "words"),
    [
        (TextSource(b"\x7fELF\x02\x01\x00\x00", "tool.py"), UnsupportedMediaTypeError, "binary"),
        (TextSource(b"x = 1\n" * 400_000, "big.py"), PayloadTooLargeError, "JEV4_MAX_TEXT_BYTES"),
        (TextSource(b"hello", "notes.weird"), UnsupportedMediaTypeError, "send language"),
        (TextSource(b"hello", "x", language="klingon"), UnprocessableError, "language must be one of"),
        (TextSource(b"  \n\n ", "empty.md"), UnprocessableError, "no text"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    indexer: TextIndexer, store: LocalStore, source: TextSource, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        _index(indexer, store, "bad", source)
    assert store.get_document("bad") is None


def test_invalid_utf8_is_replaced_and_said(indexer: TextIndexer, store: LocalStore) -> None:
    result = _index(indexer, store, "latin", TextSource(b"# caf\xe9\ndef f():\n    return 1\n", "l.py"))
    assert result.document.metadata["encoding_errors"] == 1


@pytest.mark.parametrize(
    "repeats", [pytest.param(30_000, id="90k-chars"), pytest.param(333_333, id="1M-chars", marks=pytest.mark.slow)]
)
def test_a_very_long_line_is_indexed_whole(indexer: TextIndexer, store: LocalStore, repeats: int) -> None:
    data = b"x = '" + b"ab " * repeats + b"'\n"
    result = _index(indexer, store, "long", TextSource(data, "long.py"))
    units = [store.get_unit("long", k) for k in range(result.document.num_units)]
    assert all(u is not None and u.kind == "chunk" for u in units)
    assert sum(len(u.text or "") for u in units if u is not None) == len(data.decode().strip())
    dense = np.stack([u.dense for u in units if u is not None])
    assert np.isfinite(dense).all()
