"""What a process pays the first time it searches a collection: the open (the held rows: sketches, ids, live flags),
the first search (for ``pooled_ivf`` the inverted cell lists too), then a later search, on a kept store.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.first_use --store "$DATA"/b1m/ours --repeats 2

Each repeat is a fresh process (so nothing is held from the one before); the page cache is not dropped, so the
numbers are those of a warm machine (a cold one adds the reads of the held rows from disk). To compare with an
older tree, run the same command from that tree with ``PYTHONPATH`` set to it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colbert.local import LocalOptions, LocalStore
from colbert.search import Query, SearchOptions

__all__ = ["main", "measure_once"]


def measure_once(store_dir: Path, first_stage: str, candidates: int | None) -> str:
    """One process's open, first search and second search of ``store_dir``, as a line."""
    t0, c0 = time.perf_counter(), time.process_time()
    store = LocalStore.open(store_dir, options=LocalOptions(first_stage=first_stage))
    t1, c1 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, store.config.multivector_dim)).astype(np.float32)
    query = Query(q / np.linalg.norm(q, axis=1, keepdims=True), None)
    options = SearchOptions(k=10, candidates=candidates)
    store.search(query, options)
    t2, c2 = time.perf_counter(), time.process_time()
    store.search(query, options)
    t3 = time.perf_counter()
    store.close()
    return (
        f"{first_stage}: open {t1 - t0:.2f} s ({c1 - c0:.2f} s CPU), first search {t2 - t1:.2f} s "
        f"({c2 - c1:.2f} s CPU), next search {1000 * (t3 - t2):.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, required=True, help="a kept store folder (bench.search's <data>/ours)")
    p.add_argument("--first-stage", default="pooled_ivf", choices=["dense", "pooled", "pooled_ivf"])
    p.add_argument("--candidates", type=int, default=None, help="default: the store's own count")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes, one after another")
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # a repeat's own process
    a = p.parse_args(argv)
    if not (a.store / "index.sqlite").is_file():
        p.error(f"--store {a.store}: no index.sqlite there (give bench.search's <data-dir>/ours)")
    if a.once:
        print(measure_once(a.store, a.first_stage, a.candidates), flush=True)
        return
    for _ in range(a.repeats):
        args = ["--store", str(a.store), "--first-stage", a.first_stage, "--once"]
        args += [] if a.candidates is None else ["--candidates", str(a.candidates)]
        subprocess.run([sys.executable, "-m", "bench.first_use", *args], check=True)


if __name__ == "__main__":
    main()
