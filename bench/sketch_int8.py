"""Pooled first stage: sketches held as int8 (a scale per centroid) vs bfloat16 (as held before), on a kept store.

For each of ``--queries`` fresh queries (drawn as ``bench.search`` draws them, from other pages than its own), both
forms score every page's sketch; the exact MaxSim over the stored codes is computed for the union of both forms'
top ``max(--candidates)`` pages (the reference top-10: with pooled recall 1.0 at 200 candidates, the true top-10
lies inside it), and each form's recall@10 after the exact rerank of its top C is printed for each C, with how
often the two forms' top-C sets differ.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.sketch_int8 --data-dir "$DATA"/s10k-residual2 --vectors 768
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench._report import format_table
from bench._synthetic import Corpus
from colbert.local import LocalStore
from colbert.local.schema import read_sketch_codec
from colbert.local.sketch import quantize_sketches, sketch_scores
from colbert.local.sketch_codec import export_rows

__all__ = ["main"]


def _bf16(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to bfloat16 (nearest even), as float32."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).float().numpy()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="a bench.search --phase build folder")
    p.add_argument("--vectors", type=int, default=1024, help="as the store was built with")
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--candidates", default="50,100,200")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--saved", action="store_true", help="the build's own queries (truth.npz) instead of fresh ones")
    a = p.parse_args(argv)
    cands = [int(c) for c in a.candidates.split(",")]
    conn = sqlite3.connect(f"file:{a.data_dir / 'ours' / 'index.sqlite'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT p.id, p.doc_id, p.page, s.data FROM pages p JOIN sketches s ON s.page_id = p.id ORDER BY p.id"
    ).fetchall()
    codec = read_sketch_codec(conn, a.data_dir / "ours")
    conn.close()
    keys = [(r[1], r[2]) for r in rows]
    store = LocalStore.open(a.data_dir / "ours")
    d, k = store.config.multivector_dim, store.sketch_vectors
    # the float16 centroids whichever way the index stores them (an int8 row widens to what it was made from)
    wide = export_rows(b"".join(r[3] for r in rows), len(rows), k, d, codec)
    half = np.frombuffer(b"".join(wide), dtype=np.float16).reshape(len(rows), -1)  # (P, k·d)
    old = _bf16(half.astype(np.float32)).reshape(len(rows), k, d)  # (P, k, d): what was held before
    codes, scales = quantize_sketches(half.reshape(len(rows), k, d))
    corpus = Corpus(seed=0, dim=d, vectors=a.vectors)
    centroids = corpus.centroids()
    rng = np.random.default_rng(a.seed)
    hits = {(form, c): 0.0 for form in ("bf16", "int8") for c in cands}
    differ = dict.fromkeys(cands, 0)
    saved = np.load(a.data_dir / "truth.npz")["queries"] if a.saved else None
    count = len(saved) if saved is not None else a.queries
    for i in range(count):
        if saved is not None:
            q = saved[i]
        else:
            q, _dense = corpus.query(corpus.page(int(rng.integers(len(rows))), centroids), rng)  # (Lq, d)
        scores = {
            "bf16": np.einsum("qd,pkd->pqk", _bf16(q), old, optimize=True).max(axis=2).sum(axis=1),
            "int8": sketch_scores(codes, scales, q),
        }
        tops = {form: np.argsort(-s, kind="stable")[: max(cands)] for form, s in scores.items()}
        union = np.union1d(tops["bf16"], tops["int8"])
        exact = {int(i): _exact(store, keys[int(i)], q) for i in union}
        truth = set(sorted(exact, key=lambda i: -exact[i])[:10])
        for c in cands:
            for form, top in tops.items():
                got = sorted(top[:c].tolist(), key=lambda i: -exact[i])[:10]
                hits[(form, c)] += len(truth & set(got)) / 10
            differ[c] += set(tops["bf16"][:c].tolist()) != set(tops["int8"][:c].tolist())
    store.close()
    table = [[c, f"{hits[('bf16', c)] / count:.4f}", f"{hits[('int8', c)] / count:.4f}", differ[c]] for c in cands]
    head = ["candidates", "recall@10 bf16", "recall@10 int8", "queries whose top-C sets differ"]
    print(format_table(head, table, title=f"Sketch precision ({a.data_dir.name}, {count} queries)"), flush=True)


def _exact(store: LocalStore, key: tuple[str, int], q: np.ndarray) -> float:
    unit = store.get_unit(key[0], key[1])
    assert unit is not None
    return float((q @ np.asarray(unit.multivector, dtype=np.float32).T).max(axis=1).sum())


if __name__ == "__main__":
    main()
