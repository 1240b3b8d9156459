"""MaxSim throughput over each storage codec's stored bytes, without the GEMM-rate calibration of
``bench/maxsim.py`` (which takes minutes on a CPU without bf16 units): pages/s and GB/s of stored codes.

    .venv/bin/python -m bench.codec_speed --pages 200 --repeats 3

``--pages`` pages of ``--ld`` unit rows × 128, one query of ``--lq`` tokens; best of ``--repeats`` timed calls of
:func:`colbert.scoring.maxsim` (the compiled kernel when it builds, else the torch fallback). To compare two trees,
run it from each (``PYTHONPATH=<tree>``) one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colbert.quantize import encode
from colbert.scoring import PackedDocs, maxsim

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--ld", type=int, default=1024)
    p.add_argument("--lq", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--codecs", default="float16,int8,binary")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.pages, a.ld, 128)).astype(np.float32)  # (pages, ld, 128)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    q = rng.normal(size=(a.lq, 128)).astype(np.float32)  # (lq, 128)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for codec in a.codecs.split(","):
        blobs = [encode(page, codec) for page in x]
        docs = PackedDocs.from_encoded([a.ld] * a.pages, blobs, 128, codec)
        maxsim(q, docs)  # warm-up (kernel build, thread pool)
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            maxsim(q, docs)
            times.append(time.perf_counter() - start)
        best, size = min(times), sum(len(b) for b in blobs)
        rate = f"{a.pages / best:9.1f} pages/s {size / best / 1e9:6.2f} GB/s of codes"
        print(f"{codec:8s} {rate} ({torch.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
