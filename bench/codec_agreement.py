"""The cost of compression: top-k agreement of exhaustive MaxSim over each codec × pool factor's stored vectors with
exhaustive float32 MaxSim over the unpooled tokens, and the stored bytes per page (issue 26, "agreement vs float32").

    .venv/bin/python -m bench.codec_agreement --pages 2000 --vectors 768 --topics 2000 --queries 30  # synthetic
    .venv/bin/python -m bench.codec_agreement --real                   # real PDF pages through the tiny checkpoint

``--real``: multi-vectors of real PDF pages and queries made from their own lines (:mod:`bench._real_pages`: the
tiny random-weight checkpoint over ``samples/report.pdf`` and the PDFs under /usr/share/doc, or ``--pdf``; cached
in ``.cache/``); what those vectors do and do not tell is in that module's docstring. Otherwise structured
synthetic pages (:mod:`bench._synthetic`, ``--vectors`` tokens ±10 % of ``--dim``), queries drawn from pages.

A plan is ``codec[:pool[:K]]``: the codec, the token pool factor applied before coding (:mod:`colbert.pooling`)
and, for the residual codecs, the number of centroids (default :func:`colbert.codebook.choose_k` of the training
sample). ``levelsL`` in place of a codec name is a residual code with ``L`` buckets per dimension (any of
:data:`colbert.codebook.LEVELS`: 3 is the ternary code) whether or not a codec stores it. The residual codecs'
codebook is trained on ``--train-tokens`` tokens sampled from every page (as ``LocalStore.train_codebook`` with a
bulk load's sample). Scoring is exact over every page (no first stage), on
the values each codec stores (float32 MaxSim of the decoded tokens: what the kernels compute, up to float32
summation order), so the only difference is what the codec and pooling keep. ``agreement``: |top-k ∩ float32
top-k| / k, averaged over the queries. ``code pages/s``: pooling, codebook training and encoding, per page.

``--dense-candidates``: also the dense first stage as the embedded index runs it — cosine of the query's dense
vector with each page's stored dense vector (:mod:`colbert.local.dense_codec`), the top ``C`` reranked by exact
MaxSim (float32 tokens) — recall@k against exhaustive MaxSim, for each dense codec (synthetic only: the
synthetic dense vector is the mean of the page's tokens, a stand-in for the model's separately trained head).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._real_pages import load_real_set
from bench._synthetic import Corpus, Page
from colbert.codebook import Codebook, train
from colbert.local.dense_codec import DENSE_CODECS, decode_dense, encode_dense
from colbert.pooling import pool_tokens
from colbert.quantize import RESIDUAL_CODES, Codec, decode, encode
from colbert.scoring import PackedDocs, maxsim

__all__ = ["main"]

_PLANS = "float16:1,int8:1,levels16:1,residual2:1,levels3:1,residual1:1,binary:1,int8:3,residual2:3,binary:3"


def _top(q: np.ndarray, docs: PackedDocs, k: int) -> set[int]:
    scores = np.asarray(maxsim(q, docs), dtype=np.float64).reshape(-1)  # (N,)
    return {int(i) for i in np.argsort(-scores, kind="stable")[:k]}


def _float_docs(pages: list[np.ndarray]) -> PackedDocs:
    d = pages[0].shape[1]
    return PackedDocs.from_encoded([t.shape[0] for t in pages], [encode(t, "float32") for t in pages], d, "float32")


def _sample(pages: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    tokens = np.concatenate(pages)  # (T, d)
    rng = np.random.default_rng(seed)
    return tokens[np.sort(rng.choice(tokens.shape[0], min(n, tokens.shape[0]), replace=False))]


def stored_values(
    pages: list[np.ndarray], codec: Codec | int, pool: int, k: int | None, train_tokens: int, seed: int
) -> tuple[list[np.ndarray], float, str]:
    """Each page as ``codec`` (or a residual code of that many levels) stores it (decoded float32), the stored
    bytes per page, and the codebook's K."""
    kept = [pool_tokens(t, pool) if pool > 1 else t for t in pages]
    d = pages[0].shape[1]
    code = (codec, 1) if isinstance(codec, int) else RESIDUAL_CODES.get(codec)
    if code is not None:
        book: Codebook = train(_sample(kept, train_tokens, seed), code[0], k=k, width=code[1])
        blobs = [book.encode(t) for t in kept]
        values = [book.decode(b, t.shape[0]) for b, t in zip(blobs, kept, strict=True)]
        return values, sum(len(b) for b in blobs) / len(pages), str(book.k)
    blobs = [encode(t, codec) for t in kept]
    values = [decode(b, t.shape[0], d, codec) for b, t in zip(blobs, kept, strict=True)]
    return values, sum(len(b) for b in blobs) / len(pages), "-"


def _load(a: argparse.Namespace) -> tuple[list[np.ndarray], list[np.ndarray], list[Page] | None, list[np.ndarray], str]:
    """(pages, queries, synthetic units or None, synthetic dense queries, a line describing the set)."""
    if a.real:
        real = load_real_set(a.pdf or None)
        n_tokens = sum(p.shape[0] for p in real.pages)
        what = f"{len(real.pages)} real PDF pages (tiny checkpoint), {n_tokens / len(real.pages):.0f} tokens/page"
        return real.pages, real.queries, None, [], f"{what}; {len(real.queries)} queries from their lines"
    corpus = Corpus(seed=a.seed, dim=a.dim, vectors=a.vectors, topics=a.topics)
    centroids = corpus.centroids()
    units = [corpus.page(i, centroids) for i in range(a.pages)]
    rng = np.random.default_rng(a.seed + 1)
    drawn = [corpus.query(units[int(i)], rng) for i in rng.choice(a.pages, a.queries, False)]
    what = f"{a.pages} synthetic pages of ~{a.vectors} tokens × {a.dim} ({a.topics} topics); {a.queries} queries"
    return [u.tokens for u in units], [q for q, _ in drawn], units, [d for _, d in drawn], what


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real", action="store_true", help="real PDF pages through the tiny checkpoint")
    p.add_argument("--pdf", type=Path, action="append", help="with --real: a PDF (repeatable; default: see module)")
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--vectors", type=int, default=768, help="tokens per page (±10%%)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--topics", type=int, default=2000)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--plans", default=_PLANS, help="codec[:pool[:K]], comma-separated")
    p.add_argument("--train-tokens", type=int, default=131072, help="residual codecs: training sample")
    p.add_argument("--dense-candidates", default="", help="dense first stage plans, e.g. 25,50,100 (synthetic)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    pages, queries, units, dense_q, what = _load(a)
    exact = _float_docs(pages)
    truth = [_top(q, exact, a.k) for q in queries]
    print(f"{what}; top-{a.k} agreement vs exhaustive float32 MaxSim")
    print(f"{'codec':<10}{'pool':>5}{'K':>6}{'bytes/page':>12}{'B/token':>9}{'agreement':>11}{'code pages/s':>14}")
    tokens = sum(t.shape[0] for t in pages)
    for plan in a.plans.split(","):
        parts = plan.split(":")
        name, pool, k = parts[0], (parts[1:2] or ["1"])[0], (parts[2:3] or [""])[0]
        codec = int(name[6:]) if name.startswith("levels") else Codec(name)
        t0 = time.perf_counter()
        values, size, kk = stored_values(pages, codec, int(pool or 1), int(k) if k else None, a.train_tokens, a.seed)
        rate = len(pages) / (time.perf_counter() - t0)
        docs = _float_docs(values)
        agree = np.mean([len(_top(q, docs, a.k) & want) / a.k for q, want in zip(queries, truth, strict=True)])
        per_token = size * len(pages) / tokens
        print(f"{name:<10}{pool or 1:>5}{kk:>6}{size:>12,.0f}{per_token:>9.1f}{agree:>11.3f}{rate:>14,.0f}", flush=True)
    plans = [int(c) for c in a.dense_candidates.split(",") if c]
    if plans and units is not None:
        dense_stage(units, dense_q, queries, truth, plans, a.k)
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
                scores = np.asarray(maxsim(q, _float_docs([units[i].tokens for i in chosen])), dtype=np.float64)
                top = {int(chosen[i]) for i in np.argsort(-scores.reshape(-1), kind="stable")[:k]}
                got.append(len(top & want) / k)
            recalls.append(float(np.mean(got)))
        print(f"{codec:<12}{len(encode_dense(units[0].dense, codec)):>7}" + "".join(f"{r:>9.3f}" for r in recalls))


if __name__ == "__main__":
    raise SystemExit(main())
