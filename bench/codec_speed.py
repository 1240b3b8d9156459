"""MaxSim throughput over each storage codec's stored bytes, against this machine's measured memory bandwidth.

    .venv/bin/python -m bench.codec_speed --pages 1000 --repeats 5 --fallback

For every codec (float16, int8, binary, residual2, residual1 by default): ``--pages`` pages of ``--ld`` tokens × 128,
one query of ``--lq`` tokens, the median of ``--repeats`` timed scoring calls as the index makes them
(:func:`colbert.scoring.maxsim` for the codebook-free codecs, :meth:`colbert.residual.ResidualScorer.scores` for the
residual ones, tables built once per query and timed apart as "tables ms"). Printed per codec: pages/s, tokens/s
(wall) and tokens per CPU-second of this process (all its threads: the rate that does not depend on what else the
machine runs), GB/s of stored code bytes read (code bytes / time) and that as a % of the machine's read bandwidth,
measured in the same run (:func:`read_bandwidth`: the best of a float32 ``max`` over 512 MiB in 1 and in N threads —
``max`` is vectorised and does nothing per byte, so it runs at what the memory delivers). With ``--fallback`` the same
calls with the compiled kernel disabled (decode + torch GEMM), and the largest |kernel − fallback| score difference.
Where the kernel's int8 path runs on AMX tiles (``Kernel.amx``), a ``vnni`` row times the same int8 calls with AMX
turned off (the VNNI path: the same scores, its max |Δ| is 0), in the same run.
For the compact codecs (binary, residual) a ``fast-scan`` row times :meth:`colbert.fastscan.FastScan.bounds` over the
same pages (the pruning bounds: uint8 nibble tables, ``vpshufb``), and "CPU GB/s" (code bytes per CPU-second × the
threads) with its % of the bandwidth gives every row's rate as if the process had the machine's cores to itself.
Then, unless ``--survivor-pages 0``, :mod:`bench._fastscan_survivors`: the fraction of pages that survive the pruning
of a top-``--survivor-k`` search on structured synthetic pages, and the CPU time of the pruned and the exact search.

Data: unit rows drawn at random; the residual codecs' pages are random centroid ids and code bytes under a codebook
trained on ``8·k`` random tokens (``--k``, 4,096 as at 1M pages): speed does not depend on what the codes mean,
and encoding a million tokens against 4,096 centroids would dominate the run. To compare two trees, run this script
from one tree with ``--tree`` pointing at the other (its ``colbert`` package is the one imported).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main", "read_bandwidth"]

RESIDUAL = {"residual2": 4, "residual1": 2}  # bucket levels per dimension (colbert.quantize.RESIDUAL_LEVELS)


def read_bandwidth(threads: int, mib: int = 512, repeats: int = 5) -> float:
    """Bytes/s: the best float32 ``max`` over ``mib`` MiB (filled, so every page is real memory) split over 1 and
    over ``threads`` threads (numpy releases the GIL in reductions)."""
    a = np.full(mib << 18, 1.0, dtype=np.float32)
    best = 0.0
    for n in sorted({1, threads}):
        parts = np.array_split(a, n)
        with ThreadPoolExecutor(n) as pool:
            for _ in range(repeats):
                start = time.perf_counter()
                list(pool.map(np.max, parts))
                best = max(best, a.nbytes / (time.perf_counter() - start))
    return best


def _median_seconds(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, float, np.ndarray]:
    """Median wall seconds, median CPU seconds of this process (all its threads) and the result of ``fn``."""
    result = fn()  # warm-up (kernel build, thread pool, page faults)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def _contestant(codec: str, x_pages: int, ld: int, q: np.ndarray, k: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """(code bytes, tables seconds, score function, fast-scan bounds function or None) for one codec over freshly
    made pages."""
    from colbert import _kernel
    from colbert.codebook import train
    from colbert.quantize import encode
    from colbert.residual import ResidualDocs, ResidualScorer
    from colbert.scoring import PackedDocs, maxsim

    if codec in RESIDUAL:
        sample = rng.standard_normal((8 * k, 128)).astype(np.float32)
        book = train(sample / np.linalg.norm(sample, axis=1, keepdims=True), RESIDUAL[codec], k=k)
        n = x_pages * ld
        ids = rng.integers(0, k, n).astype(np.uint16)
        codes = rng.integers(0, 256, (n, book.code_bytes)).astype(np.uint8)
        docs = ResidualDocs(ids, codes, np.arange(0, n + 1, ld, dtype=np.int64))
        start = time.perf_counter()
        ResidualScorer(q, book)
        tables = time.perf_counter() - start
        scorers: dict[bool, ResidualScorer] = {}  # one per kernel on/off (a scorer keeps the kernel it was built with)

        def score() -> np.ndarray:
            if _kernel.enabled not in scorers:
                scorers[_kernel.enabled] = ResidualScorer(q, book)
            return scorers[_kernel.enabled].scores(docs)

        return ids.nbytes + codes.nbytes, tables, score, _fast_scan(q, 128, book, docs)
    blobs = []
    for _ in range(x_pages):
        page = rng.standard_normal((ld, 128)).astype(np.float32)
        blobs.append(encode(page / np.linalg.norm(page, axis=1, keepdims=True), codec))
    packed = PackedDocs.from_encoded([ld] * x_pages, blobs, 128, codec)
    size = sum(len(b) for b in blobs)
    del blobs
    fast = _fast_scan(q, 128, None, packed) if codec == "binary" else None
    return size, 0.0, lambda: maxsim(q, packed)[0], fast


def _fast_scan(q: np.ndarray, dim: int, book: object, docs: object) -> Callable[[], np.ndarray] | None:
    """The fast-scan bounds of every page (upper bounds returned), or None where the tree has no fast scan."""
    try:
        from colbert.fastscan import FastScan
    except ImportError:  # a tree from before the fast scan (--tree)
        return None
    scan = FastScan.build(q, dim, book)  # type: ignore[arg-type]
    return None if scan is None else lambda: scan.bounds(docs)[1]  # type: ignore[arg-type]


def _codec_rows(
    codec: str, a: argparse.Namespace, q: np.ndarray, rng: np.random.Generator, bandwidth: float, threads: int
) -> None:
    """Print one codec's rows: the kernel, the fallback (``--fallback``) and the fast scan (binary, residual).
    "CPU GB/s" is code bytes per CPU-second × threads: the rate of the process if it had the cores to itself."""
    from colbert import _kernel

    size, tables, fn, fast = _contestant(codec, a.pages, a.ld, q, a.k, rng)
    built = _kernel.kernel()
    amx = codec == "int8" and bool(getattr(built, "amx", False))  # also the VNNI path, in the same run
    paths = [("kernel", fn, True)] + ([("vnni", fn, True)] if amx else [])
    paths += [("fallback", fn, False)] if a.fallback else []
    paths += [("fast-scan", fast, True)] if fast is not None else []
    first: np.ndarray | None = None
    tokens = a.pages * a.ld
    for path, call, enabled in paths:
        _kernel.enabled = enabled
        if amx:
            built.use_amx(path != "vnni")  # type: ignore[union-attr]
        seconds, cpu, scores = _median_seconds(call, a.repeats if enabled else max(1, a.repeats // 2))
        _kernel.enabled = True
        if amx:
            built.use_amx(True)  # type: ignore[union-attr]
        first = scores if first is None else first
        delta = f"{np.abs(scores - first).max():17.2e}" if path in ("fallback", "vnni") else ""
        per_cpu = size / cpu * threads
        print(
            f"{codec:10s} {path:9s} {a.pages / seconds:9.0f} {tokens / seconds / 1e6:7.1f} "
            f"{tokens / cpu / 1e6:9.1f} {size / tokens:7.1f} {size / seconds / 1e9:6.2f} "
            f"{size / seconds / bandwidth:5.0%} {per_cpu / 1e9:8.2f} {per_cpu / bandwidth:5.0%} "
            f"{tables * 1e3:9.1f} {delta}"
        )


def _isa(built: object) -> str:
    if built is None:
        return "none (torch fallback)"
    if getattr(built, "avx512", False):
        return "AVX-512 + AMX (int8 codes)" if getattr(built, "amx", False) else "AVX-512"
    if getattr(built, "avx2", False):
        return "AVX2 (float kernel; the table kernel is compiler-vectorised C)"
    return "portable C"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=1000)
    p.add_argument("--ld", type=int, default=1024)
    p.add_argument("--lq", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--k", type=int, default=4096, help="residual codecs: centroids in the codebook")
    p.add_argument("--codecs", default="float16,int8,binary,residual2,residual1")
    p.add_argument("--fallback", action="store_true", help="also time the torch fallback (kernel disabled)")
    p.add_argument("--tree", type=Path, help="import colbert from this source tree (compare two trees)")
    p.add_argument("--survivor-pages", type=int, default=300, help="fast-scan pruning: synthetic pages (0: skip)")
    p.add_argument("--survivor-k", type=int, default=10, help="fast-scan pruning: the top-k searched")
    p.add_argument("--queries", type=int, default=5, help="fast-scan pruning: queries drawn from the pages")
    a = p.parse_args(argv)
    if a.tree is not None:
        sys.path.insert(0, str(a.tree.resolve()))
    import torch

    from colbert import _kernel

    threads = torch.get_num_threads()
    bandwidth = read_bandwidth(threads)
    built = _kernel.kernel()
    import colbert

    print(
        f"colbert from {Path(colbert.__file__).parent}; {threads} threads; read bandwidth {bandwidth / 1e9:.2f} GB/s; "
        f"kernel: {_isa(built)}"
    )
    print(f"data: {a.pages} pages × {a.ld} tokens × 128, query {a.lq} tokens")
    print(
        f"{'codec':10s} {'path':9s} {'pages/s':>9s} {'Mtok/s':>7s} {'Mtok/CPUs':>9s} {'B/token':>7s} {'GB/s':>6s} "
        f"{'% bw':>5s} {'CPU GB/s':>8s} {'% bw':>5s} {'tables ms':>9s} {'max |Δ| vs kernel':>17s}"
    )
    rng = np.random.default_rng(0)
    q = rng.standard_normal((a.lq, 128)).astype(np.float32)  # (lq, 128)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for codec in a.codecs.split(","):
        _codec_rows(codec, a, q, rng, bandwidth, threads)
    pruning = [c for c in a.codecs.split(",") if c in ("binary", *RESIDUAL)]
    if pruning and a.survivor_pages:
        from bench._fastscan_survivors import report

        report(pruning, a.survivor_pages, a.ld, a.survivor_k, a.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
