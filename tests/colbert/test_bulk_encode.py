"""The bulk path's encoding (:mod:`colbert.local.sketch`'s batched k-means, :mod:`colbert.local.bulk`'s encoding
ahead of the writer): the same results as a plain per-page computation and as one batch at a time."""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import DimensionMismatchError, DocumentExistsError
from colbert.local import LocalStore
from colbert.local.bulk import add_document_batches, add_documents
from colbert.local.sketch import page_sketches
from colbert.quantize import Codec
from colbert.store import CollectionConfig, NewDocument, UnitRecord

sys.path.insert(0, str(Path(__file__).parent))
from durability_writer import DENSE, DIM, original_for, pages_for
from test_local_durability import check_whole, killed_round

CONFIG = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=Codec.FLOAT32)
WRITER = Path(__file__).with_name("bulk_batches_writer.py")  # bulk_writer.py's batches, two encoding threads


def _reference_sketch(x: np.ndarray, k: int, iterations: int = 5) -> np.ndarray:
    """The sketch of one page written out plainly (sketch module docstring): farthest-first start, spherical
    k-means rounds until no token moves, centroids scaled by their cluster's mean token norm."""
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.maximum(norms, 1e-12)[:, None]
    chosen = [0]
    for _ in range(1, k):
        chosen.append(int(np.argmin((unit @ unit[chosen].T).max(axis=1))))
    centroids = unit[chosen].copy()
    assign = np.full(x.shape[0], -1)
    for _ in range(iterations):
        new = (unit @ centroids.T).argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            if (assign == c).any():
                s = unit[assign == c].sum(axis=0)
                centroids[c] = s / np.linalg.norm(s)
    scale = np.array([norms[assign == c].mean() if (assign == c).any() else norms.mean() for c in range(k)])
    out: np.ndarray = (centroids * scale[:, None]).astype(np.float32)
    return out


def test_batched_sketches_equal_a_plain_per_page_k_means() -> None:
    rng = np.random.default_rng(3)
    topics = rng.normal(size=(6, 32))
    pages = []
    for n in (9, 50, 200, 333, 64, 120, 700, 12):  # lengths that pad within a block and across blocks
        x = topics[rng.integers(0, 6, n)] + rng.normal(scale=0.7, size=(n, 32))
        pages.append((x * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32))
    # 3 directions, 4 copies each with norms 1..3: farthest-first repeats a centroid, every token ties between
    # two of them and goes to the first (an empty duplicate takes the page's mean norm)
    pages.append(np.repeat(np.eye(32, dtype=np.float32)[:3] * np.array([[1], [2], [3]], np.float32), 4, axis=0))
    for x, got in zip(pages, page_sketches(pages, 8), strict=True):
        np.testing.assert_allclose(got, _reference_sketch(x, 8), atol=1e-5)


def _docs(versions: range) -> list[NewDocument]:
    return [NewDocument(f"d{v}", pages_for(v), {"version": v}, original=original_for(v)) for v in versions]


def _stored(directory: Path) -> list[tuple[object, ...]]:
    """Every unit's stored parts (dense, codes, sketch, centroid ids) and every document, in rowid order."""
    conn = sqlite3.connect(directory / "index.sqlite")
    try:
        units = conn.execute(
            "SELECT p.doc_id, p.page, p.metadata, p.dense, m.n, m.data, s.data, c.data FROM pages p "
            "JOIN multivectors m ON m.page_id = p.id JOIN sketches s ON s.page_id = p.id "
            "LEFT JOIN unit_centroids c ON c.page_id = p.id ORDER BY p.id"
        ).fetchall()
        docs = conn.execute("SELECT doc_id, num_pages, metadata FROM documents ORDER BY rowid").fetchall()
        return [*units, *docs]
    finally:
        conn.close()


@pytest.mark.parametrize("codec", [Codec.INT8, Codec.BINARY, Codec.RESIDUAL1])
@pytest.mark.parametrize("workers", [1, 3])
def test_batches_store_the_bytes_add_documents_stores(tmp_path: Path, codec: Codec, workers: int) -> None:
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=codec)
    one, many = LocalStore.create(tmp_path / "one", config), LocalStore.create(tmp_path / "many", config)
    batches = [_docs(range(i, i + 3)) for i in range(1, 22, 3)]  # a residual codebook: trained on the first batch
    for b in batches:
        add_documents(one, b)
    got = list(add_document_batches(many, iter(batches), workers=workers))
    assert [[i.doc_id for i in infos] for infos in got] == [[d.doc_id for d in b] for b in batches]
    one.close()
    many.close()
    assert _stored(tmp_path / "many") == _stored(tmp_path / "one")


def _write_all(store: LocalStore, stream: list[list[NewDocument]], written: list[str]) -> None:
    for infos in add_document_batches(store, stream, workers=2):
        written += [i.doc_id for i in infos]


def test_a_refused_batch_stops_the_stream_after_the_batches_before_it(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "idx", CONFIG)
    add_documents(store, _docs(range(100, 101)))
    bad = NewDocument("bad", [UnitRecord(0, np.ones(DENSE, np.float32), np.ones((3, DIM + 1), np.float32))])
    streams: list[tuple[list[list[NewDocument]], type[Exception]]] = [
        (
            [_docs(range(1, 3)), _docs(range(3, 5)), [*_docs(range(5, 6)), bad], _docs(range(6, 8))],
            DimensionMismatchError,
        ),
        ([_docs(range(10, 12)), _docs(range(99, 101)), _docs(range(12, 14))], DocumentExistsError),
    ]
    for stream, error in streams:
        written: list[str] = []
        with pytest.raises(error):
            _write_all(store, stream, written)
        assert written == [d.doc_id for b in stream[: len(stream) - 2] for d in b]
        assert {d.doc_id for d in store.list_documents(limit=100)} >= set(written)
        for d in [d for b in stream[len(stream) - 2 :] for d in b]:
            assert d.doc_id == "d100" or store.get_document(d.doc_id) is None
    with pytest.raises(ValueError, match="workers"):
        add_document_batches(store, [], workers=0)
    assert list(add_document_batches(store, [])) == []
    store.close()


def test_kill_9_while_batches_are_encoded_ahead_keeps_whole_documents(tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    LocalStore.create(directory, CONFIG).close()
    rnd = random.Random(7)
    acked: dict[str, int] = {}
    start = 0
    for _round in range(3):
        pause = rnd.uniform(0.05, 0.8)
        acked.update(killed_round(directory, start, pause, reader=None, writer=WRITER))
        start = (check_whole(directory, acked) // 3 + 1) * 3
