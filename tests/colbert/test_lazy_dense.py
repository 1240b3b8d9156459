"""The dense rows are held like the sketches: from the open when the handle's default first stage reads them
(dense), else loaded whole by the first search that does (a dense first stage, a pooled one with a dense
prefetch). Whatever a handle holds, it answers bit for bit as a handle that held everything from the open."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colbert.hybrid import SearchMode
from colbert.local import LocalOptions, LocalStore
from colbert.local import dense as _dense
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, Hit, UnitRecord

DIM, D, K = 24, 16, 4  # dense dims, token dims, sketch centroids
CONFIG = CollectionConfig(dense_dim=DIM, multivector_dim=D, codec=Codec.FLOAT32)
DENSE_ROW = DIM + 4  # an int8 row and its float32 norm


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _add(store: LocalStore, rng: np.random.Generator, names: list[str]) -> None:
    for name in names:
        recs = [UnitRecord(p, _unit(rng.normal(size=DIM)), _unit(rng.normal(size=(12, D)))) for p in range(2)]
        store.add_document(name, recs, {"even": len(name) % 2 == 0})


def _collection(path: Path, docs: int = 24, *, cells: bool = False, retained: int = 100_000) -> LocalStore:
    """A writer handle (dense default) on a new collection of ``docs`` two-unit documents, its cells trained."""
    LocalStore.create(path, CONFIG, LocalOptions(dense_codec="int8", sketch_vectors=K)).close()
    writer = LocalStore.open(path, options=LocalOptions(deletions_retained=retained))
    _add(writer, np.random.default_rng(0), [f"d{j}" for j in range(docs)])
    if cells:
        writer.train_cells(k=4)
    return writer


def _plans(cells: bool) -> list[SearchOptions]:
    """Searches of every first stage that reads the snapshot; the query always has its dense vector."""
    plans = [
        SearchOptions(k=5, candidates=8, first_stage="pooled"),
        SearchOptions(k=5, candidates=8, first_stage="pooled", query_groups=2),
        SearchOptions(k=5, candidates=8, first_stage="pooled", prefetch=20),
        SearchOptions(k=5, candidates=8, first_stage="dense"),
        SearchOptions.of(k=5, candidates=8, first_stage="dense", filter={"even": True}),
    ]
    return plans + ([SearchOptions(k=5, candidates=8, first_stage="pooled_ivf", prefetch=16)] if cells else [])


def _query(seed: int) -> Query:
    rng = np.random.default_rng(seed)
    return Query(_unit(rng.normal(size=(5, D))), _unit(rng.normal(size=DIM)))


def _answers(store: LocalStore, plans: list[SearchOptions], queries: int = 3) -> list[list[Hit]]:
    return [store.search(_query(s), o) for o in plans for s in range(queries)]


def _holds_dense(store: LocalStore) -> bool:
    snap = store._snapshot
    assert snap is not None
    return snap.holds_dense


@pytest.mark.parametrize("stage", ["pooled", "pooled_ivf"])
def test_a_pooled_process_holds_no_dense_rows_until_a_search_reads_them(tmp_path: Path, stage: str) -> None:
    """Opened for pooled (or pooled_ivf) search, a handle holds the sketches and no dense rows (its memory is
    smaller by exactly their bytes) through pooled searches, text and exhaustive ones; the first dense search
    loads them, and every answer before and after equals a handle's that held them from the open."""
    writer = _collection(tmp_path / "a", cells=stage == "pooled_ivf")
    full = LocalStore.open(tmp_path / "a")  # dense by default: held from the open
    want = _answers(full, _plans(stage == "pooled_ivf"))  # and the sketches from its first pooled search
    n = full.stats().pages
    lazy = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage=stage))
    assert lazy.stats().memory_bytes == full.stats().memory_bytes - n * DENSE_ROW
    pooled = [o for o in _plans(stage == "pooled_ivf") if o.first_stage != "dense" and o.prefetch is None]
    assert _answers(lazy, pooled) == _answers(full, pooled)
    q = _query(7)
    assert lazy.search(q, SearchOptions(k=5)) == full.search(q, SearchOptions(k=5, first_stage=stage))  # default
    exhaustive = SearchOptions(k=5, first_stage="dense", exhaustive=True)
    assert lazy.search(q, exhaustive) == full.search(q, exhaustive)
    assert lazy.search(Query(text="x"), SearchOptions(k=5, mode=SearchMode.TEXT)) == []
    assert not _holds_dense(lazy)
    with pytest.raises(ValueError, match="no dense rows"):  # a read by mistake is loud, never an empty score
        lazy._snapshot.top(q.dense, 3)  # type: ignore[union-attr, arg-type]
    assert lazy.stats().memory_bytes == full.stats().memory_bytes - n * DENSE_ROW
    assert _answers(lazy, _plans(stage == "pooled_ivf")) == want  # the first dense search loads them
    assert _holds_dense(lazy)
    assert lazy.stats().memory_bytes == full.stats().memory_bytes
    for s in (writer, full, lazy):
        s.close()


def test_a_pooled_search_with_a_dense_prefetch_loads_the_dense_rows(tmp_path: Path) -> None:
    writer = _collection(tmp_path / "a")
    full = LocalStore.open(tmp_path / "a")
    lazy = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled"))
    prefetch = SearchOptions(k=5, candidates=8, prefetch=12)  # the default (pooled) first stage, narrowed
    assert lazy.search(_query(1), prefetch) == full.search(_query(1), replace(prefetch, first_stage="pooled"))
    assert _holds_dense(lazy)
    bare = Query(_query(2).multivector, None)  # no dense vector: the prefetch is not used
    assert lazy.search(bare, prefetch) == full.search(bare, replace(prefetch, first_stage="pooled"))
    for s in (writer, full, lazy):
        s.close()


@pytest.mark.parametrize("retained", [100_000, 1])
def test_other_handles_writes_are_seen_before_and_after_the_load(tmp_path: Path, retained: int) -> None:
    """Another handle's adds and deletes reach a pooled_ivf handle before its dense rows are loaded, at the load
    (reloaded whole as of the search's transaction; the inverted lists move forward by the deletion log, or are
    rebuilt when it no longer reaches back: ``retained`` 1) and after, as they reach a handle opened afresh."""
    writer = _collection(tmp_path / "a", cells=True, retained=retained)
    lazy = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled_ivf"))
    plans = _plans(True)
    pooled = [o for o in plans if o.first_stage != "dense" and o.prefetch is None]
    assert _answers(lazy, pooled)  # sketches and cell lists held, no dense rows
    rng = np.random.default_rng(1)
    _add(writer, rng, ["n0", "n1", "n2"])
    for name in ("d1", "d4", "d9"):
        writer.delete_document(name)
    fresh = LocalStore.open(tmp_path / "a")
    assert _answers(lazy, pooled) == _answers(fresh, pooled)
    assert not _holds_dense(lazy)
    _add(writer, rng, ["n3", "n4"])
    for name in ("d2", "n0"):
        writer.delete_document(name)
    fresh = LocalStore.open(tmp_path / "a")
    assert _answers(lazy, plans) == _answers(fresh, plans)  # the first dense search loads them
    assert _holds_dense(lazy)
    _add(writer, rng, ["n5"])
    for name in ("d3", "n3"):
        writer.delete_document(name)
    fresh = LocalStore.open(tmp_path / "a")
    assert _answers(lazy, plans) == _answers(fresh, plans)
    assert {h.doc_id for hits in _answers(lazy, plans) for h in hits}.isdisjoint({"d1", "d2", "d3", "n0", "n3"})
    for s in (writer, lazy, fresh):
        s.close()


def test_concurrent_first_searches_of_both_kinds_do_not_race(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads that start at once on a fresh pooled handle, half of them with a search that reads the dense rows,
    answer as one thread does, and leave the handle holding both columns, loaded once. Every load of held rows
    sleeps a little (releasing the GIL), so that an unguarded sync would interleave with another."""
    writer = _collection(tmp_path / "a", cells=True)
    load, whole = _dense._load, []

    def slow(*args: Any) -> Any:
        if args[1] == 0:  # after page id 0: a whole load (with_dense last)
            whole.append(args[-1])
        time.sleep(0.005)
        return load(*args)

    monkeypatch.setattr(_dense, "_load", slow)
    plans = _plans(True)
    reference = LocalStore.open(tmp_path / "a")
    want = {(i, s): reference.search(_query(s), o) for i, o in enumerate(plans) for s in range(2)}
    held = reference.stats().memory_bytes
    for _ in range(4):
        whole.clear()
        lazy = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled"))
        jobs = list(want)
        start = threading.Barrier(len(jobs))
        got: dict[tuple[int, int], list[Hit]] = {}
        errors: list[BaseException] = []

        def run(job: tuple[int, int], lazy: LocalStore = lazy, start: threading.Barrier = start,
                got: dict[tuple[int, int], list[Hit]] = got, errors: list[BaseException] = errors) -> None:  # fmt: skip
            start.wait()
            try:
                got[job] = lazy.search(_query(job[1]), plans[job[0]])
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert got == want
        assert lazy.stats().memory_bytes == held
        assert whole == [False, True]  # the open's (sketches), then one with the dense rows
        lazy.close()
    for s in (writer, reference):
        s.close()


def test_the_default_first_stage_decides_what_is_held_from_the_open(tmp_path: Path) -> None:
    """dense holds the dense rows, pooled and pooled_ivf the sketches; ivf holds the dense rows only where it falls
    back to dense (a codec without a codebook), and an ivf search never loads them."""
    writer = _collection(tmp_path / "a", docs=4)
    n = writer.stats().pages
    sketches = n * K * (D + 4)
    sizes = {
        s: LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage=s)) for s in ("dense", "pooled", "ivf")
    }
    assert sizes["dense"].stats().memory_bytes == n * (9 + DENSE_ROW)
    assert sizes["pooled"].stats().memory_bytes == n * 9 + sketches
    assert sizes["ivf"].stats().memory_bytes == n * (9 + DENSE_ROW)  # float32 multi-vectors: ivf serves as dense
    residual = CollectionConfig(dense_dim=DIM, multivector_dim=D, codec=Codec.RESIDUAL2)
    LocalStore.create(tmp_path / "r", residual, LocalOptions(dense_codec="int8", sketch_vectors=K)).close()
    rstore = LocalStore.open(tmp_path / "r")
    rng = np.random.default_rng(3)
    rstore.train_codebook(_unit(rng.normal(size=(512, D))), k=16)
    _add(rstore, rng, ["r0", "r1", "r2"])
    ivf = LocalStore.open(tmp_path / "r", options=LocalOptions(first_stage="ivf"))
    assert ivf.stats().memory_bytes == 6 * 9  # ids and live mask only
    assert ivf.search(_query(1), SearchOptions(k=3, candidates=4))
    assert ivf.stats().memory_bytes == 6 * 9
    assert ivf.search(_query(1), SearchOptions(k=3, candidates=4, first_stage="dense"))
    assert ivf.stats().memory_bytes == 6 * (9 + DENSE_ROW)
    for s in (writer, rstore, ivf, *sizes.values()):
        s.close()
