"""Bulk build speed of the embedded index (issue 26 item 7): pages/s of loading vectors-given documents per codec.

Structured synthetic pages (:mod:`bench._synthetic`, ~``--vectors`` tokens × ``--dim``), ``--pages-per-doc`` pages
per document, loaded into a fresh collection per codec. Pages are generated before the clock starts (data
generation excluded); the residual codecs train their codebook on a sample of the first pages' tokens
(``LocalStore.train_codebook``, timed: training is part of the build). ``--batch-docs N`` loads N documents per
``add_documents`` call (one transaction each call, each document still all or nothing); 0 calls ``add_document``
once per document. ``--workers W`` (with ``--batch-docs``) loads the same batches through
``add_document_batches``: the next batches encoded by W threads while one is written. Pages per CPU second (this
process's user + system time, all its threads) is printed beside pages/s: on a shared machine it is the steadier of
the two, and wall ÷ CPU says how many cores the load kept busy. ``--profile`` prints the top of a cProfile of the
timed part (the calling thread only: profile without ``--workers``).

To compare two trees, run this script from one tree with ``--tree`` pointing at the other (its ``colbert`` package
is the one imported; a tree without ``add_document_batches`` cannot take ``--workers``); alternate the two runs.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.bulk_load --pages 2000 --codecs binary,int8,residual2 \
        --batch-docs 20 --workers 2
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus

if TYPE_CHECKING:
    from colbert.store import UnitRecord

__all__ = ["main"]


def _documents(a: argparse.Namespace) -> list[list[UnitRecord]]:
    from colbert.store import UnitRecord

    corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors)
    centroids = corpus.centroids()
    docs = []
    for start in range(0, a.pages, a.pages_per_doc):
        pages = [corpus.page(i, centroids) for i in range(start, min(start + a.pages_per_doc, a.pages))]
        docs.append([UnitRecord(j, p.dense, p.tokens) for j, p in enumerate(pages)])
    return docs


def _sample(docs: list[list[UnitRecord]], tokens: int, seed: int) -> np.ndarray:
    """``tokens`` training tokens drawn evenly from the first documents' pages."""
    rng = np.random.default_rng(seed)
    pages = [r.multivector for d in docs for r in d]
    per_page = max(1, tokens // len(pages))
    rows = [p[rng.choice(p.shape[0], min(per_page, p.shape[0]), replace=False)] for p in pages[: tokens // per_page]]
    return np.concatenate(rows)


def load(a: argparse.Namespace, codec: str, docs: list[list[UnitRecord]], work: Path) -> tuple[float, float]:
    """Wall and CPU seconds (this process) to train (residual codecs) and load ``docs`` into a fresh collection."""
    from colbert.local import LocalOptions, LocalStore
    from colbert.quantize import Codec, needs_codebook
    from colbert.store import CollectionConfig, NewDocument

    config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=Codec(codec))
    store = LocalStore.create(work / codec, config, LocalOptions(synchronous=a.synchronous))
    batches = [
        [NewDocument(f"d{j}", docs[j]) for j in range(i, min(i + a.batch_docs, len(docs)))]
        for i in range(0, len(docs), a.batch_docs or 1)
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    if needs_codebook(codec):
        store.train_codebook(_sample(docs, a.train_tokens, a.seed))
    if a.workers:
        from colbert.local.bulk import add_document_batches  # imported here: a tree without it can run the rest

        for _ in add_document_batches(store, batches, workers=a.workers):
            pass
    elif a.batch_docs:
        from colbert.local.bulk import add_documents

        for batch in batches:
            add_documents(store, batch)
    else:
        for j, units in enumerate(docs):
            store.add_document(f"d{j}", units)
    took = time.perf_counter() - t0, time.process_time() - c0
    store.close()
    return took


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--vectors", type=int, default=768)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--pages-per-doc", type=int, default=10)
    p.add_argument("--codecs", default="binary,residual1,residual2,int8")
    p.add_argument("--batch-docs", type=int, default=0, help="documents per add_documents call (0: add_document)")
    p.add_argument("--workers", type=int, default=0, help="encoding threads of add_document_batches (0: none)")
    p.add_argument("--train-tokens", type=int, default=131072)
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tree", type=Path, help="import colbert from this source tree (compare two trees)")
    a = p.parse_args(argv)
    if a.workers and not a.batch_docs:
        p.error("--workers needs --batch-docs")
    if a.tree is not None:
        sys.path.insert(0, str(a.tree.resolve()))
    import colbert

    print(f"# colbert from {Path(colbert.__file__).parent}; {a.workers} encoding threads", flush=True)
    docs = _documents(a)
    rows: list[list[object]] = []
    work = Path(tempfile.mkdtemp(prefix="bulk-load-"))
    try:
        for codec in a.codecs.split(","):
            prof = cProfile.Profile() if a.profile else None
            if prof is not None:
                prof.enable()
            took, cpu = load(a, codec, docs, work)
            if prof is not None:
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
                print(f"## {codec}\n{out.getvalue()}", flush=True)
            rate, per_cpu = f"{a.pages / took:.0f}", f"{a.pages / cpu:.0f}"
            rows.append(
                [codec, a.pages, a.batch_docs or 1, a.workers, f"{took:.1f}", rate, per_cpu, f"{cpu / took:.2f}"]
            )
            print(f"# {codec}: {rate} pages/s ({per_cpu} per CPU second, {cpu / took:.2f} cores busy)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    head = ["codec", "pages", "docs/transaction", "threads", "seconds", "pages/s", "pages per CPU s", "CPU/wall"]
    print(format_table(head, rows))


if __name__ == "__main__":
    main()
