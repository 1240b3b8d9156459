"""Bulk build speed of the embedded index (issue 26 item 7): pages/s of loading vectors-given documents per codec.

Structured synthetic pages (:mod:`bench._synthetic`, ~``--vectors`` tokens × ``--dim``), ``--pages-per-doc`` pages
per document, loaded into a fresh collection per codec. Pages are generated before the clock starts (data
generation excluded); the residual codecs train their codebook on a sample of the first pages' tokens
(``LocalStore.train_codebook``, timed: training is part of the build). ``--batch-docs N`` loads N documents per
``add_documents`` call (one transaction each call, each document still all or nothing); 0 calls ``add_document``
once per document. ``--workers W`` (with ``--batch-docs``) loads the same batches through
``add_document_batches``: the next batches encoded by W threads while one is written. Pages per CPU second (this
process's user + system time, all its threads) is printed beside pages/s: on a shared machine it is the steadier of
the two, and wall ÷ CPU says how many cores the load kept busy. ``--profile`` prints the top of a cProfile of the
timed part in CPU seconds (the calling thread only: profile without ``--workers``).

To compare two trees, run this script from one tree with ``--tree`` pointing at the other (its ``colbert`` package
is the one imported; a tree without ``add_document_batches`` cannot take ``--workers``); alternate the two runs.
``--against DIR`` does that in one command: for each of ``--repeat`` rounds, one subprocess per tree (this one,
then DIR) and per ``--workers`` value (a comma list; 0 = ``add_documents`` on the calling thread), the same pages,
each line of the table with the 1-minute load average before that run:

    git archive BASE | tar -x -C /tmp/bulk-base
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.bulk_load --pages 2000 --codecs binary,int8,residual2 \
        --train-tokens 32768 --batch-docs 20 --workers 0,2 --repeat 2 --against /tmp/bulk-base
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus

if TYPE_CHECKING:
    from colbert.store import UnitRecord

__all__ = ["main"]


def _documents(a: argparse.Namespace) -> list[list[UnitRecord]]:
    from colbert.store import UnitRecord

    corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors)
    centroids = corpus.centroids()
    docs = []
    for start in range(0, a.pages, a.pages_per_doc):
        pages = [corpus.page(i, centroids) for i in range(start, min(start + a.pages_per_doc, a.pages))]
        docs.append([UnitRecord(j, p.dense, p.tokens) for j, p in enumerate(pages)])
    return docs


def _sample(docs: list[list[UnitRecord]], tokens: int, seed: int) -> np.ndarray:
    """``tokens`` training tokens drawn evenly from the first documents' pages."""
    rng = np.random.default_rng(seed)
    pages = [r.multivector for d in docs for r in d]
    per_page = max(1, tokens // len(pages))
    rows = [p[rng.choice(p.shape[0], min(per_page, p.shape[0]), replace=False)] for p in pages[: tokens // per_page]]
    return np.concatenate(rows)


def load(a: argparse.Namespace, codec: str, docs: list[list[UnitRecord]], work: Path) -> tuple[float, float]:
    """Wall and CPU seconds (this process) to train (residual codecs) and load ``docs`` into a fresh collection."""
    from colbert.local import LocalOptions, LocalStore
    from colbert.quantize import Codec, needs_codebook
    from colbert.store import CollectionConfig, NewDocument

    config = CollectionConfig(dense_dim=a.dim, multivector_dim=a.dim, codec=Codec(codec))
    store = LocalStore.create(work / codec, config, LocalOptions(synchronous=a.synchronous))
    batches = [
        [NewDocument(f"d{j}", docs[j]) for j in range(i, min(i + a.batch_docs, len(docs)))]
        for i in range(0, len(docs), a.batch_docs or 1)
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    if needs_codebook(codec):
        store.train_codebook(_sample(docs, a.train_tokens, a.seed))
    if a.workers:
        from colbert.local.bulk import add_document_batches  # imported here: a tree without it can run the rest

        for _ in add_document_batches(store, batches, workers=a.workers):
            pass
    elif a.batch_docs:
        from colbert.local.bulk import add_documents

        for batch in batches:
            add_documents(store, batch)
    else:
        for j, units in enumerate(docs):
            store.add_document(f"d{j}", units)
    took = time.perf_counter() - t0, time.process_time() - c0
    store.close()
    return took


def _measure(a: argparse.Namespace) -> None:
    """Load ``a.pages`` pages per codec into fresh collections (this process); print a table, or JSON lines."""
    import colbert

    if not a.json:
        print(f"# colbert from {Path(colbert.__file__).parent}; {a.workers} encoding threads", flush=True)
    docs = _documents(a)
    rows: list[list[object]] = []
    work = Path(tempfile.mkdtemp(prefix="bulk-load-"))
    try:
        for codec in a.codecs.split(","):
            load1 = os.getloadavg()[0]
            prof = cProfile.Profile(time.process_time) if a.profile else None  # CPU seconds: the machine is shared
            if prof is not None:
                prof.enable()
            took, cpu = load(a, codec, docs, work)
            if prof is not None:
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
                print(f"## {codec}\n{out.getvalue()}", flush=True)
            if a.json:
                print(json.dumps({"codec": codec, "wall": took, "cpu": cpu, "load1": load1}), flush=True)
                continue
            rate, per_cpu = f"{a.pages / took:.0f}", f"{a.pages / cpu:.0f}"
            rows.append(
                [codec, a.pages, a.batch_docs or 1, a.workers, f"{took:.1f}", rate, per_cpu, f"{cpu / took:.2f}"]
            )
            print(f"# {codec}: {rate} pages/s ({per_cpu} per CPU second, {cpu / took:.2f} cores busy)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not a.json:
        head = ["codec", "pages", "docs/transaction", "threads", "seconds", "pages/s", "pages per CPU s", "CPU/wall"]
        print(format_table(head, rows))


def _compare(a: argparse.Namespace) -> None:
    """``--against``: alternate subprocess runs of this tree and ``a.against`` (module docstring); one table."""
    here = Path(__file__).resolve().parent.parent
    same = ["--pages", a.pages, "--vectors", a.vectors, "--dim", a.dim, "--pages-per-doc", a.pages_per_doc]
    same += ["--codecs", a.codecs, "--batch-docs", a.batch_docs, "--train-tokens", a.train_tokens]
    same += ["--synchronous", a.synchronous, "--seed", a.seed]
    rows: list[list[object]] = []
    for rnd in range(1, a.repeat + 1):
        for label, tree in (("this tree", here), (str(a.against), a.against.resolve())):
            for workers in a.worker_list:
                cmd = [
                    sys.executable,
                    "-m",
                    "bench.bulk_load",
                    *map(str, same),
                    "--tree",
                    str(tree),
                    f"--workers={workers}",
                ]
                out = subprocess.run([*cmd, "--json"], cwd=here, capture_output=True, text=True, check=True).stdout
                for line in out.splitlines():
                    r = json.loads(line)
                    rate, per_cpu, busy = a.pages / r["wall"], a.pages / r["cpu"], r["cpu"] / r["wall"]
                    rows.append([rnd, label, workers, r["codec"], f"{rate:.0f}", f"{per_cpu:.0f}", f"{busy:.2f}"])
                    rows[-1].append(f"{r['load1']:.2f}")
                    print(" ".join(map(str, rows[-1])), flush=True)
    head = ["round", "tree", "threads", "codec", "pages/s", "pages per CPU s", "CPU/wall", "load (1 min)"]
    print(format_table(head, rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--vectors", type=int, default=768)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--pages-per-doc", type=int, default=10)
    p.add_argument("--codecs", default="binary,residual1,residual2,int8")
    p.add_argument("--batch-docs", type=int, default=0, help="documents per add_documents call (0: add_document)")
    p.add_argument(
        "--workers", default="0", help="encoding threads of add_document_batches (0: none; a comma list with --against)"
    )
    p.add_argument("--train-tokens", type=int, default=131072)
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tree", type=Path, help="import colbert from this source tree (compare two trees)")
    p.add_argument("--against", type=Path, help="alternate runs of this tree and that one (module docstring)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of --against")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.worker_list = [int(w) for w in a.workers.split(",")]
    if a.against is None and len(a.worker_list) > 1:
        p.error("a list of --workers needs --against")
    if any(a.worker_list) and not a.batch_docs:
        p.error("--workers needs --batch-docs")
    if a.against is not None:
        _compare(a)
        return
    a.workers = a.worker_list[0]
    if a.tree is not None:
        sys.path.insert(0, str(a.tree.resolve()))
    _measure(a)


if __name__ == "__main__":
    main()
