"""Search benchmark: the embedded index vs Qdrant Edge on structured synthetic pages (issue 3 "Numbers").

Measures, on the same data and queries (see :mod:`bench._synthetic` for how they are made):

* p50/p99 search latency and recall@k of dense-prefetch + exact MaxSim rerank, for several candidate counts,
  against the exact MaxSim top-k over every page (plain numpy, independent of ``colbert``);
* the same for Qdrant Edge (``qdrant-edge-py``, in-process) at ``--edge-pages`` pages;
* ingest pages/s (time spent in ``add_document`` / Edge ``update``; data generation excluded);
* bytes per page on disk and in memory for each codec × pool factor (on ``--footprint-pages`` pages).

Quick run:  ``.venv/bin/python -m bench.search --pages 2000 --edge-pages 1000 --queries 20``
Full run:   ``.venv/bin/python -m bench.search --pages 100000 --edge-pages 10000 --work-dir /work/tmp``
The working directory is a fresh temporary folder, deleted at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus, ExactTopK
from colbert.local import LocalOptions, LocalStore
from colbert.quantize import Codec, decode, encode
from colbert.store import CollectionConfig, PageRecord

__all__ = ["main"]


def _dir_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (sparse, preallocated files count what they really use)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Run:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.corpus = Corpus(seed=args.seed, dim=args.dim, vectors=args.vectors, topics=args.topics)
        self.centroids = self.corpus.centroids()
        self.codec = Codec(args.codec)
        self.rows: list[list[object]] = []

    def stored(self, tokens: np.ndarray) -> np.ndarray:
        """What the store scores for these tokens (the codec round trip), as float32."""
        blob = encode(tokens, self.codec)
        return np.asarray(decode(blob, tokens.shape[0], tokens.shape[1], self.codec), dtype=np.float32)

    def run(self) -> None:
        a = self.args
        edge_pages = min(a.edge_pages, a.pages) if a.edge_pages else 0
        pool = edge_pages or a.pages
        rng = np.random.default_rng(a.seed + 1)
        sources = rng.choice(pool, a.queries, replace=False)
        qs = [self.corpus.query(self.corpus.page(int(i), self.centroids), rng) for i in sources]
        queries = np.stack([q for q, _ in qs])  # (Q, Lq, dim)
        dense_q = np.stack([d for _, d in qs])  # (Q, dim)
        truth = ExactTopK(queries, a.k)
        config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=self.codec)
        store = LocalStore.create(self.work / "ours", config, LocalOptions(synchronous=a.synchronous))
        edge = None
        if edge_pages:
            from bench._edge import EdgeIndex

            edge = EdgeIndex(self.work / "edge", a.dim, a.dim, "float16" if self.codec == Codec.FLOAT16 else "float32")
        t_ours = t_edge = t_gen = t_truth = 0.0
        per_doc = a.pages_per_doc
        for start in range(0, a.pages, per_doc):
            t0 = time.perf_counter()
            pages = [self.corpus.page(i, self.centroids) for i in range(start, min(start + per_doc, a.pages))]
            t1 = time.perf_counter()
            records = [PageRecord(j, p.dense, p.tokens) for j, p in enumerate(pages)]
            store.add_document(f"d{start // per_doc}", records)
            t2 = time.perf_counter()
            truth.add(start, [self.stored(p.tokens) for p in pages])
            t3 = time.perf_counter()
            if edge is not None and start < edge_pages:
                edge.add(start, [p.tokens for p in pages], [p.dense for p in pages])
            t4 = time.perf_counter()
            t_gen, t_ours, t_truth, t_edge = (
                t_gen + t1 - t0,
                t_ours + t2 - t1,
                t_truth + t3 - t2,
                t_edge + t4 - t3,
            )
            done = start + len(pages)
            if edge is not None and done == edge_pages:
                t5 = time.perf_counter()
                edge.finish()
                t_opt = time.perf_counter() - t5
                print(
                    f"# {done} pages: ingest ours {done / t_ours:.1f} pages/s; "
                    f"Edge {done / t_edge:.1f} pages/s (+ flush/optimize {t_opt:.1f} s)",
                    flush=True,
                )
                ids, _ = truth.snapshot()
                self.measure("ours", done, store, None, queries, dense_q, ids)
                self.measure("qdrant-edge", done, None, edge, queries, dense_q, ids)
                self.rows.append(["qdrant-edge", done, "ingest pages/s", f"{done / (t_edge + t_opt):.1f}"])
                self.rows.append(["qdrant-edge", done, "disk bytes/page", _dir_bytes(self.work / "edge") // done])
                edge.close()
                edge = None
            if done % max(per_doc, a.pages // 20) < per_doc:
                print(
                    f"# {done}/{a.pages} pages; gen {t_gen:.0f} s, ours {t_ours:.0f} s, truth {t_truth:.0f} s",
                    flush=True,
                )
        if a.pages != edge_pages:
            ids, _ = truth.snapshot()
            self.measure("ours", a.pages, store, None, queries, dense_q, ids)
        self.rows.append(["ours", a.pages, "ingest pages/s", f"{a.pages / t_ours:.1f}"])
        stats = store.stats()
        self.rows.append(["ours", a.pages, "disk bytes/page", _dir_bytes(self.work / "ours") // a.pages])
        self.rows.append(["ours", a.pages, "memory bytes/page (first stage)", stats.memory_bytes // a.pages])
        store.close()
        print(format_table(["engine", "pages", "figure", "value"], self.rows, title="Search benchmark"))

    def measure(
        self,
        engine: str,
        n: int,
        store: LocalStore | None,
        edge: object | None,
        queries: np.ndarray,
        dense_q: np.ndarray,
        truth: np.ndarray,
    ) -> None:
        a = self.args
        per_doc = a.pages_per_doc

        def run_one(i: int, candidates: int | None) -> list[int]:
            if store is not None:
                hits = store.search(
                    queries[i],
                    None if candidates is None else dense_q[i],
                    a.k,
                    candidates=candidates or a.k,
                    exhaustive=candidates is None,
                )
                return [int(h.doc_id[1:]) * per_doc + h.page for h in hits]
            assert edge is not None
            return edge.search(queries[i], None if candidates is None else dense_q[i], a.k, candidates or a.k)  # type: ignore[attr-defined, no-any-return]

        plans: list[int | None] = [int(c) for c in a.candidates.split(",")]
        if n <= a.exhaustive_max_pages:
            plans.append(None)
        for candidates in plans:
            count = len(queries) if candidates is not None else min(len(queries), a.exhaustive_queries)
            for i in range(min(count, 3)):  # warm-up (page cache, lazy init)
                run_one(i, candidates)
            lat, rec = [], []
            for i in range(count):
                t0 = time.perf_counter()
                got = run_one(i, candidates)
                lat.append(1000 * (time.perf_counter() - t0))
                rec.append(len(set(got) & set(truth[i].tolist())) / a.k)
            label = "exhaustive" if candidates is None else f"prefetch {candidates}"
            row = [
                engine,
                n,
                f"{label}: p50 / p99 ms, recall@{a.k}",
                f"{_pct(lat, 50):.1f} / {_pct(lat, 99):.1f}, {np.mean(rec):.4f} (min {min(rec):.2f}, {count} q)",
            ]
            print("# " + " | ".join(map(str, row)), flush=True)
            self.rows.append(row)


def footprint(args: argparse.Namespace, work: Path) -> list[list[object]]:
    """Bytes per page on disk and in memory for each codec × pool factor, on the same sample pages."""
    corpus = Corpus(seed=args.seed, dim=args.dim, vectors=args.vectors, topics=args.topics)
    centroids = corpus.centroids()
    pages = [corpus.page(i, centroids) for i in range(args.footprint_pages)]
    rows: list[list[object]] = []
    for pool in (1, 2, 3):
        for codec in Codec:
            config = CollectionConfig(dense_dim=args.dim, multivector_dim=args.dim, codec=codec, pool_factor=pool)
            path = work / f"fp-{codec}-{pool}"
            store = LocalStore.create(path, config)
            t0 = time.perf_counter()
            for i, p in enumerate(pages):
                store.add_document(f"d{i}", [PageRecord(0, p.dense, p.tokens)])
            dt = time.perf_counter() - t0
            stats = store.stats()
            disk = _dir_bytes(path)
            store.close()
            n = len(pages)
            per_page = [round(stats.vectors / n), stats.blob_bytes // n, disk // n, stats.memory_bytes // n]
            rows.append([codec, pool, *per_page, f"{n / dt:.1f}"])
            shutil.rmtree(path)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=100_000)
    p.add_argument("--vectors", type=int, default=1024, help="tokens per page (±10%%)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--topics", type=int, default=2000)
    p.add_argument("--pages-per-doc", type=int, default=10)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--candidates", default="100,200,400,800")
    p.add_argument("--codec", default="float16", choices=[c.value for c in Codec])
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--edge-pages", type=int, default=10_000, help="Qdrant Edge on the first N pages (0: skip)")
    p.add_argument("--exhaustive-max-pages", type=int, default=20_000, help="time exhaustive search up to N pages")
    p.add_argument("--exhaustive-queries", type=int, default=5)
    p.add_argument("--footprint-pages", type=int, default=50, help="0: skip the codec × pool table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None, help="parent of the temporary data folder")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if args.pages % args.pages_per_doc or (args.edge_pages and args.edge_pages % args.pages_per_doc):
        p.error("--pages and --edge-pages must be multiples of --pages-per-doc")
    print("# " + " ".join([sys.executable, "-m", "bench.search", *(argv or sys.argv[1:])]), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.work_dir))
    try:
        if args.footprint_pages:
            rows = footprint(args, work)
            print(
                format_table(
                    [
                        "codec",
                        "pool",
                        "vectors/page",
                        "blob B/page",
                        "disk B/page",
                        "memory B/page",
                        "ingest pages/s",
                    ],
                    rows,
                    title="Footprint per page (embedded index)",
                ),
                flush=True,
            )
        Run(args, work).run()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
