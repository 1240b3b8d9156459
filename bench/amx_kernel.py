"""The integer kernel (``maxsim_int``) on AMX and on VNNI, called directly, against the scorer's paths (issue 26).

    .venv/bin/python -m bench.amx_kernel --pages 300 --repeats 5

Same pages and query as ``bench/codec_speed.py`` (unit rows, ``--ld`` tokens × 128, a ``--lq``-token query). Per
codec, timed over all pages: the scorer (:func:`colbert.scoring.maxsim`, in its blocks of 2^20 / lanes pages — all
300 pages in one — each split over the thread pool), the same scorer in blocks of 2^21 / ΣLq tokens (``block_tokens``:
the blocks it walked before, 64 pages of 1,024 tokens at 32 query tokens), then ``maxsim_int`` with the scorer's
fixed-point query in one :func:`run_pages` call (the kernel alone, no per-block Python), on AMX tiles (``Kernel.amx``)
and on VNNI. Printed: Mtok/s (wall), Mtok
per CPU-second, GB/s of code bytes (int8: 128 code bytes + a 4-byte scale per token; binary: 16) and % of the read
bandwidth probe measured in the same run.

int8: the direct calls are the scorer's own kernel (the same scores). binary: the scorer uses ``maxsim_lut`` (float32
tables of the query's ±q sums per byte); ``maxsim_int`` kind 1 (bits expanded to bytes 0/1, exact int32 sums with the
fixed-point query) is timed as the alternative it would be, not as scores to compare (a ±1 decoding is 2·that − Σq
per lane, and the rounding differs from the tables': wiring it would change the binary codec's arithmetic contract).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

__all__ = ["main"]


def _paths(codec: str, a: argparse.Namespace, q: np.ndarray, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """(code bytes, [(name, function)]) for one codec over freshly made pages."""
    from colbert import _kernel
    from colbert.quantize import encode
    from colbert.query_scorer import fixed_point
    from colbert.scoring import PackedDocs, maxsim

    built = _kernel.kernel()
    assert built is not None
    blobs = []
    for _ in range(a.pages):
        page = rng.standard_normal((a.ld, 128)).astype(np.float32)
        blobs.append(encode(page / np.linalg.norm(page, axis=1, keepdims=True), codec))
    packed = PackedDocs.from_encoded([a.ld] * a.pages, blobs, 128, codec)
    n_lanes = -(-q.shape[0] // 32) * 32
    padded = np.zeros((n_lanes, q.shape[1]), dtype=np.float32)
    padded[: q.shape[0]] = q
    qi, corr, _ = fixed_point(padded)  # the scorer's fixed-point query
    corr = corr if codec == "int8" else np.zeros_like(corr)  # bytes 0/1: no offset to remove
    codes, offsets = np.ascontiguousarray(packed.tokens), np.ascontiguousarray(packed.offsets, dtype=np.int64)
    scales = None if packed.scales is None else np.ascontiguousarray(packed.scales)
    out = np.empty((a.pages, n_lanes), dtype=np.float32)
    size = sum(len(b) for b in blobs)

    def direct(amx: bool) -> None:
        built.use_amx(amx)

        def call(p0: int, p1: int) -> None:
            scratch = np.empty(1024, dtype=np.uint8)
            built.maxsim_int(
                qi.ctypes.data, n_lanes, 128, codes.ctypes.data,
                None if scales is None else scales.ctypes.data, 0 if codec == "int8" else 1, corr.ctypes.data,
                offsets.ctypes.data, p0, p1, out.ctypes.data, scratch.ctypes.data,
            )  # fmt: skip

        _kernel.run_pages(offsets, call)
        built.use_amx(True)

    scorer = "maxsim (AMX)" if codec == "int8" and built.amx else "maxsim"
    token_blocks = max(1024, (1 << 21) // q.shape[0])
    paths: list[tuple[str, Callable[[], object]]] = [(scorer, lambda: maxsim(q, packed))]
    paths += [(f"{scorer[:6]} {token_blocks // 1024}k tok", lambda: maxsim(q, packed, block_tokens=token_blocks))]
    paths += [("maxsim_int AMX", lambda: direct(True))] if built.amx else []
    paths += [("maxsim_int VNNI", lambda: direct(False))]
    return size, paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--ld", type=int, default=1024)
    p.add_argument("--lq", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--codecs", default="int8,binary")
    a = p.parse_args(argv)
    import torch

    from bench.codec_speed import _median_seconds, read_bandwidth
    from colbert import _kernel

    built = _kernel.kernel()
    if built is None or not built.avx512:
        print("no AVX-512 VNNI kernel here: int8 is scored by the float kernel, nothing to compare")
        return 0
    threads = torch.get_num_threads()
    bandwidth = read_bandwidth(threads)
    print(f"{threads} threads; read bandwidth {bandwidth / 1e9:.2f} GB/s; AMX in use: {built.amx}")
    print(f"{'codec':7s} {'path':16s} {'Mtok/s':>7s} {'Mtok/CPUs':>9s} {'GB/s':>6s} {'% bw':>5s}")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((a.lq, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    tokens = a.pages * a.ld
    for codec in a.codecs.split(","):
        size, paths = _paths(codec, a, q, rng)
        for name, fn in paths:
            wall, cpu, _ = _median_seconds(fn, a.repeats)
            print(
                f"{codec:7s} {name:16s} {tokens / wall / 1e6:7.1f} {tokens / cpu / 1e6:9.1f} "
                f"{size / wall / 1e9:6.2f} {size / wall / bandwidth:5.0%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
