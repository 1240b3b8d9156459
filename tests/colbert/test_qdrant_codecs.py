"""The codecs on Qdrant (:mod:`colbert.qdrant.codecs`), in qdrant-client's local mode: the ``mv`` vector as
created carries each codec's datatype and quantized copy, a server is sent the search parameters that keep the
scores on the stored originals, the stored values are the codec's, and a codec Qdrant cannot store is refused
before anything is created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.errors import CodecError
from colbert.hybrid import SearchMode
from colbert.qdrant import QdrantStore
from colbert.qdrant.codecs import maxsim_params, storage_of
from colbert.qdrant.store import QdrantOptions
from colbert.quantize import CODEBOOK_FREE, Codec, decode, encode
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from tests.colbert.store_backends import DENSE, QDRANT_KINDS, Backend, D

EXPECTED = {  # codec: (originals' datatype, quantized copy's type)
    Codec.FLOAT32: (qm.Datatype.FLOAT32, None),
    Codec.FLOAT16: (qm.Datatype.FLOAT16, None),
    Codec.INT8: (qm.Datatype.FLOAT16, qm.ScalarQuantization),
    Codec.BINARY: (qm.Datatype.FLOAT16, qm.BinaryQuantization),
}


def unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _pages(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [unit(rng.standard_normal((6 + i % 3, D)).astype(np.float32)) for i in range(n)]


def _add(store: QdrantStore, pages: list[np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    for i, mv in enumerate(pages):
        dense = unit(rng.standard_normal(DENSE).astype(np.float32))
        store.add_document(f"d{i}", [UnitRecord(1, dense, mv, text=f"page {i}")])


@pytest.fixture(params=QDRANT_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    b.cleanup()


@pytest.mark.parametrize("codec", list(EXPECTED))
def test_the_collection_as_created_carries_the_codecs_storage(backend: Backend, codec: Codec) -> None:
    store = backend.make(CollectionConfig(DENSE, D, codec=codec))
    assert isinstance(store, QdrantStore)
    client = store.client
    mv = client.get_collection(store.name).config.params.vectors["mv"]  # type: ignore[index]
    datatype, quantized = EXPECTED[codec]
    assert mv.datatype == datatype
    assert mv.on_disk is True  # the originals on disk (QdrantOptions.multivector_on_disk)
    assert mv.hnsw_config is not None
    assert mv.hnsw_config.m == 0
    assert mv.multivector_config is not None
    assert mv.multivector_config.comparator == qm.MultiVectorComparator.MAX_SIM
    if quantized is None:
        assert mv.quantization_config is None
    else:
        assert isinstance(mv.quantization_config, quantized)
    if isinstance(mv.quantization_config, qm.ScalarQuantization):
        assert mv.quantization_config.scalar.type == qm.ScalarType.INT8
        assert mv.quantization_config.scalar.always_ram is True
    if isinstance(mv.quantization_config, qm.BinaryQuantization):
        assert mv.quantization_config.binary.always_ram is True
        assert mv.quantization_config.binary.query_encoding == qm.BinaryQuantizationQueryEncoding.SCALAR8BITS


@pytest.mark.parametrize("codec", ["residual2", "residual1"])
def test_a_codec_qdrant_cannot_store_is_refused_naming_those_it_can(codec: str) -> None:
    client = QdrantClient(":memory:")
    with pytest.raises(CodecError) as raised:
        QdrantStore.create(client, "c", CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"cannot store codec {codec}" in message
    assert all(repr(c) in message for c in CODEBOOK_FREE)  # what to send instead
    assert "embedded backend" in message
    assert client.get_collections().collections == []  # refused before anything was created


@pytest.mark.parametrize("codec", [Codec.INT8, Codec.BINARY])
def test_the_stored_originals_are_the_codecs_values_and_rank_as_exact_maxsim(codec: Codec) -> None:
    client = QdrantClient(":memory:")
    store = QdrantStore.create(client, "c", CollectionConfig(DENSE, D, codec=codec))
    pages = _pages(12)
    _add(store, pages)
    coded = [decode(encode(p, codec), p.shape[0], D, codec) for p in pages]  # (n, D) each: what is stored
    for i, expected in enumerate(coded):
        got = store.get_unit(f"d{i}", 1)
        assert got is not None
        np.testing.assert_allclose(got.multivector, expected, atol=1e-6)  # local mode keeps them as float32
    q = unit(pages[5][:3] + 0.1)  # (3, D)
    exact = sorted(((float((q @ c.T).max(axis=1).sum()), f"d{i}") for i, c in enumerate(coded)), reverse=True)
    hits = store.search(Query(q, None), SearchOptions(k=5, exhaustive=True))
    assert [h.doc_id for h in hits] == [d for _, d in exact[:5]]
    assert [h.score for h in hits] == pytest.approx([s for s, _ in exact[:5]], abs=1e-5)


def test_a_server_is_sent_rescoring_parameters_local_mode_none() -> None:
    remote = QdrantClient(url="http://127.0.0.1:9", check_compatibility=False)  # never contacted
    for codec in (Codec.FLOAT32, Codec.FLOAT16):
        assert maxsim_params(remote, storage_of(codec), 4.0) == maxsim_params(
            QdrantClient(":memory:"), storage_of(codec), 4.0
        )
    for codec in (Codec.INT8, Codec.BINARY):
        params = maxsim_params(remote, storage_of(codec), 3.0)
        assert params.narrowed == qm.SearchParams(
            quantization=qm.QuantizationSearchParams(ignore=False, rescore=True, oversampling=3.0)
        )
        assert params.exact == qm.SearchParams(quantization=qm.QuantizationSearchParams(ignore=True))
        with pytest.raises(ValueError, match="at least 1"):
            maxsim_params(remote, storage_of(codec), 0.5)
        local = maxsim_params(QdrantClient(":memory:"), storage_of(codec), 3.0)
        assert local.narrowed is None
        assert local.exact is None


class _AsIfRemote:
    """A local-mode client that says it is a server's and records the search parameters of each query (then
    drops them, as local mode would only warn about them)."""

    def __init__(self) -> None:
        self._client = QdrantClient(":memory:")
        self.init_options = {**self._client.init_options, "location": None, "url": "http://qdrant:6333"}
        self.sent: list[tuple[bool, qm.SearchParams | None]] = []

    def query_points(self, *args: Any, search_params: qm.SearchParams | None = None, **kwargs: Any) -> Any:
        self.sent.append((kwargs.get("prefetch") is not None, search_params))
        return self._client.query_points(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_the_rerank_of_dense_candidates_is_narrowed_exhaustive_and_hybrid_score_every_candidate() -> None:
    client = _AsIfRemote()
    options = QdrantOptions(rescore_oversampling=2.5)
    store = QdrantStore.create(client, "c", CollectionConfig(DENSE, D, codec=Codec.BINARY), options)  # type: ignore[arg-type]
    _add(store, _pages(8))
    expected = maxsim_params(client, storage_of(Codec.BINARY), 2.5)  # type: ignore[arg-type]
    assert expected.narrowed is not None
    assert expected.exact is not None
    q, dense = unit(_pages(1, seed=3)[0]), unit(np.ones(DENSE, dtype=np.float32))
    client.sent.clear()
    assert store.search(Query(q, dense), SearchOptions(k=3, candidates=6))
    assert client.sent
    assert all(s == (True, expected.narrowed) for s in client.sent)
    client.sent.clear()
    assert store.search(Query(q, dense), SearchOptions(k=3, exhaustive=True))
    assert client.sent
    assert all(s == (False, expected.exact) for s in client.sent)
    client.sent.clear()
    assert store.search(Query(q, dense, text="page"), SearchOptions(k=3, candidates=6, mode=SearchMode.HYBRID))
    maxsim_queries = [s for s in client.sent if s[1] is not None]
    assert maxsim_queries
    assert all(s == (False, expected.exact) for s in maxsim_queries)
