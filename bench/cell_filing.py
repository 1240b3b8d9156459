"""How long a cell training holds the write lock (:mod:`colbert.local.cell_training`: the book and every unit's
cell row are stored in one transaction; the book and the units' assignments are computed before it).

Builds ``--units`` one-page documents of synthetic pages (:class:`bench._synthetic.Corpus`, ``--tokens`` tokens
each, binary codec) in ``--data-dir`` (reused when it holds a collection without cells: ``--keep`` keeps it),
trains the cells and prints the training's total seconds, the write transaction's hold time (from taking the lock
to its commit) and the units it filed; ``--retrain K`` first trains K cells, then times the retraining that
replaces them (:func:`colbert.local.cell_training.retrain_cells`: the old book and rows deleted, all refiled)::

    .venv/bin/python -m bench.cell_filing --units 100000 --data-dir "$TMPDIR"/cells100k --keep
    .venv/bin/python -m bench.cell_filing --units 100000 --data-dir "$TMPDIR"/cells100k --keep --retrain 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench._synthetic import Corpus
from colbert.local import LocalStore
from colbert.local.bulk import add_document_batches
from colbert.local.cell_training import retrain_cells
from colbert.store import CollectionConfig, NewDocument, UnitRecord

__all__ = ["main"]


def _build(path: Path, units: int, tokens: int, batch: int) -> LocalStore:
    if (path / "index.sqlite").is_file():
        return LocalStore.open(path)
    store = LocalStore.create(path, CollectionConfig(dense_dim=128, multivector_dim=128, codec="binary"))  # type: ignore[arg-type]
    corpus = Corpus(vectors=tokens)
    centroids = corpus.centroids()

    def batches() -> Iterator[list[NewDocument]]:
        for start in range(0, units, batch):
            pages = [corpus.page(i, centroids) for i in range(start, min(start + batch, units))]
            yield [NewDocument(f"d{start + j}", [UnitRecord(0, p.dense, p.tokens)]) for j, p in enumerate(pages)]

    for _ in add_document_batches(store, batches()):
        pass
    return store


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, default=100_000)
    p.add_argument("--tokens", type=int, default=32, help="tokens per synthetic page")
    p.add_argument("--batch", type=int, default=500, help="documents per write transaction while building")
    p.add_argument("--data-dir", type=Path, default=None, help="where the collection is built (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep the collection (without cells) for the next run")
    p.add_argument("--retrain", type=int, default=0, help="train this K first, then time the retraining")
    a = p.parse_args(argv)
    work = a.data_dir or Path(tempfile.mkdtemp(prefix="cell-filing-"))
    t0 = time.perf_counter()
    store = _build(work / "c", a.units, a.tokens, a.batch)
    built = time.perf_counter() - t0
    holds: list[float] = []
    write = store._write

    @contextmanager
    def timed() -> Iterator[object]:
        start = time.perf_counter()
        with write() as conn:
            yield conn
        holds.append(time.perf_counter() - start)

    if a.retrain:
        store.train_cells(a.retrain)
    store._write = timed  # type: ignore[method-assign]
    t1 = time.perf_counter()
    book, filed = retrain_cells(store) if a.retrain else store.train_cells()
    trained = time.perf_counter() - t1
    units = store.count()[1]
    if a.keep:  # back to a collection without cells for the next run
        with write() as conn:
            conn.execute("DELETE FROM unit_cells")
            conn.execute("DELETE FROM cell_book")
    store.close()
    if a.data_dir is None and not a.keep:
        shutil.rmtree(work)
    out = {"units": units, "retrained_from": a.retrain or None, "build_s": round(built, 1), "cells": book.k}
    out["filed"] = filed
    out |= {"train_s": round(trained, 2), "lock_hold_s": [round(h, 3) for h in holds]}
    out["lock_hold_per_unit_us"] = round(float(np.sum(holds)) / max(filed, 1) * 1e6, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
