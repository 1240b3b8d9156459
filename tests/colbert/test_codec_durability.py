"""The embedded index's guarantees with the compact codecs (issue 26 item 3): ``residual2`` (its codebook, the
``unit_centroids`` rows and the in-memory inverted lists of the ``ivf`` first stage) and ``binary``.

* ``kill -9`` of a writer process at random moments, while this process searches: every acknowledged document
  is there and whole, each unit's codes are exactly the codec's encoding of what was written (with the one stored
  codebook), the centroid lists are exactly those of the stored codes, and a handle that followed the writes
  incrementally answers as a freshly opened one.
* Another process adds, replaces and deletes documents while this process searches: every hit's score is the
  exact MaxSim over the stored codes of the version its metadata names (never a mix of two writes), a document
  whose deletion or replacement was acknowledged before a search began is never returned by it in its old form,
  and the incrementally kept first stage ends equal to a fresh one.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from colbert.local import LocalOptions, LocalStore
from colbert.local.codes import distinct_centroids
from colbert.quantize import decode, encode, needs_codebook
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, Hit

sys.path.insert(0, str(Path(__file__).parent))
from durability_writer import DENSE, DIM, pages_for
from test_local_durability import Reader, check_whole, killed_round

CHURN = Path(__file__).with_name("churn_writer.py")
CODECS = ["residual2", "binary"]
# the first stages a reader cycles through, per codec: every stage that codec serves
STAGES = {"residual2": ("ivf", "dense", "pooled"), "binary": ("dense", "pooled")}
NPROBE = 4  # of the codebook's 32 centroids: the ivf stage imputes the unprobed ones


def _create(directory: Path, codec: str) -> CollectionConfig:
    """A new collection; a residual one gets a 32-centroid codebook trained on a sample of the writers' pages (the
    first document's 40-odd tokens alone would train 4 centroids, too few for the inverted lists to matter)."""
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=codec)  # type: ignore[arg-type]
    with LocalStore.create(directory, config) as store:
        if needs_codebook(codec):
            sample = np.concatenate([u.multivector for v in range(500, 560) for u in pages_for(v)])  # (T, DIM)
            store.train_codebook(sample, k=32)
    return config


def _open(directory: Path, stage: str) -> LocalStore:
    return LocalStore.open(directory, options=LocalOptions(first_stage=stage, nprobe=NPROBE))


def stored(store: LocalStore, mv: np.ndarray) -> np.ndarray:
    """The float32 values a unit's multi-vector ``mv`` is stored as in ``store`` (its codec, its codebook)."""
    book = store.codebook()
    if book is not None:
        return book.decode(book.encode(mv), mv.shape[0])
    return decode(encode(mv, store.config.codec), mv.shape[0], DIM, store.config.codec)


def _queries(n: int, seed: int) -> Iterator[Query]:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        q = rng.normal(size=(4, DIM)).astype(np.float32)
        yield Query(q / np.linalg.norm(q, axis=1, keepdims=True), rng.normal(size=DENSE).astype(np.float32))


def _check_scores(store: LocalStore, q: np.ndarray, hits: list[Hit]) -> None:
    """Each hit's score is MaxSim over the stored codes of the version its document metadata names."""
    for h in hits:
        units = stored(store, pages_for(int(h.metadata["version"]))[h.unit].multivector)  # (n, DIM)
        want = float((q.astype(np.float64) @ units.astype(np.float64).T).max(axis=1).sum())
        assert abs(h.score - want) <= 1e-3 * max(1.0, abs(want)), (h, want)


def _reader(codec: str) -> Reader:
    def read(directory: Path, stop: threading.Event, errors: list[BaseException]) -> None:
        stores = {s: _open(directory, s) for s in STAGES[codec]}
        try:
            for i, query in enumerate(_queries(10**9, seed=1)):
                if stop.is_set():
                    return
                store = stores[STAGES[codec][i % len(STAGES[codec])]]
                if store.count()[0] == 0 or (needs_codebook(codec) and store.codebook() is None):
                    continue
                hits = store.search(query, SearchOptions(k=5, candidates=8))
                assert query.multivector is not None
                _check_scores(store, query.multivector, hits)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails on it
            errors.append(exc)
        finally:
            for store in stores.values():
                store.close()

    return read


def _check_lists(directory: Path) -> None:
    """Every unit has its centroid list, and it is the distinct centroids of its stored codes."""
    conn = sqlite3.connect(directory / "index.sqlite")
    try:
        rows = conn.execute(
            "SELECT m.page_id, m.n, m.data, c.data FROM multivectors m LEFT JOIN unit_centroids c USING (page_id)"
        ).fetchall()
        assert rows
        for page_id, n, codes, centroids in rows:
            assert centroids == distinct_centroids(codes, n), f"unit {page_id}: centroid list out of step"
        stray = conn.execute("SELECT COUNT(*) FROM unit_centroids WHERE page_id NOT IN (SELECT id FROM pages)")
        assert stray.fetchone()[0] == 0, "a centroid list outlives its unit"
    finally:
        conn.close()


def _same_answers(followed: LocalStore, directory: Path, stage: str) -> None:
    """A handle that followed other processes' writes answers exactly as a freshly opened one (same first stage)."""
    fresh = _open(directory, stage)
    try:
        for query in _queries(8, seed=7):
            options = SearchOptions(k=5, candidates=6)
            got = [(h.doc_id, h.unit, h.score) for h in followed.search(query, options)]
            assert got == [(h.doc_id, h.unit, h.score) for h in fresh.search(query, options)], stage
    finally:
        fresh.close()


@pytest.mark.parametrize("codec", CODECS)
def test_kill_9_mid_write_keeps_codes_codebook_and_lists_whole(tmp_path: Path, codec: str) -> None:
    directory = tmp_path / "idx"
    config = _create(directory, codec)
    followers = {s: _open(directory, s) for s in STAGES[codec]}
    rnd, acked, start = random.Random(26), dict[str, int](), 0
    try:
        for _round in range(3):
            acked.update(killed_round(directory, start, rnd.uniform(0.05, 0.6), _reader(codec)))
            start = check_whole(directory, acked, config, stored) + 1
            if needs_codebook(codec):
                _check_lists(directory)
            for stage, store in followers.items():  # open across the crashes, kept up to date incrementally
                _same_answers(store, directory, stage)
    finally:
        for store in followers.values():
            store.close()


def _churn(directory: Path, steps: int) -> subprocess.Popen[str]:
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, str(CHURN), str(directory), str(steps)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)


def _follow(proc: subprocess.Popen[str], acked: list[tuple[float, list[str]]]) -> None:
    """Record each acknowledgement with the time it was read (after the writer's commit)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        acked.append((time.monotonic(), line.split()))


def _gone_before(acked: list[tuple[float, list[str]]], started: float) -> dict[str, int]:
    """{doc_id: the lowest version a search started at ``started`` may return} (-1: deleted, none may)."""
    floor: dict[str, int] = {}
    for at, event in list(acked):
        if at < started and event[0] == "delete":
            floor[event[1]] = -1
        elif at < started and event[0] == "replace":
            floor[event[1]] = int(event[2])
    return floor


@pytest.mark.parametrize("codec", CODECS)
def test_add_replace_delete_from_another_process_while_searching(tmp_path: Path, codec: str) -> None:
    directory, steps = tmp_path / "idx", 24
    _create(directory, codec)
    stores = {s: _open(directory, s) for s in STAGES[codec]}
    acked: list[tuple[float, list[str]]] = []
    proc = _churn(directory, steps)
    follower = threading.Thread(target=_follow, args=(proc, acked))
    follower.start()
    searches = 0
    try:
        for i, query in enumerate(_queries(10**9, seed=3)):
            if not follower.is_alive():
                break
            store = stores[STAGES[codec][i % len(STAGES[codec])]]
            started = time.monotonic()
            if not acked or (needs_codebook(codec) and store.codebook() is None):
                continue
            hits = store.search(query, SearchOptions(k=8, candidates=10))
            assert query.multivector is not None
            _check_scores(store, query.multivector, hits)
            floor = _gone_before(acked, started)
            for h in hits:
                assert floor.get(h.doc_id, 0) != -1, f"{h.doc_id} returned after its deletion was acknowledged"
                assert int(h.metadata["version"]) >= floor.get(h.doc_id, 0), f"{h.doc_id}: a replaced version"
            searches += 1
        assert proc.wait(timeout=120) == 0
        follower.join()
        assert acked[-1][1] == ["done"]
        assert searches > 0
        want = {f"d{i}" for i in range(steps)} - {e[1] for _, e in acked if e[0] == "delete"}
        for stage, store in stores.items():
            assert {d.doc_id for d in store.list_documents(limit=1000)} == want
            _same_answers(store, directory, stage)
        if needs_codebook(codec):
            _check_lists(directory)
    finally:
        if proc.poll() is None:
            proc.kill()
        follower.join()
        assert proc.stdout is not None
        proc.stdout.close()
        for store in stores.values():
            store.close()
