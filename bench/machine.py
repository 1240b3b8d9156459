"""The machine's side of the benchmark: its measured matmul rate and the process's peak memory.

The matmul rate is the best of several timed ``torch.matmul`` calls on large square matrices in the given
dtype, with the threads torch is set to use — the rate a well-shaped GEMM reaches here, which is the ceiling
an encoder's dense layers can approach. Taking the best (not the median) makes the ceiling high, so the
"fraction of the machine" figures built on it are conservative.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass

import torch

__all__ = ["MatmulRate", "matmul_rate", "peak_rss_bytes"]


@dataclass(frozen=True)
class MatmulRate:
    """FLOP/s of ``n × n @ n × n`` in ``dtype`` (best and median of ``trials``)."""

    dtype: str
    n: int
    best: float
    median: float
    threads: int


def matmul_rate(dtype: torch.dtype, *, n: int = 4096, trials: int = 5, min_seconds: float = 0.3) -> MatmulRate:
    """Time ``torch.matmul`` of two ``n × n`` random matrices; each trial repeats until ``min_seconds``."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)  # (n, n)
    b = torch.randn(n, n, generator=gen).to(dtype)  # (n, n)
    flops = 2.0 * n**3
    rates: list[float] = []
    with torch.inference_mode():
        torch.matmul(a, b)  # warm-up: packing buffers, oneDNN/AMX kernel selection
        for _ in range(trials):
            reps, start = 0, time.perf_counter()
            while True:
                torch.matmul(a, b)
                reps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds:
                    break
            rates.append(flops * reps / elapsed)
    rates.sort()
    return MatmulRate(str(dtype).removeprefix("torch."), n, rates[-1], rates[len(rates) // 2], torch.get_num_threads())


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


if __name__ == "__main__":  # quick look: python -m bench.machine
    for dt in (torch.float32, torch.bfloat16):
        r = matmul_rate(dt)
        best, median = r.best / 1e9, r.median / 1e9
        print(f"{r.dtype:>9}: best {best:8.1f} GFLOP/s, median {median:8.1f} ({r.threads} threads)")
