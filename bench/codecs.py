"""Codec × first stage on structured synthetic pages (issue 26): one run, one table.

For each codec (``--codecs``) the same pages (:mod:`bench._synthetic`, ~``--vectors`` tokens × 128 dims each) are
loaded into a fresh embedded collection through ``add_document`` (``--pages-per-doc`` pages per document); the
residual codecs first train their codebook on a sample of ``--train-tokens`` tokens from the first
``--train-pages`` pages (``LocalStore.train_codebook``, timed as part of the build). Then, per first stage
(``--stages``: ``dense``, ``pooled``, ``ivf`` — ivf on the residual codecs only) and ``--candidates``:

* p50 / p99 latency of one query at a time;
* recall@k against exhaustive MaxSim **over the same stored codes** (``exhaustive=True`` on the same store): what
  the first stage loses;
* agreement@k against exhaustive **float32** MaxSim over the original tokens (plain numpy, :class:`ExactTopK`):
  what the codec and the first stage lose together (the "exhaustive" row is the codec's cost alone);
* bytes per page on disk (the collection directory, WAL checkpointed) and in memory (the dense matrix, the
  sketches, the ivf lists when loaded);
* build pages/s (codebook training included, data generation excluded).

    nice -n 10 .venv/bin/python -m bench.codecs --pages 2000 --queries 20
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus, ExactTopK
from colbert.local import LocalOptions, LocalStore
from colbert.quantize import Codec, needs_codebook
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


class Bench:
    def __init__(self, a: argparse.Namespace, work: Path) -> None:
        self.a, self.work = a, work
        self.corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors, topics=a.topics)
        self.centroids = self.corpus.centroids()
        rng = np.random.default_rng(a.seed + 1)
        sources = rng.choice(a.pages, a.queries, replace=False)
        qs = [self.corpus.query(self.corpus.page(int(i), self.centroids), rng) for i in sources]
        self.queries = np.stack([q for q, _ in qs])  # (Q, Lq, dim)
        self.dense_q = np.stack([d for _, d in qs])  # (Q, dim)
        self.rows: list[list[object]] = []

    def float32_truth(self) -> np.ndarray:
        truth = ExactTopK(self.queries, self.a.k)
        for start in range(0, self.a.pages, 64):
            pages = [self.corpus.page(i, self.centroids).tokens for i in range(start, min(start + 64, self.a.pages))]
            truth.add(start, pages)
        return truth.snapshot()[0]  # (Q, k)

    def build(self, codec: str) -> tuple[LocalStore, float]:
        a = self.a
        config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=Codec(codec))
        options = LocalOptions(synchronous="NORMAL", nprobe=a.nprobe)
        store = LocalStore.create(self.work / codec, config, options)
        spent = 0.0
        if needs_codebook(codec):
            rng = np.random.default_rng(a.seed + 2)
            n_train = min(a.train_pages, a.pages)
            per_page = max(1, a.train_tokens // n_train)
            sample = []
            for i in range(n_train):
                tokens = self.corpus.page(i, self.centroids).tokens
                sample.append(tokens[rng.choice(tokens.shape[0], min(per_page, tokens.shape[0]), replace=False)])
            t0 = time.perf_counter()
            store.train_codebook(np.concatenate(sample))
            spent += time.perf_counter() - t0
        for start in range(0, a.pages, a.pages_per_doc):
            pages = [self.corpus.page(i, self.centroids) for i in range(start, min(start + a.pages_per_doc, a.pages))]
            records = [UnitRecord(j, p.dense, p.tokens) for j, p in enumerate(pages)]
            t0 = time.perf_counter()
            store.add_document(f"d{start // a.pages_per_doc}", records)
            spent += time.perf_counter() - t0
        return store, a.pages / spent

    def page_ids(self, hits: list) -> list[int]:  # type: ignore[type-arg]
        return [int(h.doc_id[1:]) * self.a.pages_per_doc + h.unit for h in hits]

    def run_codec(self, codec: str, truth32: np.ndarray) -> None:
        a = self.a
        store, build_rate = self.build(codec)
        exact_codes = [
            self.page_ids(store.search(Query(q, None), SearchOptions(k=a.k, exhaustive=True))) for q in self.queries
        ]
        agree_exact = np.mean([len(set(e) & set(t)) / a.k for e, t in zip(exact_codes, truth32.tolist(), strict=True)])
        disk = _dir_bytes(self.work / codec) / a.pages
        built = f"{build_rate:.0f}"
        self.rows.append([codec, "exhaustive", "-", "-", "-", 1.0, f"{agree_exact:.3f}", f"{disk:,.0f}", "-", built])
        print(f"# {codec} exhaustive: {self.rows[-1]}", flush=True)
        stages = [s for s in a.stages.split(",") if s and (s != "ivf" or needs_codebook(codec))]
        for stage in stages:
            for cand in [int(c) for c in a.candidates.split(",") if c]:
                times, recall, agree = [], [], []
                for i, q in enumerate(self.queries):
                    dense = self.dense_q[i] if stage == "dense" else None
                    opts = SearchOptions(k=a.k, candidates=cand, first_stage=stage)
                    t0 = time.perf_counter()
                    got = self.page_ids(store.search(Query(q, dense), opts))
                    times.append(time.perf_counter() - t0)
                    recall.append(len(set(got) & set(exact_codes[i])) / a.k)
                    agree.append(len(set(got) & set(truth32[i].tolist())) / a.k)
                held = store.stats()  # after this stage's searches: what they loaded is held
                memory = held.memory_bytes + (held.ivf_memory_bytes if stage == "ivf" else 0)
                p50, p99 = (f"{1000 * np.percentile(times, q):.1f}" for q in (50, 99))
                measured = [
                    f"{np.mean(recall):.3f}",
                    f"{np.mean(agree):.3f}",
                    f"{disk:,.0f}",
                    f"{memory / a.pages:,.0f}",
                ]
                self.rows.append([codec, stage, cand, p50, p99, *measured, built])
                print(f"# {codec} {stage} {cand}: {self.rows[-1]}", flush=True)
        store.close()
        shutil.rmtree(self.work / codec, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--vectors", type=int, default=768, help="tokens per page (±10 %%)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--topics", type=int, default=2000)
    p.add_argument("--pages-per-doc", type=int, default=10)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--codecs", default="float16,int8,binary,residual2,residual1")
    p.add_argument("--stages", default="dense,pooled,ivf")
    p.add_argument("--candidates", default="200")
    p.add_argument("--nprobe", type=int, default=8)
    p.add_argument("--train-pages", type=int, default=2000, help="residual codecs: pages sampled for the codebook")
    p.add_argument("--train-tokens", type=int, default=131072, help="residual codecs: training tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-codecs-", dir=a.work_dir))
    try:
        bench = Bench(a, work)
        t0 = time.perf_counter()
        truth32 = bench.float32_truth()
        print(f"# float32 truth over {a.pages} pages in {time.perf_counter() - t0:.0f} s", flush=True)
        for codec in a.codecs.split(","):
            bench.run_codec(codec, truth32)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ["codec", "first stage", "candidates", "p50 ms", "p99 ms", f"recall@{a.k} same codes",
              f"agreement@{a.k} float32", "disk B/page", "memory B/page", "build pages/s"]  # fmt: skip
    print(f"\n{a.pages} pages × ~{a.vectors} tokens × {a.dim} dims, {a.queries} queries, nprobe {a.nprobe}\n")
    print(format_table(header, bench.rows))


if __name__ == "__main__":
    main()
