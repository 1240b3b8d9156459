"""The embedded index's exact MaxSim stage end to end: exhaustive scan and rerank latency on one stored collection.

    .venv/bin/python -m bench.scan_speed --data-dir DIR --pages 1000 --codecs int8,float16,binary
    .venv/bin/python -m bench.scan_speed --data-dir DIR --pages 1000 --codecs int8,float16,binary --tree OTHER

Per codec, a collection of ``--pages`` pages (unit rows drawn at random, ``--ld`` tokens × 128; dense vector: the
normalised token mean) is built under ``--data-dir`` on first use and reused by later runs (so two trees time the
same files). Timed: ``LocalStore.search`` of ``--queries`` queries (``--lq`` tokens sampled from a page, perturbed,
normalised), median of ``--repeats`` passes of per-query milliseconds, with ``exhaustive=True`` (every page read in
blocks of 128, checked, scored: :class:`colbert.local.scan.PageScorer`) and with the default dense first stage and
``--candidates`` candidates (the rerank). Printed per codec and path: p50 ms per query, pages per second, and a
digest of every hit's (id, score) so that two trees can be seen to return the same hits with the same float32
scores. To compare trees, run this script from one tree with ``--tree`` pointing at the other (its ``colbert``
package is the one imported; build the collections with the first run).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]


def _pages(n: int, ld: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, ld, 128)).astype(np.float32)
    return x / np.linalg.norm(x, axis=2, keepdims=True)  # type: ignore[no-any-return]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)  # type: ignore[no-any-return]


def _store(directory: Path, codec: str, a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from colbert.local import LocalStore
    from colbert.quantize import Codec
    from colbert.store import CollectionConfig, UnitRecord

    if directory.exists():
        return LocalStore.open(directory)
    store = LocalStore.create(directory, CollectionConfig(dense_dim=128, multivector_dim=128, codec=Codec(codec)))
    for start in range(0, a.pages, 100):
        batch = _pages(min(100, a.pages - start), a.ld, start)
        for i, page in enumerate(batch):
            dense = page.mean(axis=0)
            store.add_document(f"p{start + i}", [UnitRecord(0, _unit(dense), page)])
    return store


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--pages", type=int, default=1000)
    p.add_argument("--ld", type=int, default=1024)
    p.add_argument("--lq", type=int, default=32)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--codecs", default="int8,float16,binary")
    p.add_argument("--tree", type=Path, help="import colbert from this source tree (compare two trees)")
    a = p.parse_args(argv)
    if a.tree is not None:
        sys.path.insert(0, str(a.tree.resolve()))
    import colbert
    from colbert.search import Query, SearchOptions

    print(f"colbert from {Path(colbert.__file__).parent}; {a.pages} pages × {a.ld} tokens × 128, query {a.lq} tokens")
    print(f"{'codec':8s} {'path':10s} {'p50 ms':>8s} {'pages/s':>8s}  digest")
    rng = np.random.default_rng(1)
    for codec in a.codecs.split(","):
        store = _store(a.data_dir / f"{codec}-{a.pages}-{a.ld}", codec, a)
        queries = []
        for page in rng.integers(0, a.pages, size=a.queries).tolist():
            start = page // 100 * 100  # the batch the page was drawn in (_store)
            src = _pages(min(100, a.pages - start), a.ld, start)[page - start]
            q = src[rng.choice(a.ld, a.lq, replace=a.lq > a.ld)] + 0.3 * rng.standard_normal((a.lq, 128))
            queries.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
        paths = {
            "exhaustive": SearchOptions(k=10, exhaustive=True),
            "rerank": SearchOptions(k=10, candidates=a.candidates),
        }
        for name, opts in paths.items():
            digest = hashlib.sha256()
            passes = []
            for rep in range(max(1, a.repeats) + 1):  # the first pass warms the page cache and the kernel
                times = []
                for q in queries:
                    start = time.perf_counter()
                    hits = store.search(Query(q, _unit(q.mean(axis=0))), opts)
                    times.append(time.perf_counter() - start)
                    if rep == 0:
                        digest.update(repr([(h.doc_id, float(np.float32(h.score))) for h in hits]).encode())
                passes.append(statistics.median(times))
            ms = statistics.median(passes[1:]) * 1e3
            pages = a.pages if name == "exhaustive" else min(a.candidates, a.pages)
            print(f"{codec:8s} {name:10s} {ms:8.1f} {pages / ms * 1e3:8.0f}  {digest.hexdigest()[:12]}")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
