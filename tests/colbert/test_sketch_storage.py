"""How sketches are stored (:mod:`colbert.local.sketch_codec`): new indexes store the int8 form a handle holds, older
(float16) indexes keep being read and written, ``vacuum`` converts them, exports carry float16 either way, and a
damaged row is a clear error. What a handle holds, and so what the pooled first stage answers, is the same in all."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.errors import IndexFormatError
from colbert.local import LocalOptions, LocalStore
from colbert.local import schema as _schema
from colbert.local.dense import DenseRows
from colbert.local.sketch import page_sketch, quantize_sketches, widen_sketches
from colbert.local.sketch_codec import encode_sketches, export_rows, held_sketches, sketch_row_bytes
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from colbert.transfer import export_collection, import_collection

D, K, DENSE = 16, 8, 12
CONFIG = CollectionConfig(dense_dim=DENSE, multivector_dim=D, codec=Codec.BINARY)
POOLED = LocalOptions(first_stage="pooled", sketch_vectors=K)


def _pages(seed: int, docs: int) -> list[tuple[str, list[UnitRecord]]]:
    rng = np.random.default_rng(seed)
    out = []
    for j in range(docs):
        units = [
            UnitRecord(
                u, rng.normal(size=DENSE).astype(np.float32), rng.normal(size=(30 + 7 * u, D)).astype(np.float32)
            )
            for u in range(3)
        ]
        out.append((f"doc-{seed}-{j}", units))
    return out


def _store(path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, docs: int = 4) -> LocalStore:
    """A store whose sketches are written as ``codec`` (float16: exactly as before the ``sketch_codec`` key)."""
    with monkeypatch.context() as m:
        m.setitem(_schema.create_schema.__kwdefaults__, "sketch_codec", codec)
        store = LocalStore.create(path, CONFIG, POOLED)
    for doc_id, units in _pages(0, docs):
        store.add_document(doc_id, units)
    return store


def _held(store: LocalStore) -> DenseRows:
    with store._read() as conn:
        return store._snapshot_for(conn).rows


def _rows(path: Path) -> tuple[str | None, list[int]]:
    conn = sqlite3.connect(path / _schema.DB_FILE)
    try:
        meta = conn.execute("SELECT value FROM meta WHERE key = 'sketch_codec'").fetchone()
        sizes = [int(r[0]) for r in conn.execute("SELECT length(data) FROM sketches ORDER BY page_id")]
    finally:
        conn.close()
    return None if meta is None else str(meta[0]), sizes


def _search(store: LocalStore) -> list[tuple[str, int, float]]:
    q = _pages(0, 1)[0][1][1].multivector[:5]
    hits = store.search(Query(q, None), SearchOptions(k=6, candidates=6))
    return [(h.doc_id, h.unit, h.score) for h in hits]


def test_new_index_stores_the_held_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of k·d + 4·k bytes under the meta key; held codes and scales equal an old (float16) index's for the
    same documents bit for bit, and both equal quantize_sketches of the float16 page sketch."""
    new = _store(tmp_path / "new", monkeypatch, "int8")
    old = _store(tmp_path / "old", monkeypatch, "float16")
    assert _rows(tmp_path / "new") == ("int8", [K * D + 4 * K] * 12)
    assert _rows(tmp_path / "old") == (None, [K * D * 2] * 12)
    a, b = _held(new), _held(old)
    np.testing.assert_array_equal(a.sketch, b.sketch)
    np.testing.assert_array_equal(a.scales, b.scales)
    mv = _pages(0, 1)[0][1][2].multivector
    codes, scales = quantize_sketches(page_sketch(mv, K).astype(np.float16)[None])
    np.testing.assert_array_equal(a.sketch[2], codes[0])
    np.testing.assert_array_equal(a.scales[2], scales[0])
    assert _search(new) == _search(old)
    new.close()
    old.close()


def test_old_index_is_read_and_written_as_float16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A float16 index reopened by this code: its rows stay float16 (new documents too), searches answer as a
    new index holding the same documents."""
    _store(tmp_path / "old", monkeypatch, "float16").close()
    old = LocalStore.open(tmp_path / "old", options=POOLED)
    new = _store(tmp_path / "new", monkeypatch, "int8")
    for doc_id, units in _pages(1, 2):
        old.add_document(doc_id, units)
        new.add_document(doc_id, units)
    assert _rows(tmp_path / "old") == (None, [K * D * 2] * 18)
    np.testing.assert_array_equal(_held(old).sketch, _held(new).sketch)
    assert _search(old) == _search(new)
    old.close()
    new.close()


def test_vacuum_converts_float16_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vacuum rewrites every float16 row as int8 and records the codec; a handle opened before holds the same
    values, keeps syncing and writes int8 rows after; the file shrinks; a second vacuum converts nothing."""
    old = _store(tmp_path / "old", monkeypatch, "float16", docs=30)
    other = LocalStore.open(tmp_path / "old", options=POOLED)  # another handle, opened before the conversion
    held, answers = _held(other), _search(other)
    before, after = old.vacuum()
    assert after < before
    assert _rows(tmp_path / "old") == ("int8", [K * D + 4 * K] * 90)
    for doc_id, units in _pages(2, 1):
        other.add_document(doc_id, units)  # its writes follow the stored codec, not the one it opened with
    assert _rows(tmp_path / "old")[1] == [K * D + 4 * K] * 93
    assert _search(old) == answers
    reopened = LocalStore.open(tmp_path / "old", options=POOLED)
    for h in (old, other, reopened):
        rows = _held(h)
        np.testing.assert_array_equal(rows.sketch[:90], held.sketch)
        np.testing.assert_array_equal(rows.scales[:90], held.scales)
        assert rows.sketch.shape[0] == 93
    np.testing.assert_array_equal(_held(reopened).sketch, _held(old).sketch)
    old.vacuum()
    assert _rows(tmp_path / "old")[0] == "int8"
    for h in (old, other, reopened):
        h.close()


def test_export_carries_float16_and_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export from an int8 index and from a float16 one: float16 sketches of k × d; imported into a new index the
    held sketches are the source's bit for bit, and from an int8 source the re-export equals the export."""
    with Catalog(tmp_path / "a", local_options=POOLED) as source, Catalog(tmp_path / "b", local_options=POOLED) as b:
        for name, codec in (("new", "int8"), ("old", "float16")):
            with monkeypatch.context() as m:
                m.setitem(_schema.create_schema.__kwdefaults__, "sketch_codec", codec)
                store = source.create(name, CONFIG)
            assert isinstance(store, LocalStore)
            for doc_id, units in _pages(0, 3):
                store.add_document(doc_id, units)
            export_collection(source, name, tmp_path / f"{name}.tar.gz")
            import_collection(b, tmp_path / f"{name}.tar.gz", name=f"copy-{name}")
            copy = b.get(f"copy-{name}")
            assert isinstance(copy, LocalStore)
            assert _rows(copy.directory) == ("int8", [K * D + 4 * K] * 9)
            np.testing.assert_array_equal(_held(copy).sketch, _held(store).sketch)
            np.testing.assert_array_equal(_held(copy).scales, _held(store).scales)
            export_collection(b, f"copy-{name}", tmp_path / f"again-{name}.tar.gz")
            again = _sketch_members(tmp_path / f"again-{name}.tar.gz")
            if codec == "int8":  # a float16 source's sketches come back as its int8 rows' widening instead
                assert again == _sketch_members(tmp_path / f"{name}.tar.gz")
            assert {len(v) for v in again.values()} == {K * D * 2}


def _sketch_members(path: Path) -> dict[str, bytes]:
    import tarfile

    with tarfile.open(path) as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.name.endswith(".sketch")
        }


def test_int8_rows_survive_the_float16_export_form() -> None:
    """The argument of the module docstring, over many centroids of very different magnitudes (and a zero one):
    int8 row → float16 → int8 row is the identity."""
    rng = np.random.default_rng(3)
    half = (rng.normal(size=(500, K, D)) * rng.uniform(1e-4, 50, size=(500, K, 1))).astype(np.float16)
    half[7, 3] = 0
    rows = encode_sketches(half, "int8")
    data = b"".join(rows)
    again = encode_sketches(
        np.frombuffer(b"".join(export_rows(data, 500, K, D, "int8")), np.float16).reshape(500, K, D), "int8"
    )
    assert again == rows
    codes, scales = held_sketches(data, 500, K, D, "int8")
    np.testing.assert_array_equal(widen_sketches(codes, scales), widen_sketches(*quantize_sketches(half)))
    assert sketch_row_bytes("int8", K, D) == len(rows[0])


def _nan_scale(conn: sqlite3.Connection) -> None:
    data = bytearray(conn.execute("SELECT data FROM sketches WHERE page_id = 2").fetchone()[0])
    data[K * D : K * D + 4] = np.array([np.nan], dtype="<f4").tobytes()  # the first centroid's scale
    conn.execute("UPDATE sketches SET data = ? WHERE page_id = 2", (bytes(data),))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "UPDATE sketches SET data = substr(data, 1, 100) WHERE page_id = 2",
            "index.sqlite: stored int8 sketches hold .* bytes, expected 12 × 160",
        ),
        (_nan_scale, "not a finite number"),
        ("UPDATE meta SET value = 'int4' WHERE key = 'sketch_codec'", "sketch_codec='int4'"),
    ],
)
def test_damaged_sketch_rows_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str | Callable[[sqlite3.Connection], None], message: str
) -> None:
    """A sketch row of the wrong size, a scale that is not a number, a codec name this code does not know: a
    typed error naming the problem when the pooled first stage loads them (checked on load: no checksum)."""
    _store(tmp_path / "a", monkeypatch, "int8").close()
    conn = sqlite3.connect(tmp_path / "a" / _schema.DB_FILE)
    if isinstance(damage, str):
        conn.execute(damage)
    else:
        damage(conn)
    conn.commit()
    conn.close()
    with pytest.raises(IndexFormatError, match=message):
        LocalStore.open(tmp_path / "a", options=POOLED)
