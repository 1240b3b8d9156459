"""The cost of compression: top-k agreement of exhaustive MaxSim over each codec × pool factor's stored vectors with
exhaustive float32 MaxSim over the unpooled tokens, and the stored bytes per unit (issue 26, "agreement vs float32").

    .venv/bin/python -m bench.codec_agreement --pages 2000 --vectors 150 --queries 30

Structured synthetic units (:mod:`bench._synthetic`, ``--vectors`` tokens ±10 % of ``--dim``); queries drawn from
units. Scoring is exact over every unit (no first stage), so the only difference is what the codec and pooling
store. ``agreement``: |top-k ∩ float32 top-k| / k, averaged over the queries.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._synthetic import Corpus
from colbert.pooling import pool_tokens
from colbert.quantize import Codec, encode
from colbert.scoring import PackedDocs, maxsim

__all__ = ["main"]


def _top(q: np.ndarray, docs: PackedDocs, k: int) -> set[int]:
    scores = np.asarray(maxsim(q, docs), dtype=np.float64).reshape(-1)  # (N,)
    return {int(i) for i in np.argsort(-scores, kind="stable")[:k]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--vectors", type=int, default=150, help="tokens per unit (±10%%)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--topics", type=int, default=400)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--plans", default="float16:1,int8:1,int8:2,int8:3,float16:2,float16:3,binary:1,binary:2")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors, topics=a.topics)
    centroids = corpus.centroids()
    pages = [corpus.page(i, centroids).tokens for i in range(a.pages)]
    rng = np.random.default_rng(a.seed + 1)
    queries = [corpus.query(corpus.page(int(i), centroids), rng)[0] for i in rng.choice(a.pages, a.queries, False)]
    exact = PackedDocs.from_encoded(
        [t.shape[0] for t in pages], [encode(t, "float32") for t in pages], a.dim, "float32"
    )
    truth = [_top(q, exact, a.k) for q in queries]
    print(f"{a.pages} units of ~{a.vectors} tokens × {a.dim}; {a.queries} queries; top-{a.k} agreement vs float32")
    print(f"{'codec':<9}{'pool':>5}{'bytes/unit':>12}{'agreement':>11}")
    for plan in a.plans.split(","):
        name, factor = plan.split(":")
        codec, pool = Codec(name), int(factor)
        stored = [pool_tokens(t, pool) if pool > 1 else t for t in pages]
        blobs = [encode(t, codec) for t in stored]
        docs = PackedDocs.from_encoded([t.shape[0] for t in stored], blobs, a.dim, codec)
        agree = np.mean([len(_top(q, docs, a.k) & want) / a.k for q, want in zip(queries, truth, strict=True)])
        size = sum(len(b) for b in blobs) / a.pages
        print(f"{codec.value:<9}{pool:>5}{size:>12,.0f}{agree:>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
