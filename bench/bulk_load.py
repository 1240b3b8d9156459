"""Bulk build speed of the embedded index (issue 26 item 7): pages/s of loading vectors-given documents per codec.

Structured synthetic pages (:mod:`bench._synthetic`, ~``--vectors`` tokens × ``--dim``), ``--pages-per-doc`` pages
per document, loaded into a fresh collection per codec. Pages are generated before the clock starts (data
generation excluded); the residual codecs train their codebook on a sample of the first pages' tokens
(``LocalStore.train_codebook``, timed: training is part of the build). ``--batch-docs N`` loads N documents per
``add_documents`` call (one transaction each call, each document still all or nothing); 0 calls ``add_document``
once per document. Pages per CPU second (this process's user + system time) is printed beside pages/s: on a
shared machine it is the steadier of the two. ``--profile`` prints the top of a cProfile of the timed part.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.bulk_load --pages 2000 --codecs binary,int8,residual2
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus
from colbert.local import LocalOptions, LocalStore
from colbert.quantize import Codec, needs_codebook
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]


def _documents(a: argparse.Namespace) -> list[list[UnitRecord]]:
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
    config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=Codec(codec))
    store = LocalStore.create(work / codec, config, LocalOptions(synchronous=a.synchronous))
    t0, c0 = time.perf_counter(), time.process_time()
    if needs_codebook(codec):
        store.train_codebook(_sample(docs, a.train_tokens, a.seed))
    if a.batch_docs:
        from colbert.local.bulk import add_documents  # imported here: the same script times trees without it
        from colbert.store import NewDocument

        for i in range(0, len(docs), a.batch_docs):
            add_documents(store, [NewDocument(f"d{j}", docs[j]) for j in range(i, min(i + a.batch_docs, len(docs)))])
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
    p.add_argument("--train-tokens", type=int, default=131072)
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
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
            rows.append(
                [codec, a.pages, a.batch_docs or 1, f"{took:.1f}", f"{a.pages / took:.0f}", f"{a.pages / cpu:.0f}"]
            )
            print(f"# {codec}: {a.pages / took:.0f} pages/s ({a.pages / cpu:.0f} per CPU second)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(format_table(["codec", "pages", "docs/transaction", "seconds", "pages/s", "pages per CPU s"], rows))


if __name__ == "__main__":
    main()
