"""Search benchmark: the embedded index vs Qdrant Edge on structured synthetic pages (issue 3 "Numbers").

Measures, on the same data and queries (see :mod:`bench._synthetic` for how they are made):

* p50/p99 search latency and recall@k of each first stage + exact MaxSim rerank, for several candidate counts,
  against the exact MaxSim top-k over every page (plain numpy, independent of ``colbert``): the dense first
  stage (cosine of the page's dense vector) and the pooled one (approximate MaxSim against ``--sketch-vectors``
  k-means centroids per page, :mod:`colbert.local.sketch`);
* Qdrant Edge (``qdrant-edge-py``, in-process, dense prefetch + MaxSim rerank) at ``--edge-pages`` pages, fed
  the same codec-rounded vectors our index scores (so both are judged against the same exact top-k);
* ingest pages/s (time spent in ``add_document`` / Edge ``update``; data generation excluded);
* bytes per page on disk and in memory for each codec × pool factor (on ``--footprint-pages`` pages);
* with ``--text-words N``: pages carry synthetic text (:mod:`bench._synthetic_text`), and ``text`` / ``hybrid``
  latency beside ``visual`` plus the text index's bytes per page (:mod:`bench._hybrid_bench`).

Quick run:  ``.venv/bin/python -m bench.search --pages 2000 --edge-pages 1000 --queries 20``
Full run, in two phases so that only the timed part needs a quiet machine (same flags for both)::

    nice -n 19 .venv/bin/python -m bench.search --phase build --data-dir "$TMPDIR"/s100k --pages 100000 ...
    flock /tmp/bench.lock .venv/bin/python -m bench.search --phase measure --data-dir "$TMPDIR"/s100k ...

``--phase all`` (default) does both in a fresh temporary folder, deleted at the end (``--keep`` keeps it).
Our index is measured at ``--pages``, Edge at ``--edge-pages`` (each against the exact top-k at its size).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench._hybrid_bench import hybrid_rows
from bench._report import format_table
from bench._search_build import build
from bench._synthetic import Corpus
from bench._synthetic_text import TextCorpus
from colbert.local import LocalStore
from colbert.local.dense_codec import DENSE_CODECS
from colbert.quantize import Codec, needs_codebook
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]


def _dir_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (sparse, preallocated files count what they really use)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def _rss() -> tuple[int, int]:
    """This process's resident (anonymous, file-backed) bytes (Linux ``/proc/self/status``; 0s elsewhere): the
    heap holding the first stages vs pages of mapped files (SQLite's mmap window, shared and reclaimable)."""
    status = Path("/proc/self/status")
    fields = dict(x.split(":", 1) for x in status.read_text().splitlines()) if status.is_file() else {}
    return tuple(int(fields.get(key, "0 kB").split()[0]) * 1024 for key in ("RssAnon", "RssFile"))  # type: ignore[return-value]


def _count(plan: str) -> int:
    """A plan's candidate count; ``default``: 0, the store's own (grows with the collection)."""
    return 0 if plan == "default" else int(plan)


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Run:
    """Builds the data (index, Qdrant Edge shard, exact top-k) into ``work`` and/or measures searches on it."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.corpus = Corpus(seed=args.seed, dim=args.dim, vectors=args.vectors, topics=args.topics)
        self.centroids = self.corpus.centroids()
        self.text = TextCorpus(args.seed, words=args.text_words) if args.text_words else None
        self.codec = Codec(args.codec)
        self.rows: list[list[object]] = []

    def edge_pages(self) -> int:
        a = self.args
        return min(a.edge_pages, a.pages) if a.edge_pages else 0

    def build(self) -> None:
        """Ingest every page and save the exact top-k (:func:`bench._search_build.build`)."""
        build(self)

    def measure(self) -> None:
        """Time every plan on the built data (run this phase alone, on a quiet machine, for the reported numbers)."""
        a = self.args
        built = json.loads((self.work / "build.json").read_text())
        saved = np.load(self.work / "truth.npz")
        queries, dense_q = saved["queries"], saved["dense_q"]
        edge_pages = self.edge_pages()
        rss_before = _rss()
        rss_first: tuple[int, int] | None = None  # after the first-stage plans, before exhaustive ones
        store = LocalStore.open(self.work / "ours")
        n = store.count()[1]
        per_doc = a.pages_per_doc

        def ours(first_stage: str, candidates: int | None, groups: int | None) -> Callable[[int], list[int]]:
            def run_one(i: int) -> list[int]:
                hits = store.search(
                    Query(queries[i], dense_q[i] if first_stage == "dense" and candidates is not None else None),
                    SearchOptions(
                        k=a.k,
                        candidates=a.k if candidates is None else (candidates or None),  # 0: the store's default
                        exhaustive=candidates is None,
                        first_stage=first_stage,
                        query_groups=groups,
                        prefetch=a.cells_reach if first_stage == "pooled_ivf" and a.cells_reach else None,
                    ),
                )
                return [int(h.doc_id[1:]) * per_doc + h.unit for h in hits]

            return run_one

        plans: list[tuple[str, int | None, int | None]] = [
            ("dense", _count(c), None) for c in a.candidates.split(",") if c
        ]
        plans += [("pooled", _count(c), None) for c in a.pooled.split(",") if c]
        plans += [("pooled", _count(c), a.query_groups) for c in a.pooled_grouped.split(",") if c]
        plans += [("ivf", _count(c), None) for c in a.ivf.split(",") if c and needs_codebook(self.codec)]
        plans += [("pooled_ivf", _count(c), None) for c in a.pooled_ivf.split(",") if c]
        if any(stage == "pooled_ivf" for stage, _, _ in plans):
            self.train_cells(store, n)
        if n <= a.exhaustive_max_pages:
            plans.append(("dense", None, None))
        for first_stage, candidates, groups in plans:
            if candidates is None and rss_first is None:
                rss_first = _rss()
            grown = f"the default {SearchOptions().candidates_for(n)}"  # colbert.search.default_candidates
            label = (
                "exhaustive" if candidates is None else f"{first_stage} first stage, {candidates or grown} candidates"
            )
            label += f", query pooled to {groups}" if groups else ""
            run_one = ours(first_stage, candidates, groups)
            f32 = saved["truth_f32"] if "has_f32" in saved and bool(saved["has_f32"]) else None
            self.time_plan("ours", n, label, run_one, saved["truth"], candidates is None, f32)
        if a.text_words:
            cands = [int(c) for c in a.candidates.split(",") if c and c != "default"]
            db = self.work / "ours" / "index.sqlite"
            self.rows += hybrid_rows(store, queries, dense_q, list(saved["texts"]), a.k, cands, db)
        anon, file = (after - before for after, before in zip(rss_first or _rss(), rss_before, strict=True))
        label = "resident memory bytes/page after the first-stage plans: anonymous (file-backed)"
        self.rows.append(["ours", n, label, f"{anon // n} ({file // n})"])
        self.rows.append(["ours", n, "ingest pages/s", f"{built['ours_ingest_pages_s']:.1f}"])
        stats = store.stats()
        sketch = store.sketch_vectors * (a.dim + 4)  # int8 centroids + a float32 scale each, when held
        self.rows.append(["ours", n, "disk bytes/page", _dir_bytes(self.work / "ours") // n])
        memory = f"{stats.memory_bytes // n} (sketch {sketch}), ivf {stats.ivf_memory_bytes // n}"
        self.rows.append(["ours", n, "memory bytes/page (dense + sketch), ivf lists", memory])
        store.close()
        if edge_pages and (self.work / "edge").is_dir():
            from bench._edge import EdgeIndex

            edge = EdgeIndex.load(self.work / "edge")
            for candidates in [int(c) for c in a.candidates.split(",") if c and c != "default"]:

                def run_edge(i: int, c: int = candidates) -> list[int]:
                    return edge.search(queries[i], dense_q[i], a.k, c)

                label = f"dense first stage, {candidates} candidates"
                self.time_plan("qdrant-edge", edge_pages, label, run_edge, saved["truth_edge"], False)
            edge.close()
            self.rows.append(["qdrant-edge", edge_pages, "ingest pages/s", f"{built['edge_ingest_pages_s']:.1f}"])
            disk = _dir_bytes(self.work / "edge") // edge_pages
            self.rows.append(["qdrant-edge", edge_pages, "disk bytes/page", disk])
        print(format_table(["engine", "pages", "figure", "value"], self.rows, title="Search benchmark"), flush=True)

    def train_cells(self, store: LocalStore, n: int) -> None:
        """Give the store its sketch cells (an explicit step, :mod:`colbert.local.cell_training`) unless it has
        them: CPU seconds, units filed, and the cells' bytes per unit on disk (rows' payload) in the report."""
        t0, c0 = time.perf_counter(), time.process_time()
        book, filed = store.train_cells(self.args.cells or None)
        took = f"{time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU"
        self.rows.append(["ours", n, f"train cells (K={book.k}, {filed} units filed)", took])
        with store._read() as conn:
            payload = conn.execute("SELECT COALESCE(SUM(length(data)) + 8 * COUNT(*), 0) FROM unit_cells").fetchone()[0]
        self.rows.append(
            [
                "ours",
                n,
                "cells bytes/unit on disk (payload + rowid), cell book bytes",
                f"{payload / n:.1f}, {len(book.to_bytes())}",
            ]
        )
        print("# " + " | ".join(map(str, self.rows[-2])) + " || " + " | ".join(map(str, self.rows[-1])), flush=True)

    def time_plan(
        self,
        engine: str,
        n: int,
        label: str,
        run_one: Callable[[int], list[int]],
        truth: np.ndarray,
        slow: bool,
        truth_f32: np.ndarray | None = None,
    ) -> None:
        a = self.args
        count = min(len(truth), a.exhaustive_queries) if slow else len(truth)
        for i in range(min(count, 3)):  # warm-up (page cache, lazy init)
            run_one(i)
        lat: list[float] = []
        rec: list[float] = []
        agree: list[float] = []  # vs exhaustive float32 MaxSim over the original tokens (--agreement)
        for i in range(count):
            t0 = time.perf_counter()
            got = run_one(i)
            lat.append(1000 * (time.perf_counter() - t0))
            rec.append(len(set(got) & set(truth[i].tolist())) / a.k)
            if truth_f32 is not None:
                agree.append(len(set(got) & set(truth_f32[i].tolist())) / a.k)
        row = [
            engine,
            n,
            f"{label}: p50 / p99 ms, recall@{a.k}",
            f"{_pct(lat, 50):.1f} / {_pct(lat, 99):.1f}, {np.mean(rec):.4f} (min {min(rec):.2f}, {count} q)"
            + (f", agreement@{a.k} with float32 {np.mean(agree):.4f}" if agree else ""),
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
                store.add_document(f"d{i}", [UnitRecord(0, p.dense, p.tokens)])
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
    p.add_argument(
        "--candidates",
        default="100,200,400,800",
        help="dense first stage plans (ours and Edge; 'default': the store's own count)",
    )
    p.add_argument("--pooled", default="50,100,200,400", help="pooled first stage plans (ours)")
    p.add_argument("--sketch-vectors", type=int, default=8, help="pooled centroids per page (ours)")
    p.add_argument("--pooled-grouped", default="100,200,400", help="pooled plans with the query pooled too (ours)")
    p.add_argument("--query-groups", type=int, default=8, help="query centroids in the --pooled-grouped plans")
    p.add_argument("--codec", default="float16", choices=[c.value for c in Codec])
    p.add_argument("--dense-codec", default="float32", choices=DENSE_CODECS, help="stored dense vector (ours)")
    p.add_argument("--ivf", default="100,200,400", help="ivf first stage plans (ours; residual codecs only)")
    p.add_argument(
        "--pooled-ivf",
        default="",
        help="pooled_ivf first stage plans (ours; trains the cells if none; 'default' as above)",
    )
    p.add_argument("--cells", type=int, default=0, help="cells to train for --pooled-ivf (0: the default K)")
    p.add_argument("--cells-reach", type=int, default=0, help="units sketch-scored after the cells (0: default)")
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--agreement", action="store_true", help="also the top-k agreement with float32 MaxSim (ours)")
    p.add_argument("--batch-docs", type=int, default=1, help="documents per add_documents transaction (ours)")
    p.add_argument("--edge-pages", type=int, default=10_000, help="Qdrant Edge on the first N pages (0: skip)")
    p.add_argument("--exhaustive-max-pages", type=int, default=20_000, help="time exhaustive search up to N pages")
    p.add_argument("--exhaustive-queries", type=int, default=5)
    p.add_argument("--footprint-pages", type=int, default=50, help="0: skip the codec × pool table")
    p.add_argument(
        "--text-words", type=int, default=0, help="give pages N words of synthetic text; time text/hybrid (0: off)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None, help="parent of the temporary data folder")
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--phase",
        default="all",
        choices=["all", "build", "measure"],
        help="build: ingest into --data-dir and stop; measure: time searches on --data-dir (same other flags)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="kept data folder for --phase build/measure")
    args = p.parse_args(argv)
    if args.pages % args.pages_per_doc or (args.edge_pages and args.edge_pages % args.pages_per_doc):
        p.error("--pages and --edge-pages must be multiples of --pages-per-doc")
    if args.phase != "all" and args.data_dir is None:
        p.error("--phase build/measure needs --data-dir")
    print("# " + " ".join([sys.executable, "-m", "bench.search", *(argv or sys.argv[1:])]), flush=True)
    if args.phase == "build":
        args.data_dir.mkdir(parents=True, exist_ok=False)
        Run(args, args.data_dir).build()
        return
    if args.phase == "measure":
        Run(args, args.data_dir).measure()
        return
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
        run = Run(args, work)
        run.build()
        run.measure()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
