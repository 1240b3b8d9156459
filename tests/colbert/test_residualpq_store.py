"""The product-quantized residual codecs in a collection (``residualpq2``, ``residualpq1``): a collection moves to
and from them by ``Catalog.recode`` keeping every document, and the Qdrant backend refuses them as it refuses the
other residual codecs (that their search scores the stored values: ``test_residual_store.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.codebook import PQ_LEVELS
from colbert.errors import CodecError
from colbert.quantize import Codec, bytes_per_row, needs_codebook, train_codebook
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_recode import _everything, _fill, _text_answers
from tests.colbert.test_residual_store import DENSE, D, naive, topic_pages


def test_sizes_and_training() -> None:
    assert [bytes_per_row(c, 128) for c in ("residualpq2", "residualpq1")] == [34, 18]
    assert needs_codebook("residualpq1")
    book = train_codebook("residualpq2", np.concatenate(topic_pages(4, 4)), k=8)
    assert (book.levels, book.width, book.k) == (PQ_LEVELS, 4, 8)
    with pytest.raises(CodecError, match="has no codebook"):
        train_codebook("int8", np.zeros((4, 8), np.float32))


def test_recode_float16_residualpq1_residual2_keeps_every_document(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D, codec="float16"))  # type: ignore[arg-type]
        pages = _fill(store)
        kept, answers = _everything(store), _text_answers(store)
        for codec in ("residualpq1", "residual2", "residualpq2"):
            result = catalog.recode("lib", codec)
            assert "recoded 9 documents" in result.note
            recoded = catalog.get("lib")
            assert str(recoded.config.codec) == codec
            assert _everything(recoded) == kept
            assert _text_answers(recoded) == answers
            q = pages[9][:6]
            hits = recoded.search(Query(q, None), SearchOptions(k=18, exhaustive=True))
            assert len(hits) == 18
            for h in hits:
                stored = recoded.get_unit(h.doc_id, h.unit).multivector  # type: ignore[union-attr]
                assert h.score == pytest.approx(naive(q, stored), rel=1e-4, abs=1e-4)
    with Catalog(tmp_path) as again:
        assert str(again.get("lib").config.codec) == "residualpq2"
        assert again.get("lib").codebook().width == 4  # type: ignore[attr-defined]


def test_qdrant_refuses_them(tmp_path: Path) -> None:
    with Catalog(tmp_path, backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog:
        for codec in (Codec.RESIDUALPQ2, Codec.RESIDUALPQ1):
            with pytest.raises(CodecError, match=f"Qdrant backend cannot store codec {codec.value}"):
                catalog.create("r", CollectionConfig(DENSE, D, codec=codec))
