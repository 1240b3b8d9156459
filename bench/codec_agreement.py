"""The cost of compression: top-k agreement of exhaustive MaxSim over each codec × pool factor's stored vectors with
exhaustive float32 MaxSim over the unpooled tokens, and the stored bytes per unit (issue 26, "agreement vs float32").

    .venv/bin/python -m bench.codec_agreement --pages 2000 --vectors 150 --queries 30

Structured synthetic units (:mod:`bench._synthetic`, ``--vectors`` tokens ±10 % of ``--dim``); queries drawn from
units. Scoring is exact over every unit (no first stage), so the only difference is what the codec and pooling
store. ``agreement``: |top-k ∩ float32 top-k| / k, averaged over the queries.

``--dense-candidates``: also the dense first stage as the embedded index runs it — cosine of the query's dense
vector with each unit's stored dense vector (:mod:`colbert.local.dense_codec`), the top ``C`` reranked by exact
MaxSim (float32 tokens) — recall@k against exhaustive MaxSim, for each dense codec. (The synthetic dense vector is
the mean of the unit's tokens, a stand-in for the model's separately trained head.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._synthetic import Corpus, Page
from colbert.local.dense_codec import DENSE_CODECS, decode_dense, encode_dense
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
    p.add_argument("--dense-candidates", default="25,50,100", help="dense first stage plans ('': skip)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors, topics=a.topics)
    centroids = corpus.centroids()
    units = [corpus.page(i, centroids) for i in range(a.pages)]
    pages = [u.tokens for u in units]
    rng = np.random.default_rng(a.seed + 1)
    drawn = [corpus.query(units[int(i)], rng) for i in rng.choice(a.pages, a.queries, False)]
    queries = [q for q, _ in drawn]
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
    plans = [int(c) for c in a.dense_candidates.split(",") if c]
    if plans:
        dense_stage(units, [d for _, d in drawn], queries, truth, plans, a.k)
    return 0


def dense_stage(
    units: list[Page],
    dense_q: list[np.ndarray],
    queries: list[np.ndarray],
    truth: list[set[int]],
    plans: list[int],
    k: int,
) -> None:
    """Recall@k of (stored dense cosine top-C → exact float32 MaxSim rerank) vs exhaustive MaxSim, per dense codec."""
    d = units[0].dense.shape[0]
    print(f"dense first stage + exact rerank, recall@{k} vs exhaustive MaxSim ({d}-d dense)")
    print(f"{'dense codec':<12}{'bytes':>7}" + "".join(f"{f'C={c}':>9}" for c in plans))
    for codec in DENSE_CODECS:
        stored = decode_dense(b"".join(encode_dense(u.dense, codec) for u in units), len(units), d, codec)  # (N, d)
        recalls = []
        for c in plans:
            got = []
            for q, dq, want in zip(queries, dense_q, truth, strict=True):
                chosen = np.argsort(-(stored @ dq), kind="stable")[:c]  # (C,) unit indices
                sub = PackedDocs.from_encoded(
                    [units[i].tokens.shape[0] for i in chosen],
                    [units[i].tokens.tobytes() for i in chosen],
                    d,
                    "float32",
                )
                scores = np.asarray(maxsim(q, sub), dtype=np.float64).reshape(-1)  # (C,)
                top = {int(chosen[i]) for i in np.argsort(-scores, kind="stable")[:k]}
                got.append(len(top & want) / k)
            recalls.append(float(np.mean(got)))
        print(f"{codec:<12}{len(encode_dense(units[0].dense, codec)):>7}" + "".join(f"{r:>9.3f}" for r in recalls))


if __name__ == "__main__":
    raise SystemExit(main())
