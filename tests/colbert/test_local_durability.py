"""Crash safety and concurrency of the embedded index.

A writer process is killed with SIGKILL at random moments, several rounds on the same index; after each
round the reopened index must pass SQLite's integrity check, hold only whole documents whose content (vectors,
text and image of every unit, the original file) is exactly what some write stored, and hold every write the writer
acknowledged. While the writer runs, this process searches the same index through its own handle (readers
keep working while another process writes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from colbert.local import LocalStore
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

sys.path.insert(0, str(Path(__file__).parent))
from durability_writer import DENSE, DIM, original_for, pages_for

WRITER = Path(__file__).with_name("durability_writer.py")
CONFIG = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=Codec.FLOAT32)


Stored = Callable[[LocalStore, np.ndarray], np.ndarray]  # what a store holds for a multi-vector it was given


def as_given(store: LocalStore, mv: np.ndarray) -> np.ndarray:
    """float32 collections store the values given."""
    return mv


def check_whole(
    directory: Path, acked: dict[str, int], config: CollectionConfig = CONFIG, stored: Stored = as_given
) -> int:
    """Integrity, whole documents, exact content (multi-vectors as ``stored`` keeps them), every acknowledged write
    present; returns the top doc no."""
    conn = sqlite3.connect(directory / "index.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = "SELECT COUNT(*) FROM pages WHERE doc_id NOT IN (SELECT doc_id FROM documents)"
        blobless = "SELECT COUNT(*) FROM pages WHERE id NOT IN (SELECT page_id FROM multivectors)"
        assert [conn.execute(sql).fetchone()[0] for sql in (orphans, blobless)] == [0, 0]
        for table in ("unit_text", "unit_images"):  # no text or image outlives (or precedes) its unit
            stray = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE page_id NOT IN (SELECT id FROM pages)")
            assert stray.fetchone()[0] == 0, f"{table} holds rows of no unit"
        unit_parts = "SELECT COUNT(*) FROM pages WHERE id NOT IN (SELECT page_id FROM {})"
        assert conn.execute(unit_parts.format("unit_text")).fetchone()[0] == 0, "a unit without its text"
        assert conn.execute(unit_parts.format("unit_images")).fetchone()[0] == 0, "a unit without its image"
        stray = conn.execute("SELECT COUNT(*) FROM originals WHERE doc_id NOT IN (SELECT doc_id FROM documents)")
        assert stray.fetchone()[0] == 0, "an original file outlives its document"
        # the full-text index holds exactly the units there are (each unit's text has words): no entry of a
        # rolled-back or deleted unit, none missing
        fts = {r[0] for r in conn.execute("SELECT rowid FROM unit_fts")}
        assert fts == {r[0] for r in conn.execute("SELECT id FROM pages")}, "full-text index out of step"
    finally:
        conn.close()
    store = LocalStore.open(directory, expected=config)
    try:
        docs = {d.doc_id: d for d in store.list_documents(limit=10000)}
        for doc_id, version in acked.items():
            assert doc_id in docs, f"acknowledged {doc_id} (v{version}) is missing"
        highest = 0
        for doc_id, info in docs.items():
            version = int(info.metadata["version"])
            if doc_id in acked:  # the acknowledged version, or a later in-flight replace
                assert version >= acked[doc_id]
            want = pages_for(version)
            assert info.num_units == len(want)
            for rec in want:
                got = store.get_unit(doc_id, rec.unit)
                assert got is not None, f"{doc_id} page {rec.unit} missing: half a document"
                np.testing.assert_array_equal(got.multivector, stored(store, rec.multivector))
                assert (got.text, got.image) == (rec.text, rec.image), (
                    f"{doc_id} page {rec.unit}: text/image of another write"
                )
            # the original file is the one written with this version (or none): never one of another write
            assert store.get_original(doc_id) == original_for(version), f"{doc_id}: original of another write"
            highest = max(highest, int(doc_id[1:]))
        probe = pages_for(1)[0]
        assert store.search(Query(probe.multivector[:4], probe.dense), SearchOptions(k=3))  # the reopened index answers
        # BM25 finds each document through the words of its own version's text
        for doc_id, info in docs.items():
            version = int(info.metadata["version"])
            options = SearchOptions.of(k=100, mode="text", filter={"version": info.metadata["version"]})
            hits = store.search(Query(text=pages_for(version)[0].text), options)
            assert doc_id in {h.doc_id for h in hits}, f"{doc_id}: its text is not in the full-text index"
        return highest
    finally:
        store.close()


def _search_while_writing(directory: Path, stop: threading.Event, errors: list[BaseException]) -> None:
    store = LocalStore.open(directory)
    probe = pages_for(7)[0]
    last = 0
    try:
        while not stop.is_set():
            hits = store.search(Query(probe.multivector[:4], probe.dense), SearchOptions(k=5))
            docs, _ = store.count()
            assert docs >= last, "a reader saw the document count go backwards"
            last = docs
            for h in hits:
                assert h.metadata.get("version") is not None
    except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails on it
        errors.append(exc)
    finally:
        store.close()


Reader = Callable[[Path, threading.Event, list[BaseException]], None]  # searches until the event is set


def killed_round(
    directory: Path, start: int, pause_s: float, reader: Reader | None = _search_while_writing, writer: Path = WRITER
) -> dict[str, int]:
    """One round: the ``writer`` script from document ``start`` while ``reader`` (None: nobody) searches the same
    index in this process, killed with SIGKILL ``pause_s`` after its first acknowledgement; {doc_id: version}
    acknowledged."""
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, str(writer), str(directory), str(start)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    stop, errors = threading.Event(), list[BaseException]()
    thread = threading.Thread(target=reader or (lambda *_: None), args=(directory, stop, errors))
    thread.start()
    first = proc.stdout.readline()  # wait until the writer is really writing, then kill at a random moment
    time.sleep(pause_s)
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()
    proc.stdout.close()
    proc.wait()
    stop.set()
    thread.join()
    assert not errors, errors
    acked: dict[str, int] = {}
    for line in filter(None, (x.strip() for x in [first, *rest.splitlines()])):
        _, doc_id, version = line.split()
        acked[doc_id] = int(version[1:])
    assert acked, "the writer acknowledged nothing"
    return acked


def test_kill_9_never_corrupts_or_loses_acknowledged_writes(tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    LocalStore.create(directory, CONFIG).close()
    rnd = random.Random(1234)
    acked: dict[str, int] = {}
    start = 0
    for _round in range(4):
        acked.update(killed_round(directory, start, rnd.uniform(0.05, 0.8)))
        start = check_whole(directory, acked) + 1


def test_readers_keep_working_while_a_writer_adds(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "idx", CONFIG)
    store.add_document("seed", pages_for(0))
    stop, errors = threading.Event(), list[BaseException]()
    searches: list[int] = []

    def read() -> None:
        probe = pages_for(0)[0]
        last, done = 0, 0
        try:
            while not stop.is_set():
                hits = store.search(Query(probe.multivector[:3], probe.dense), SearchOptions(k=3))
                assert hits[0].doc_id == "seed"
                docs = store.count()[0]
                assert docs >= last, "a reader saw the document count go backwards"
                last, done = docs, done + 1
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails on it
            errors.append(exc)
        searches.append(done)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(1, 40):
        store.add_document(f"d{i}", pages_for(i), {"version": i})
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert sum(searches) > 3
    assert store.count()[0] == 40
    store.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_durability_setting_is_applied(tmp_path: Path, synchronous: str) -> None:
    from colbert.local import LocalOptions

    store = LocalStore.create(tmp_path / "idx", CONFIG, LocalOptions(synchronous=synchronous))
    store.add_document("a", [UnitRecord(0, np.ones(DENSE, np.float32), np.eye(3, DIM, dtype=np.float32))])
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert json.loads(json.dumps(store.get_document("a").metadata)) == {}  # type: ignore[union-attr]
    store.close()
