"""More queries for a kept ``bench.search`` store: their exact top-k by the store's exhaustive scan.

``bench.search --phase build`` computes the exact top-k of its ``--queries`` while it ingests (plain numpy over the
stored codes, :class:`bench._synthetic.ExactTopK`). At 1M pages that pass is the build's, so a store built with 10
queries measures every plan on 10 queries (100 top-10 entries: a recall of 0.99 is one miss). This script draws
``--queries`` more from the same corpus (other source pages, another random stream) and finds each one's exact
top-k with the store's own exhaustive search (``SearchOptions(exhaustive=True)``: exact MaxSim over every stored
unit, the kernel that the tests hold equal to a float64 reference). It first checks that method on ``--check`` of
the build's queries: their exhaustive top-k must be the build's numpy top-k (else it stops).

It writes a new data folder beside nothing else: ``truth.npz`` with the build's queries followed by the new ones,
the build's ``build.json``, and ``ours`` as a link to the built store, so that ``bench.search --phase measure
--data-dir OUT`` (same flags, ``--queries`` = the total) measures every plan on all of them. The float32
agreement exists only for the build's queries: the new folder has none (``has_f32`` false).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m bench.search_queries --data-dir "$DATA"/b1m --out \\
        "$DATA"/b1m-q50 --queries 40
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._synthetic import Corpus
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions

__all__ = ["main"]

_STREAM = 7_919  # the new queries' random stream: not the build's (seed + 1)


def exhaustive_top(store: LocalStore, q: np.ndarray, k: int, per_doc: int) -> list[int]:
    """The exact MaxSim top-``k`` page numbers of ``q`` over every stored unit."""
    hits = store.search(Query(q, None), SearchOptions(k=k, candidates=k, exhaustive=True))
    return [int(h.doc_id[1:]) * per_doc + h.unit for h in hits]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True, help="a bench.search --phase build folder")
    p.add_argument("--out", type=Path, required=True, help="the new data folder (must not exist)")
    p.add_argument("--queries", type=int, default=40, help="new queries")
    p.add_argument("--check", type=int, default=2, help="build queries whose top-k the exhaustive scan must repeat")
    a = p.parse_args(argv)
    if a.out.exists():
        sys.exit(f"{a.out} exists; name a new folder")
    built = json.loads((a.data_dir / "build.json").read_text())
    b = built["args"]
    pages, k, per_doc = int(b["pages"]), int(b["k"]), int(b["pages_per_doc"])
    corpus = Corpus(seed=int(b["seed"]), dim=int(b["dim"]), vectors=int(b["vectors"]), topics=int(b["topics"]))
    centroids = corpus.centroids()
    saved = dict(np.load(a.data_dir / "truth.npz"))
    rng = np.random.default_rng(int(b["seed"]) + _STREAM)
    sources = rng.choice(pages, a.queries, replace=False)
    qs = [corpus.query(corpus.page(int(i), centroids), rng) for i in sources]
    store = LocalStore.open(a.data_dir / "ours")
    try:
        for i in range(min(a.check, len(saved["truth"]))):
            got = exhaustive_top(store, saved["queries"][i], k, per_doc)
            if set(got) != set(saved["truth"][i].tolist()):
                sys.exit(f"build query {i}: the exhaustive scan's top-{k} {got} is not the build's {saved['truth'][i]}")
            print(f"build query {i}: the exhaustive scan repeats the build's top-{k}", flush=True)
        truth = []
        for n, (q, _) in enumerate(qs):
            t0 = time.perf_counter()
            truth.append(exhaustive_top(store, q, k, per_doc))
            print(f"new query {n + 1}/{len(qs)}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        store.close()
    a.out.mkdir(parents=True)
    (a.out / "ours").symlink_to((a.data_dir / "ours").resolve())
    shutil.copy(a.data_dir / "build.json", a.out / "build.json")
    new_truth = np.asarray(truth, dtype=np.int64)
    np.savez(
        a.out / "truth.npz",
        queries=np.concatenate([saved["queries"], np.stack([q for q, _ in qs])]),
        dense_q=np.concatenate([saved["dense_q"], np.stack([d for _, d in qs])]),
        truth=np.concatenate([saved["truth"], new_truth]),
        truth_f32=np.concatenate([saved["truth"], new_truth]),
        has_f32=False,
        truth_edge=np.empty((len(saved["truth"]) + len(qs), 0), dtype=np.int64),
        texts=saved["texts"],
    )
    print(f"{a.out}: {len(saved['truth'])} + {len(qs)} queries", flush=True)


if __name__ == "__main__":
    main()
