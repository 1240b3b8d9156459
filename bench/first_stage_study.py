"""Which first stage finds the exact top-10 at the fewest pages scored? A study on a kept ``bench.search`` store.

Reads the store's held first-stage rows (dense vectors, int8 sketches: :func:`colbert.local.dense.load_rows`, on a
read-only connection: the store is not changed) and its own truth (``truth.npz``: the exact MaxSim top-10 over the
stored codes), then for each query measures the **candidate recall** of each plan — the share of the true top-10
among the ``C`` candidates it would pass to the exact rerank, which is the recall after that rerank — and its CPU
time (``time.process_time``, one thread):

* ``pooled``: every page's sketch scored (:func:`colbert.local.sketch.sketch_scores`), the best ``C``;
* ``dense N``: the ``N`` pages of best dense cosine, sketch-scored, the best ``C`` (the ``prefetch`` option);
* ``cells K nprobe R``: the ``pooled_ivf`` stage's arithmetic (:mod:`colbert.local.cells`): a cell book of ``K``
  cells trained here on a sample of the sketches, every page filed, the ``R`` best pages by
  :func:`colbert.local.ivf.ivf_top` sketch-scored, the best ``C``. Training and filing times are printed (filing 1M
  pages' 8M centroids at K = 4,096: ~2 min of CPU; the memory is ~4 GB of widened sketches per 1M pages while it
  runs).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.first_stage_study --data-dir "$DATA"/b1m \\
        --cells 4096 --nprobe 2,4,8 --reach 1000,2000,5000,10000 --prefetch 5000,10000,20000,50000
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench._report import format_table
from colbert.local.cells import CellBook, assign_cells, train_cell_book
from colbert.local.dense import DenseRows, load_rows
from colbert.local.ivf import IvfSnapshot, ivf_top
from colbert.local.sketch import sketch_scores, widen_sketches

__all__ = ["main"]

_FILE_BLOCK = 65536  # pages filed at a time (their widened sketches: 65536 × 8 × 128 × 4 B = 256 MiB)


def _top(scores: np.ndarray, c: int) -> np.ndarray:
    c = min(c, scores.size)
    part = np.argpartition(-scores, c - 1)[:c]
    return part[np.argsort(-scores[part], kind="stable")]


def _load(data: Path) -> tuple[DenseRows, np.ndarray]:
    """The held rows and each row's page number in ``bench.search``'s numbering (document × 10 + unit)."""
    conn = sqlite3.connect(f"file:{data / 'ours' / 'index.sqlite'}?mode=ro", uri=True)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    dim, width, k = int(meta["dense_dim"]), int(meta["multivector_dim"]), int(meta["sketch_vectors"])
    rows = load_rows(conn, 0, (dim, meta.get("dense_codec", "float32")), (k, width))
    numbers = {r[0]: int(r[1][1:]) * 10 + int(r[2]) for r in conn.execute("SELECT id, doc_id, page FROM pages")}
    conn.close()
    return rows, np.array([numbers[int(i)] for i in rows.ids], dtype=np.int64)


def _cells(rows: DenseRows, k: int, seed: int) -> tuple[CellBook, IvfSnapshot, str]:
    """A cell book trained on a sample of ``64 k`` sketch centroids and every page filed; (book, lists, timings)."""
    n, per_page = rows.scales.shape
    rng = np.random.default_rng(seed)
    c0 = time.process_time()
    chosen = np.sort(rng.choice(n, min(n, -(-64 * k // per_page)), replace=False))
    sample = widen_sketches(rows.sketch[chosen], rows.scales[chosen]).reshape(-1, rows.sketch.shape[1] // per_page)
    book = train_cell_book(sample, k, seed=seed)
    c1 = time.process_time()
    lists: list[np.ndarray] = []
    for start in range(0, n, _FILE_BLOCK):
        at = slice(start, start + _FILE_BLOCK)
        lists += [np.frombuffer(c, "<u2") for c in assign_cells(book, widen_sketches(rows.sketch[at], rows.scales[at]))]
    view = IvfSnapshot.build((n, 0), k, np.arange(n, dtype=np.int64), lists)
    entries = view.entries / n
    timing = f"train {c1 - c0:.0f} s CPU, file {time.process_time() - c1:.0f} s CPU, {entries:.2f} cells/page"
    return book, view, timing


Plan = Callable[[int], np.ndarray]  # query index -> candidate rows, best first (at least max C of them)


def _measure(plans: dict[str, Plan], truth: np.ndarray, cs: list[int]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, plan in plans.items():
        cpu: list[float] = []
        found: dict[int, list[float]] = {c: [] for c in cs}
        for i in range(truth.shape[0]):
            c0 = time.process_time()
            got = plan(i)
            cpu.append(1000 * (time.process_time() - c0))
            for c in cs:
                found[c].append(len(set(got[:c].tolist()) & set(truth[i].tolist())) / truth.shape[1])
        recall = " / ".join(f"{np.mean(found[c]):.2f}" for c in cs)
        rows.append([name, f"{np.median(cpu):.1f}", recall])
        print("# " + " | ".join(map(str, rows[-1])), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="a bench.search --phase build folder")
    p.add_argument("--candidates", default="200,400,800", help="C: pages passed to the exact rerank")
    p.add_argument("--prefetch", default="5000,10000,20000", help="dense prefetch depths N (empty: none)")
    p.add_argument("--cells", default="1024,4096", help="cell book sizes K (empty: none)")
    p.add_argument("--nprobe", default="2,4,8")
    p.add_argument("--reach", default="2000,5000,10000", help="pages sketch-scored after the cells")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    cs = ints(a.candidates)
    rows, numbers = _load(a.data_dir)
    saved = np.load(a.data_dir / "truth.npz")
    queries, dense_q = saved["queries"], saved["dense_q"]
    position = np.full(int(numbers.max()) + 1, -1, dtype=np.int64)
    position[numbers] = np.arange(numbers.size)
    truth = position[saved["truth"]]  # (Q, 10) held rows
    dense = rows.dense / np.maximum(np.linalg.norm(rows.dense, axis=1, keepdims=True), 1e-12)  # float32 codec only

    def score(i: int, at: np.ndarray | None = None) -> np.ndarray:
        return sketch_scores(rows.sketch, rows.scales, queries[i], rows=at)

    plans: dict[str, Plan] = {"pooled (every sketch)": lambda i: _top(score(i), max(cs))}
    for n in ints(a.prefetch):

        def dense_plan(i: int, n: int = n) -> np.ndarray:
            at = np.sort(_top(dense @ dense_q[i], n))
            return at[_top(score(i, at), max(cs))]

        plans[f"dense {n}"] = dense_plan
    table = _measure(plans, truth, cs)
    for k in ints(a.cells):
        book, view, timing = _cells(rows, k, a.seed)
        print(f"# cells K={k}: {timing}", flush=True)
        cells: dict[str, Plan] = {}
        for nprobe in ints(a.nprobe):
            for reach in ints(a.reach):

                def plan(
                    i: int, nprobe: int = nprobe, reach: int = reach, book: CellBook = book, view: IvfSnapshot = view
                ) -> np.ndarray:
                    at = np.sort(ivf_top(view, book, queries[i], reach, nprobe, None)[0])
                    return at[_top(score(i, at), max(cs))]

                cells[f"cells K={k} nprobe {nprobe} reach {reach}"] = plan
        table += _measure(cells, truth, cs)
    title = f"First-stage study ({len(truth)} queries, {numbers.size} pages): candidate recall = recall after rerank"
    print(format_table(["plan", "CPU ms (p50)", f"recall@10 at C = {' / '.join(map(str, cs))}"], table, title=title))


if __name__ == "__main__":
    main()
