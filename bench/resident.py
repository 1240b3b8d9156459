"""Resident memory of the embedded index's first stages, per structure and per page (issue 26, "resident memory").

Opens a store kept by ``bench.search --phase build`` (its ``ours`` folder) as a process whose default first stage
is ``--first-stage`` (what it holds from the open: the dense rows for ``dense``, the sketches for ``pooled`` /
``pooled_ivf``) and runs a few searches of that stage, then of each other stage in turn (each loads what it reads
the first time: dense rows, sketches, inverted lists), printing after each step: the bytes per page the structures
hold (``LocalStats``: ids + live mask + the held dense rows and sketches, plus the inverted lists) beside this
process's anonymous RSS growth per page since before the open (what the allocator really kept: the structures plus
load temporaries not given back and the searches' buffers), and the CPU seconds the step took. Every search is
given the query's dense vector, as the service gives it: only the stages that read the dense rows load them.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.resident --data-dir "$DATA"/s20k-binary
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.resident --data-dir "$DATA"/s20k-binary --first-stage pooled

The 1M-page projection multiplies the held bytes per page (the RSS growth has a fixed part: the interpreter's
imports are excluded, but SQLite's caches and the first searches' buffers are not). Opening a store writes to it
(its WAL, a checkpoint): point it at a copy of a store that others read.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench._report import format_table
from colbert.local import LocalOptions, LocalStore
from colbert.quantize import needs_codebook
from colbert.search import Query, SearchOptions

__all__ = ["main"]


def _anon() -> int:
    """This process's anonymous resident bytes (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _held(store: LocalStore) -> int:
    stats = store.stats()
    return stats.memory_bytes + stats.ivf_memory_bytes


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="a bench.search --phase build folder")
    p.add_argument("--first-stage", default="dense", choices=("dense", "pooled", "pooled_ivf", "ivf"))
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--candidates", type=int, default=200)
    a = p.parse_args(argv)
    saved = np.load(a.data_dir / "truth.npz")
    queries, dense_q = saved["queries"][: a.queries], saved["dense_q"][: a.queries]
    rows: list[list[object]] = []
    base, t0 = _anon(), time.process_time()
    store = LocalStore.open(a.data_dir / "ours", options=LocalOptions(first_stage=a.first_stage))
    n = store.count()[1]

    def record(what: str, held: int, since: float) -> None:
        cpu = time.process_time() - since
        rows.append([what, n, held // n, (_anon() - base) // n, f"{cpu:.2f}", f"{held // n * 1_000_000 / 2**20:,.0f}"])

    record(f"open, first stage {a.first_stage}: ids + live + held rows ({store.dense_codec} dense)", _held(store), t0)
    stages = ["dense", "pooled"] + (["pooled_ivf"] if store.cell_count() else [])
    stages += ["ivf"] if needs_codebook(store.config.codec) else []
    for stage in [None, *(s for s in stages if s != a.first_stage)]:  # None: the process's default first stage
        before, t1 = _held(store), time.process_time()
        opts = SearchOptions(k=10, candidates=a.candidates, first_stage=stage)  # type: ignore[arg-type]
        for i in range(len(queries)):
            store.search(Query(queries[i], dense_q[i]), opts)  # the first one loads what the stage reads
        if stage is None:
            record(f"{len(queries)} searches of the default first stage: every structure held", _held(store), t0)
        else:
            record(f"+ {len(queries)} {stage} searches: what they loaded", _held(store) - before, t1)
    record("after every stage: every structure held", _held(store), t0)
    store.close()
    head = ["step", "pages", "held B/page", "anon RSS growth B/page", "CPU s", "held MiB at 1M pages"]
    print(format_table(head, rows, title=f"Resident memory ({a.data_dir.name})"), flush=True)


if __name__ == "__main__":
    main()
