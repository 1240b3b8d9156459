"""Resident memory of the embedded index's first stages, per structure and per page (issue 26, "resident memory").

Opens a store kept by ``bench.search --phase build`` (its ``ours`` folder) and loads one first stage at a time (the
sketches through the handle's private sync, so that their load is measured apart from a search), printing after
each: the bytes per page the structures hold (``LocalStats``: the held dense rows + ids + live mask,
then the int8 sketches, then the ivf lists) beside this process's anonymous RSS growth per page since before the
open (what the allocator really kept: the structures plus load temporaries not given back), and the CPU seconds
the load took. Then a few searches of each stage, and the RSS growth again (search buffers).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.resident --data-dir "$DATA"/s20k-binary

The 1M-page projection multiplies the held bytes per page (the RSS growth has a fixed part: the interpreter's
imports are excluded, but SQLite's caches and the first searches' buffers are not).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench._report import format_table
from colbert.local import LocalStore
from colbert.quantize import needs_codebook
from colbert.search import Query, SearchOptions

__all__ = ["main"]


def _anon() -> int:
    """This process's anonymous resident bytes (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="a bench.search --phase build folder")
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--candidates", type=int, default=200)
    a = p.parse_args(argv)
    saved = np.load(a.data_dir / "truth.npz")
    queries, dense_q = saved["queries"][: a.queries], saved["dense_q"][: a.queries]
    rows: list[list[object]] = []
    base, t0 = _anon(), time.process_time()
    store = LocalStore.open(a.data_dir / "ours")  # loads the dense snapshot (no sketches: dense is the default)
    n = store.count()[1]

    def record(what: str, held: int, since: float) -> None:
        cpu = time.process_time() - since
        rows.append([what, n, held // n, (_anon() - base) // n, f"{cpu:.2f}", f"{held // n * 1_000_000 / 2**20:,.0f}"])

    stats = store.stats()
    record(f"open: dense rows ({store.dense_codec}) + ids + live", stats.memory_bytes, t0)
    stages = ["dense", "pooled"] + (["ivf"] if needs_codebook(store.config.codec) else [])
    for stage in stages:
        before, t1 = store.stats(), time.process_time()
        if stage == "pooled":  # the sketches' load alone (what a pooled search does first), then its first search
            with store._read() as conn, store._sync_lock:
                store._synced(conn, sketches=True)
            held = store.stats().memory_bytes - before.memory_bytes
            record("+ pooled sketches loaded (int8, scale per centroid)", held, t1)
            t1 = time.process_time()
        opts = SearchOptions(k=10, candidates=a.candidates, first_stage=stage)
        store.search(Query(queries[0], dense_q[0] if stage == "dense" else None), opts)  # loads the stage's view
        after = store.stats()
        if stage == "ivf":
            record("+ ivf lists (int32 rows per centroid) and a first ivf search", after.ivf_memory_bytes, t1)
        else:
            record(f"+ a first {stage} search (lazy imports, rerank buffers)", 0, t1)
    t2 = time.process_time()
    for stage in stages:
        for i in range(len(queries)):
            opts = SearchOptions(k=10, candidates=a.candidates, first_stage=stage)
            store.search(Query(queries[i], dense_q[i] if stage == "dense" else None), opts)
    final = store.stats()
    record("after searches: every structure held", final.memory_bytes + final.ivf_memory_bytes, t2)
    store.close()
    head = ["structure", "pages", "held B/page", "anon RSS growth B/page", "CPU s", "held MiB at 1M pages"]
    print(format_table(head, rows, title=f"Resident memory ({a.data_dir.name})"), flush=True)


if __name__ == "__main__":
    main()
