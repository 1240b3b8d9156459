"""``service.collections.indexing.Indexer``: the next step's pages render while this one embeds; failure drops them."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from model.processor import PreparedInput, Processor
from model.types import EmbeddingOutput
from service.collections.converters.base import PageLimits
from service.collections.embedder import EmbeddingModel
from service.collections.indexing import DocumentSource, Indexer, IndexOptions
from service.collections.writing import write_pages
from tests.service.helpers import pdf_bytes

HIDDEN = 64  # the tiny checkpoint's hidden size


class _Store:
    config = SimpleNamespace(dense_dim=HIDDEN, task="retrieval", unit_kind="page", ocr=None)

    def __init__(self) -> None:
        self.added: list[int] = []
        self.images: dict[int, bytes] = {}

    def get_document(self, document_id: str) -> None:
        return None

    def add_document(
        self,
        document_id: str,
        records: list[Any],
        metadata: Any,
        *,
        replace: bool,
        content_hash: str | None,
        original: Any = None,
        warnings: Any = (),
    ) -> str:
        self.added = [r.unit for r in records]
        self.images = {r.unit: r.image for r in records}
        return "info"


def _outputs(rows: list[PreparedInput]) -> list[EmbeddingOutput]:
    return [
        EmbeddingOutput(
            dense=np.ones(HIDDEN, np.float32) / np.sqrt(HIDDEN),
            multivector=np.ones((row.num_tokens, 8), np.float32),
            num_tokens=row.num_tokens,
        )
        for row in rows
    ]


@pytest.fixture
def processor(tiny_checkpoint: Path) -> Processor:
    return Processor.from_pretrained(tiny_checkpoint)


def _indexer(processor: Processor, embed: Any, pool: ThreadPoolExecutor) -> Indexer:
    options = IndexOptions(page_limits=PageLimits(dpi=36), pages_per_step=2)
    model = EmbeddingModel(processor, embed, pool, HIDDEN, (32,))
    return Indexer(model, options)


def _index(indexer: Indexer, store: _Store, tmp_path: Path, pages: int) -> Any:
    """Index a PDF of ``pages`` pages into ``store``."""
    source, numbers = indexer.plan_pages(DocumentSource(pdf_bytes(pages), "pdf"))
    assert numbers == list(range(1, pages + 1))
    return asyncio.run(write_pages(indexer, store, "doc", source, numbers))  # type: ignore[arg-type]


def test_pool_work_runs_beside_the_model(processor: Processor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.collections.indexing

    started: list[list[int]] = []  # the page numbers of each _prepare call, in the order they began
    overlapped: list[bool] = []
    embedding = [threading.Event() for _ in range(3)]  # set when step k's embed begins
    written_beside: list[bool] = []  # per write of a step's images: did the next step's embed begin meanwhile?
    stage = service.collections.indexing._with_images

    def stage_with_images(units: Any, records: list[Any], pictures: list[Any], store_images: bool) -> None:
        step = (records[0].unit - 1) // 2
        if step + 1 < 3:
            written_beside.append(embedding[step + 1].wait(10))
        stage(units, records, pictures, store_images)

    monkeypatch.setattr(service.collections.indexing, "_with_images", stage_with_images)

    async def embed(rows: list[PreparedInput]) -> list[EmbeddingOutput]:
        step = len(overlapped)
        embedding[step].set()
        if step + 1 < 3:  # 5 pages in steps of 2: the next step must start rendering before this one is embedded
            deadline = time.monotonic() + 10
            while len(started) < step + 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        overlapped.append(len(started) >= min(step + 2, 3))
        return _outputs(rows)

    with ThreadPoolExecutor(2) as pool:
        indexer = _indexer(processor, embed, pool)
        real = indexer._prepare
        lock = threading.Lock()

        def prepare(source: DocumentSource, numbers: list[int], spec: Any) -> Any:
            with lock:
                started.append(list(numbers))
            return real(source, numbers, spec)

        indexer._prepare = prepare  # type: ignore[method-assign]
        store = _Store()
        result = _index(indexer, store, tmp_path, 5)
    assert started == [[1, 2], [3, 4], [5]]
    assert overlapped == [True, True, True]
    assert written_beside == [True, True]  # steps 1 and 2 were written while steps 2 and 3 embedded
    assert store.added == [1, 2, 3, 4, 5]
    assert result.tokens > 0
    assert sorted(store.images) == [1, 2, 3, 4, 5]
    assert all(image[8:12] == b"WEBP" for image in store.images.values())  # each page's image, with its vectors


def test_a_failed_step_drops_the_one_prepared_ahead(
    processor: Processor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def embed(rows: list[PreparedInput]) -> list[EmbeddingOutput]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)  # the next step's prepare (which fails) is done by now
        raise RuntimeError("model down")

    with ThreadPoolExecutor(2) as pool:
        indexer = _indexer(processor, embed, pool)
        real = indexer._prepare

        def prepare(source: DocumentSource, numbers: list[int], spec: Any) -> Any:
            if numbers[0] > 1:
                raise ValueError("bad page")  # prepared ahead, never awaited: must not be logged as unretrieved
            return real(source, numbers, spec)

        indexer._prepare = prepare  # type: ignore[method-assign]
        store = _Store()
        with caplog.at_level(logging.ERROR, logger="asyncio"), pytest.raises(RuntimeError, match="model down"):
            _index(indexer, store, tmp_path, 4)
        gc.collect()
    assert calls == 1
    assert store.added == []  # nothing reached the store: no vectors, no images
    assert "never retrieved" not in caplog.text


def test_in_turn_when_asked(processor: Processor, tmp_path: Path) -> None:
    started: list[list[int]] = []
    seen: list[int] = []  # steps begun when each embed ran

    async def embed(rows: list[PreparedInput]) -> list[EmbeddingOutput]:
        await asyncio.sleep(0.1)
        seen.append(len(started))
        return _outputs(rows)

    with ThreadPoolExecutor(2) as pool:
        indexer = _indexer(processor, embed, pool)
        indexer.options = IndexOptions(page_limits=PageLimits(dpi=36), pages_per_step=2, prepare_ahead=False)
        real = indexer._prepare

        def prepare(source: DocumentSource, numbers: list[int], spec: Any) -> Any:
            started.append(list(numbers))
            return real(source, numbers, spec)

        indexer._prepare = prepare  # type: ignore[method-assign]
        store = _Store()
        _index(indexer, store, tmp_path, 5)
    assert seen == [1, 2, 3]  # nothing prepared ahead: one step's rows at a time
    assert store.added == [1, 2, 3, 4, 5]
