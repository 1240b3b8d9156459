"""The build phase of :mod:`bench.search`: every page into our index (and the first ``--edge-pages`` into Qdrant
Edge), with the exact top-k over what the index stores, saved for the measure phase."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import numpy as np

from bench._synthetic import ExactTopK, Page
from colbert.local import LocalOptions, LocalStore
from colbert.local.bulk import add_documents
from colbert.quantize import Codec
from colbert.store import CollectionConfig, NewDocument, UnitRecord

if TYPE_CHECKING:
    from bench.search import Run

__all__ = ["build", "stored_rows"]


def stored_rows(store: LocalStore, doc_id: str, unit: int) -> np.ndarray:
    """The float32 rows the store scores for a unit (its codes decoded)."""
    got = store.get_unit(doc_id, unit)
    assert got is not None
    return np.asarray(got.multivector, dtype=np.float32)


def build(run: Run) -> None:
    """Ingest every page into ``run``'s index (and the first ``--edge-pages`` into Qdrant Edge, given the same
    codec-rounded vectors our index scores); save queries, exact top-k and ingest figures in ``run.work``."""
    a = run.args
    edge_pages = run.edge_pages()
    rng = np.random.default_rng(a.seed + 1)
    sources = rng.choice(edge_pages or a.pages, a.queries, replace=False)
    qs = [run.corpus.query(run.corpus.page(int(i), run.centroids), rng) for i in sources]
    queries = np.stack([q for q, _ in qs])  # (Q, Lq, dim)
    dense_q = np.stack([d for _, d in qs])  # (Q, dim)
    texts = [run.text.query(run.text.page(int(i)), rng) for i in sources] if run.text else []
    truth = ExactTopK(queries, a.k)
    truth_f32 = ExactTopK(queries, a.k) if a.agreement else None  # over the original float32 tokens
    truth_edge = np.empty((len(queries), 0), dtype=np.int64)
    config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=run.codec)
    options = LocalOptions(synchronous=a.synchronous, sketch_vectors=a.sketch_vectors, dense_codec=a.dense_codec)
    store = LocalStore.create(run.work / "ours", config, options)
    edge = None
    if edge_pages:
        from bench._edge import EdgeIndex

        edge = EdgeIndex(run.work / "edge", a.dim, a.dim, "float16" if run.codec == Codec.FLOAT16 else "float32")
    t_ours = t_edge = t_gen = t_truth = t_opt = 0.0
    per_doc = a.pages_per_doc
    pending: list[tuple[int, list[Page]]] = []  # documents waiting for the next add_documents
    for start in range(0, a.pages, per_doc):
        t0 = time.perf_counter()
        pages = [run.corpus.page(i, run.centroids) for i in range(start, min(start + per_doc, a.pages))]
        pending.append((start, pages))
        t1 = time.perf_counter()
        t_gen += t1 - t0
        done = start + len(pages)
        if len(pending) < a.batch_docs and done < a.pages:
            continue
        docs = [
            NewDocument(
                f"d{first // per_doc}",
                [
                    UnitRecord(j, p.dense, p.tokens, text=run.text.page(first + j) if run.text else None)
                    for j, p in enumerate(doc)
                ],
            )
            for first, doc in pending
        ]
        add_documents(store, docs)
        t2 = time.perf_counter()
        t_ours += t2 - t1
        for first, doc in pending:  # the exact top-k over what the store holds (its decoded codes)
            t2 = time.perf_counter()
            stored = [stored_rows(store, f"d{first // per_doc}", j) for j in range(len(doc))]
            truth.add(first, stored)
            if truth_f32 is not None:
                truth_f32.add(first, [p.tokens for p in doc])
            t3 = time.perf_counter()
            if edge is not None and first < edge_pages:
                edge.add(first, stored, [p.dense for p in doc])
            t_truth, t_edge = t_truth + t3 - t2, t_edge + time.perf_counter() - t3
            if edge is not None and first + len(doc) == edge_pages:
                t5 = time.perf_counter()
                edge.finish()
                t_opt = time.perf_counter() - t5
                edge.close()
                edge = None
                truth_edge = truth.snapshot()[0]
                print(f"# {edge_pages} pages: Edge {edge_pages / (t_edge + t_opt):.1f} pages/s incl. optimize")
        pending = []
        if done % max(per_doc, a.pages // 20) < per_doc * a.batch_docs:
            took = f"gen {t_gen:.0f} s, ours {t_ours:.0f} s, truth {t_truth:.0f} s, edge {t_edge:.0f} s"
            print(f"# {done}/{a.pages} pages; {took}", flush=True)
    store.close()
    figures = {
        "ours_ingest_pages_s": a.pages / t_ours,
        "edge_ingest_pages_s": edge_pages / (t_edge + t_opt) if edge_pages else 0.0,
    }
    np.savez(
        run.work / "truth.npz",
        queries=queries,
        dense_q=dense_q,
        truth=truth.snapshot()[0],
        truth_f32=truth.snapshot()[0] if truth_f32 is None else truth_f32.snapshot()[0],
        has_f32=truth_f32 is not None,
        truth_edge=truth_edge,
        texts=np.asarray(texts, dtype=str),
    )
    (run.work / "build.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, **figures}))
