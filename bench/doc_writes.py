"""Add / replace / delete one document in a large collection, without a rebuild (issue 26: "≤ 50 ms + its own
pages' cost").

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.doc_writes [--pages 100000] [--plans PLAN,...]

Per plan (``codec:first_stage``, default ``residual2:ivf,binary:dense``) a collection of ``--pages`` synthetic
pages (``bench/_synthetic.py``: ~``--tokens`` tokens × 128 each, 10-page documents) is bulk-filled: ``--distinct``
documents are encoded once through the store's own code (:func:`colbert.local.coding.unit_rows`: sketch, codec,
centroid lists) and their rows inserted under new ids by :func:`colbert.local.write.insert_document`, 1,000 pages per
transaction on the store's writer connection — the rows the store writes, without encoding 100k pages (which this
machine would take hours over). A residual collection's codebook is trained first on a sample (``--train-tokens``),
as a bulk load does. The service's dense codec (int8) is used.

Then, on a :class:`colbert.local.LocalStore` opened on it (its first stage loaded by one search), for ``--repeats``
fresh 10-page documents, median ms of:

* **add**, **replace** (``add_document(..., replace=True)`` of a document there, by new content) and **delete**
  (``delete_document``), each a whole call, fsynced (``synchronous=FULL``); an add or replace split into
  **encoding its pages** — the document's own pages' cost without the model, the time the call spent in
  :func:`unit_rows` (sketch k-means, codec, centroid lists; timed by wrapping it) — and **the rest** (validation,
  the lock, SQL, commit): what the goal's 50 ms bounds;
* **search after** each — the next search of the same handle, which brings the in-memory first stage (dense
  matrix, sketches, ivf lists) up to date with the write — beside a **search** with nothing to catch up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._synthetic import Corpus
from colbert.local import LocalOptions, LocalStore
from colbert.local import bulk as _bulk
from colbert.local.coding import unit_rows
from colbert.local.schema import read_sketch_codec
from colbert.local.write import insert_document
from colbert.quantize import Codec, needs_codebook
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]

DOC_PAGES, DENSE_CODEC, BATCH_PAGES = 10, "int8", 1000


def document(corpus: Corpus, centroids: np.ndarray, first: int) -> list[UnitRecord]:
    """Pages ``first … first+9`` of the corpus as one document's units (dense = the corpus's 128-d page vector)."""
    pages = [corpus.page(first + u, centroids) for u in range(DOC_PAGES)]
    return [UnitRecord(u, p.dense, p.tokens) for u, p in enumerate(pages)]


def fill(store: LocalStore, corpus: Corpus, centroids: np.ndarray, pages: int, distinct: int) -> float:
    """Bulk-fill ``store`` to ``pages`` pages with copies of ``distinct`` encoded documents; seconds taken."""
    t0 = time.perf_counter()
    book = store.codebook()
    encoded = [
        unit_rows(document(corpus, centroids, 10_000_000 + DOC_PAGES * i), store.config, store.sketch_vectors, book,
                  store.dense_codec)[0]
        for i in range(distinct)
    ]  # fmt: skip
    docs = pages // DOC_PAGES
    for start in range(0, docs, BATCH_PAGES // DOC_PAGES):
        with store._write() as conn:  # the store's own writer connection and lock, one transaction per batch
            codec = read_sketch_codec(conn, store._path)
            for d in range(start, min(docs, start + BATCH_PAGES // DOC_PAGES)):
                insert_document(conn, f"bulk{d}", encoded[d % distinct], {"bulk": d}, None, sketch_codec=codec)
    return time.perf_counter() - t0


class EncodeClock:
    """Times the encoding the store does inside its own calls: wraps the ``unit_rows`` that the store's one write
    path (:mod:`colbert.local.bulk`) calls, so that a write's time splits into its pages' encoding and the rest."""

    def __init__(self) -> None:
        self.spent = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return unit_rows(*args, **kwargs)
        finally:
            self.spent += time.perf_counter() - t0


def measure(store: LocalStore, corpus: Corpus, centroids: np.ndarray, args: argparse.Namespace) -> dict[str, float]:
    """Median ms of each operation over ``--repeats`` fresh documents (module docstring)."""
    rng = np.random.default_rng(1)
    q, dense = corpus.query(corpus.page(0, centroids), rng)
    query, options = Query(q, dense), SearchOptions(k=10, candidates=200)
    store.search(query, options)  # the first stage loaded (the ivf lists load on the first ivf search)
    out: dict[str, list[float]] = defaultdict(list)
    clock = EncodeClock()

    def timed(name: str, fn: Callable[..., object], *call: object, **kw: object) -> None:
        encoded = clock.spent
        t0 = time.perf_counter()
        fn(*call, **kw)
        out[name].append((time.perf_counter() - t0) * 1e3)
        if clock.spent > encoded:  # the call encoded pages: its time beyond that
            out[f"{name} encode"].append((clock.spent - encoded) * 1e3)
            out[f"{name} rest"].append(out[name][-1] - out[f"{name} encode"][-1])

    with mock.patch.object(_bulk, "unit_rows", clock):
        for r in range(args.repeats):
            units = document(corpus, centroids, 20_000_000 + 100 * r)
            again = document(corpus, centroids, 30_000_000 + 100 * r)
            timed("search", store.search, query, options)
            timed("add", store.add_document, f"new{r}", units)
            timed("search after", store.search, query, options)
            timed("replace", store.add_document, f"new{r}", again, replace=True)
            timed("search after", store.search, query, options)
            timed("delete", store.delete_document, f"new{r}")
            timed("search after", store.search, query, options)
    return {k: statistics.median(v) for k, v in out.items()}


def run_plan(plan: str, root: Path, corpus: Corpus, args: argparse.Namespace) -> None:
    codec, stage = plan.split(":")
    config = CollectionConfig(dense_dim=corpus.dim, multivector_dim=corpus.dim, codec=Codec(codec))
    directory = root / f"{plan.replace(':', '-')}-{args.pages}"
    options = LocalOptions(first_stage=stage, dense_codec=DENSE_CODEC)
    centroids = corpus.centroids()
    fill_s, filled = None, directory / "filled"  # the marker of a complete fill
    if directory.exists() and not filled.exists():
        sys.exit(f"{directory}: an unfinished fill (no {filled.name} marker); delete the folder and run again")
    if not directory.exists():  # a --keep folder's earlier fill is reused (the measure leaves it as it was)
        with LocalStore.create(directory, config, options) as store:
            if needs_codebook(codec):
                sample = np.concatenate([corpus.page(5_000_000 + i, centroids).tokens for i in range(args.train_pages)])
                store.train_codebook(sample[: args.train_tokens], k=args.k)
            fill_s = fill(store, corpus, centroids, args.pages, args.distinct)
        filled.touch()
    size = sum(p.stat().st_size for p in directory.iterdir() if p != filled)
    with LocalStore.open(directory, options=options) as store:
        t = measure(store, corpus, centroids, args)
    print(f"\n## {codec} + {stage} first stage, {args.pages:,} pages ({size / args.pages:,.0f} B/page on disk; "
          f"bulk fill {'reused' if fill_s is None else f'{args.pages / fill_s:,.0f} pages/s'})")  # fmt: skip
    for op in ("add", "replace", "delete"):
        split = (
            f"= encoding its pages {t[f'{op} encode']:7.1f} + the rest {t[f'{op} rest']:6.1f}" if op != "delete" else ""
        )
        print(f"  {op:8s} one 10-page document   {t[op]:8.1f} ms {split}".rstrip())
    print(f"  search (nothing to catch up)         {t['search']:8.1f} ms   next search after a write "
          f"{t['search after']:8.1f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=768)
    parser.add_argument("--plans", default="residual2:ivf,binary:dense")
    parser.add_argument("--distinct", type=int, default=20, help="distinct documents the bulk fill copies")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-pages", type=int, default=100)
    parser.add_argument("--train-tokens", type=int, default=65_536)
    parser.add_argument("--k", type=int, default=1024, help="codebook centroids (residual codecs)")
    parser.add_argument("--dir", type=Path, help="parent of the temporary build folder (default: the system's)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it; a later run reuses its fill")
    args = parser.parse_args(argv)
    corpus = Corpus(vectors=args.tokens)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for plan in args.plans.split(","):
            run_plan(plan, args.keep, corpus, args)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for plan in args.plans.split(","):
            run_plan(plan, Path(tmp), corpus, args)


if __name__ == "__main__":
    main()
