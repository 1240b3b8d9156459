"""Binary codes through the integer kernel on AMX: would it pay? (issue 26; not a scoring path).

    .venv/bin/python -m bench.amx_binary --pages 300 --repeats 5

The scorer sends binary sign bits to ``maxsim_lut`` (float32 tables of the query's ±q sums per byte, summed in byte
order). ``maxsim_int`` also takes them (kind 1: bits expanded to bytes 0/1 against the 24-bit fixed-point query,
exact int32 sums), on AMX tiles where the kernel has them (``Kernel.amx``) and on VNNI. This times the three over
the same pages and query as ``bench/codec_speed.py`` (unit rows, ``--ld`` tokens × 128, a ``--lq``-token query),
split over the scorer's thread pool: Mtok/s (wall), Mtok per CPU-second, GB/s of code bytes and % of the read
bandwidth probe. The integer kernel's numbers are 0/1 dot products with the fixed-point query (what a ±1 decoding
needs is then 2·that − Σq, per lane, in the caller): a speed measurement, not scores to compare with the table
kernel's (a different rounding, so wiring it would change the binary codec's arithmetic contract).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

__all__ = ["main"]


def _median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--ld", type=int, default=1024)
    p.add_argument("--lq", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    import torch

    from bench.codec_speed import read_bandwidth
    from colbert import _kernel
    from colbert.quantize import encode
    from colbert.scoring import PackedDocs, _Scorer, maxsim

    built = _kernel.kernel()
    if built is None or not built.avx512:
        print("no AVX-512 kernel here: nothing to compare")
        return 0
    threads = torch.get_num_threads()
    bandwidth = read_bandwidth(threads)
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(a.pages):
        page = rng.standard_normal((a.ld, 128)).astype(np.float32)
        blobs.append(encode(page / np.linalg.norm(page, axis=1, keepdims=True), "binary"))
    packed = PackedDocs.from_encoded([a.ld] * a.pages, blobs, 128, "binary")
    q = rng.standard_normal((a.lq, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    one_int8 = PackedDocs.from_encoded([1], [encode(q[:1], "int8")], 128, "int8")
    fixed = _Scorer(q, one_int8)  # int8 storage: the scorer's fixed-point query (qi) is what maxsim_int takes
    n_lanes = fixed.n_lanes
    corr = np.zeros_like(fixed.corr)  # bytes 0/1: no offset to remove
    bits, offsets = np.ascontiguousarray(packed.tokens), np.ascontiguousarray(packed.offsets, dtype=np.int64)
    out = np.empty((a.pages, n_lanes), dtype=np.float32)

    def integer(amx: bool) -> None:
        built.use_amx(amx)

        def call(p0: int, p1: int) -> None:
            scratch = np.empty(1024, dtype=np.uint8)
            built.maxsim_int(
                fixed.qi.ctypes.data, n_lanes, 128, bits.ctypes.data, None, 1, corr.ctypes.data,
                offsets.ctypes.data, p0, p1, out.ctypes.data, scratch.ctypes.data,
            )  # fmt: skip

        _kernel.run_pages(offsets, call)
        built.use_amx(True)

    print(f"{threads} threads; read bandwidth {bandwidth / 1e9:.2f} GB/s; AMX: {built.amx}")
    print(f"{'path':22s} {'Mtok/s':>7s} {'Mtok/CPUs':>9s} {'GB/s':>6s} {'% bw':>5s}")
    tokens, size = a.pages * a.ld, bits.nbytes
    paths: list[tuple[str, Callable[[], object]]] = [("maxsim_lut (scorer)", lambda: maxsim(q, packed))]
    paths += [("maxsim_int AMX", lambda: integer(True))] if built.amx else []
    paths += [("maxsim_int VNNI", lambda: integer(False))]
    for name, fn in paths:
        wall, cpu = _median(fn, a.repeats)
        print(
            f"{name:22s} {tokens / wall / 1e6:7.1f} {tokens / cpu / 1e6:9.1f} {size / wall / 1e9:6.2f} "
            f"{size / wall / bandwidth:5.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
