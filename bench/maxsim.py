"""Exact MaxSim throughput: ours (each storage codec) vs plain numpy vs colpali-engine's ``score_multi_vector``.

Same data for everyone, one run: ``--pages`` pages of ``--ld`` unit vectors (d = 128), one query of ``--lq``
tokens. colpali-engine runs in ``.bench-venv`` (it needs torchvision; see scripts/bench-setup.sh) in a
subprocess that reads the same ``.npy`` files. Also prints the machine's measured GEMM rate (fp32, bf16) and
the fraction of it each contestant reaches (work = 2·Lq·Ld·d FLOP per page).

    .venv/bin/python bench/maxsim.py                  # 2,000 pages × 1,024 × 128, Lq = 32
    .venv/bin/python bench/maxsim.py --pages 500 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import matmul_rate
from colbert.quantize import Codec, decode, encode
from colbert.scoring import PackedDocs, maxsim

ROOT = Path(__file__).resolve().parents[1]
COLPALI = """
import sys, time, json, numpy as np, torch
from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor as P
q = torch.from_numpy(np.load(sys.argv[1])); d = torch.from_numpy(np.load(sys.argv[2]))
torch.set_num_threads(int(sys.argv[4]))
docs = list(d.unbind(0)); times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    s = P.score_multi_vector([q], docs, batch_size=128, device="cpu")
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "scores": s[0].float().tolist()}))
"""


def numpy_maxsim(q: np.ndarray, docs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Straightforward numpy: (Lq, d) @ (d, chunk·Ld) per chunk of pages, max over page tokens, sum."""
    out = []
    for i in range(0, docs.shape[0], chunk):
        block = docs[i : i + chunk]  # (c, Ld, d)
        sim = q @ block.reshape(-1, block.shape[-1]).T  # (Lq, c·Ld)
        out.append(sim.reshape(q.shape[0], block.shape[0], -1).max(axis=2).sum(axis=0))  # (c,)
    return np.concatenate(out)


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    result = fn()  # warm-up (and the value to compare)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--ld", type=int, default=1024)
    parser.add_argument("--lq", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-colpali", action="store_true")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((args.pages, args.ld, 128)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
    q = rng.standard_normal((args.lq, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    flop_per_page = 2 * args.lq * args.ld * 128
    rates = {name: matmul_rate(dt).best for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    print(
        f"machine: {threads} threads; GEMM 4096² fp32 {rates['float32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {rates['bfloat16'] / 1e9:.0f} GFLOP/s"
    )
    print(f"data: {args.pages} pages × {args.ld} × 128, query {args.lq} tokens; {flop_per_page / 1e6:.1f} MFLOP/page")

    rows: list[tuple[str, float, np.ndarray]] = []
    t, ref = timed(lambda: numpy_maxsim(q, docs), args.repeats)
    rows.append(("numpy fp32 (matmul + max + sum)", t, ref))
    packed32 = PackedDocs.from_list(list(docs))
    t, s = timed(lambda: maxsim(q, packed32)[0], args.repeats)
    rows.append(("ours fp32 (PackedDocs)", t, s))
    packed16 = PackedDocs.from_list(list(docs), dtype=np.float16)
    t, s = timed(lambda: maxsim(q, packed16)[0], args.repeats)
    rows.append(("ours fp16 storage", t, s))
    packed_bf16 = PackedDocs.from_list(list(docs), dtype="bfloat16")
    t, s = timed(lambda: maxsim(q, packed_bf16)[0], args.repeats)
    rows.append(("ours bf16 storage (bf16 GEMM)", t, s))
    for codec in (Codec.INT8, Codec.BINARY):
        blobs = [encode(p, codec) for p in docs]

        def run(blobs: list[bytes] = blobs, codec: Codec = codec) -> np.ndarray:
            scores = []
            for i in range(0, len(blobs), 64):  # decode 64 pages, score them
                block = [decode(b, args.ld, 128, codec) for b in blobs[i : i + 64]]
                scores.append(maxsim(q, block)[0])
            return np.concatenate(scores)

        t, s = timed(run, max(1, args.repeats // 2))
        rows.append((f"ours {codec.value} storage (decode + score)", t, s))
    if not args.no_colpali:
        rows += colpali(q, docs, args.repeats, threads)
    print(
        f"\n{'contestant':44s} {'pages/s':>10s} {'GFLOP/s':>9s} {'of fp32 peak':>13s} {'vs numpy':>9s} {'max |Δ|':>9s}"
    )
    base = rows[0][1]
    for name, seconds, scores in rows:
        pps = args.pages / seconds
        gflops = pps * flop_per_page / 1e9
        err = float(np.abs(scores - ref).max())
        print(
            f"{name:44s} {pps:10.0f} {gflops:9.1f} {gflops * 1e9 / rates['float32']:12.0%} "
            f"{base / seconds:8.2f}× {err:9.2e}"
        )
    peers = [r for r in rows if r[0].startswith(("numpy", "colpali"))]
    best_peer = min(peers, key=lambda r: r[1])
    ours = min((r for r in rows if r[0].startswith("ours")), key=lambda r: r[1])
    ratio = best_peer[1] / ours[1]
    print(
        f"\nfastest ours ({ours[0]}) vs fastest peer ({best_peer[0]}): {ratio:.2f}× "
        f"(goal ≥ 2×: {'met' if ratio >= 2 else 'NOT met'})"
    )


def colpali(q: np.ndarray, docs: np.ndarray, repeats: int, threads: int) -> list[tuple[str, float, np.ndarray]]:
    python = ROOT / ".bench-venv" / "bin" / "python"
    if not python.exists():
        print("colpali-engine: .bench-venv missing (run scripts/bench-setup.sh); skipped")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        qp, dp = Path(tmp) / "q.npy", Path(tmp) / "d.npy"
        np.save(qp, q)
        np.save(dp, docs)
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        out = subprocess.run(
            [str(python), "-c", COLPALI, str(qp), str(dp), str(repeats), str(threads)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if out.returncode != 0:
        print(f"colpali-engine failed: {out.stderr[-500:]}")
        return []
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        (
            "colpali-engine score_multi_vector (fp32)",
            statistics.median(result["times"]),
            np.asarray(result["scores"], dtype=np.float32),
        )
    ]


if __name__ == "__main__":
    main()
