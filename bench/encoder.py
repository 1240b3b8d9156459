"""Encoder throughput and memory: ours against ColQwen2.5, the reference-style path and the machine's limit.

    .venv/bin/python bench/encoder.py --config tiny|real-width --dtype float32|bfloat16|both \\
        --workload queries|passages|pages|mixed|all [--repeats N] [--memory-tokens 32768]

One run prints every figure side by side. All contestants load the same random checkpoint (built by
``model.testing.build_tiny_checkpoint``; ``real-width`` = the real hidden sizes with 4 text layers and 4
vision blocks) and see the same inputs (``bench/workloads.py``). Each runs in its own process (ColQwen2.5 in
``.bench-venv``), all loaded at once; their timed runs are interleaved repeat by repeat, so that load from
other processes falls on all of them alike — ratios within one run are the figures to trust on a shared
machine.

Contestants: ``ours`` (``bench/_ours.py``), ``colqwen2.5`` (``bench/_peers_colpali.py``), ``reference-style``
(``bench/_peer_reference.py``), and the machine's limit: counted FLOPs per input (``bench/flops.py``) divided
by the best measured matmul rate in the same dtype (``bench/machine.py``).

Peak memory: a fresh process per contestant encodes one text of ``--memory-tokens`` tokens; its resident set
is sampled every 5 ms during the encode (``--memory-dtype``, bfloat16 by default: the reference-style path's
float32 logits alone for 32k tokens are 32768 × 151936 × 4 B ≈ 19.9 GB, above this machine's memory).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._pool import ROOT, WorkerError, WorkerProcess, WorkerSpec
from bench._report import Goal, Measurement, format_table, goal_rows
from bench.flops import Flops, ModelDims, image_flops, text_input_flops
from bench.workloads import load_workloads, write_workloads

__all__ = ["CONFIGS", "main"]

REAL_WIDTH: dict[str, Any] = {
    "text_config": {
        "hidden_size": 2048,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "intermediate_size": 11008,
        "num_hidden_layers": 4,
    },
    "vision_config": {
        "hidden_size": 1280,
        "num_heads": 16,
        "intermediate_size": 3420,
        "depth": 4,
        "out_hidden_size": 2048,
        "fullatt_block_indexes": [3],
    },
}
CONFIGS: dict[str, dict[str, Any]] = {"tiny": {}, "real-width": REAL_WIDTH | {"dtype": "bfloat16"}}
CONTESTANTS = ("ours", "colqwen2.5", "reference-style")
WORKLOADS = {
    "queries": ["queries"],
    "passages": ["passages"],
    "pages": ["pages"],
    "mixed": ["mixed", "single"],
}
WORKLOADS["all"] = [w for ws in WORKLOADS.values() for w in ws]
RESULTS = ROOT / "bench" / "results"


def build_checkpoint(config: str) -> Path:
    """The random checkpoint for ``config`` (built once, cached under ``bench/results``)."""
    from model.testing import build_tiny_checkpoint

    directory = RESULTS / f"checkpoint-{config}"
    if not (directory / "config.json").exists():
        import torch

        overrides = dict(CONFIGS[config])
        if "dtype" in overrides:  # real width is stored in bfloat16 as published (1.5 GB instead of 3)
            overrides["dtype"] = getattr(torch, overrides["dtype"])
        build_tiny_checkpoint(directory, seed=0, **overrides)
    return directory


def workload_flops(checkpoint: Path, workloads: Path) -> dict[str, list[Flops]]:
    """Counted FLOPs of every input of every workload, from the token counts our processor gives."""
    from PIL import Image

    from model.processor import Processor
    from model.types import parse_task

    dims = ModelDims.from_checkpoint(checkpoint)
    processor = Processor.from_pretrained(checkpoint)
    work = load_workloads(workloads)
    out: dict[str, list[Flops]] = {}
    for name, rows in [("queries", work.queries), ("passages", work.passages)]:
        out[name] = [
            text_input_flops(dims, processor.prepare_text(r.text, parse_task(r.task, r.prompt)).num_tokens)
            for r in rows
        ]
    out["mixed"] = out["single"] = out["queries"]
    spec = parse_task("retrieval", "passage")
    pages = [processor.prepare_image(Image.open(p).convert("RGB"), spec) for p in work.pages]
    out["pages"] = [image_flops(dims, p.image_grid_thw[0].tolist(), p.num_tokens) for p in pages]
    return out


def _worker_args(checkpoint: Path, dtype: str, workloads: Path, threads: int, batch_size: int) -> list[str]:
    return [
        *("--checkpoint", str(checkpoint), "--dtype", dtype, "--workloads", str(workloads)),
        *("--threads", str(threads), "--batch-size", str(batch_size)),
    ]


def run_throughput(
    args: argparse.Namespace, checkpoint: Path, workloads: Path, dtype: str, run_dir: Path
) -> tuple[dict[str, dict[str, Measurement]], dict[str, Any]]:
    """Start every contestant, warm each up, then time each workload ``repeats`` times, interleaved."""
    names = [c for c in CONTESTANTS if c in args.contestants]
    worker_args = _worker_args(checkpoint, dtype, workloads, args.threads, args.batch_size)
    workers: list[WorkerProcess] = []
    info: dict[str, Any] = {}
    try:
        for name in names:
            log = run_dir / f"{name}-{dtype}.log"
            print(f"[{dtype}] starting {name} …", file=sys.stderr, flush=True)
            try:
                workers.append(WorkerProcess(WorkerSpec.for_contestant(name), worker_args, log))
            except WorkerError as exc:  # reported in the tables; the other contestants still run
                print(f"[{dtype}] {name} did not start: {exc}", file=sys.stderr, flush=True)
                info[name] = {"error": str(exc)}
                continue
            info[name] = workers[-1].hello
        for w in workers:
            w.request("warmup")
        results: dict[str, dict[str, Measurement]] = {}
        for workload in WORKLOADS[args.workload]:
            results[workload] = {}
            first = 0 if args.warmup_pass else 1  # pass 0: untimed warm-up of these exact shapes
            for rep in range(first, args.repeats + 1):
                order = workers[rep % len(workers) :] + workers[: rep % len(workers)]
                for w in order:
                    if workload in ("mixed", "single") and w.spec.name == "colqwen2.5":
                        continue  # no tasks in ColQwen: a mixed batch is the same batch
                    save = str(run_dir / f"out-{dtype}-{w.spec.name}-{workload}.npz") if rep == first else None
                    res = w.request("run", workload=workload, save=save)
                    if rep == 0:
                        continue
                    m = results[workload].setdefault(w.spec.name, Measurement(w.spec.name))
                    m.items, m.tokens = res["items"], res["tokens"]
                    m.seconds.append(res["seconds"])
                    print(
                        f"[{dtype}] {workload:8s} {w.spec.name:16s} {res['seconds']:8.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        for w in workers:
            if w.spec.name == "colqwen2.5":
                info["colqwen2.5"]["matmul"] = w.request("matmul", dtype=dtype)
        return results, info
    finally:
        for w in workers:
            w.close()


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def run_memory(args: argparse.Namespace, checkpoint: Path, workloads: Path, run_dir: Path) -> dict[str, Any]:
    """Peak RSS while encoding one long text, each contestant in a fresh process, one after the other."""
    out: dict[str, Any] = {}
    dtype = args.memory_dtype
    vocab = json.loads((checkpoint / "config.json").read_text())["text_config"].get("vocab_size", 151936)
    for name in ("ours", "reference-style"):
        if name not in args.contestants:
            continue
        tokens = args.memory_tokens
        if name == "reference-style":
            logits = tokens * vocab * (2 if dtype == "bfloat16" else 4)
            if logits * 1.3 > _mem_available():
                free = _mem_available() / 2**30
                out[name] = {"skipped": f"needs > {logits / 2**30:.1f} GiB for logits; {free:.1f} GiB free"}
                continue
        log = run_dir / f"memory-{name}-{dtype}.log"
        try:
            worker = WorkerProcess(
                WorkerSpec.for_contestant(name),
                _worker_args(checkpoint, dtype, workloads, args.threads, 1),
                log,
            )
        except WorkerError as exc:
            out[name] = {"skipped": f"failed: {exc}"}
            continue
        try:
            res = worker.request("memory", tokens=tokens)
            out[name] = {**res, "rss_after_load": worker.hello["rss_after_load"]}
            print(f"[memory] {name}: peak {res['peak'] / 2**30:.2f} GiB", file=sys.stderr, flush=True)
        except WorkerError as exc:
            out[name] = {"skipped": f"failed: {exc}"}
        finally:
            worker.close()
    return out


# --- parity -------------------------------------------------------------------------------------------------
def _load(run_dir: Path, dtype: str, name: str, workload: str) -> dict[str, np.ndarray] | None:
    path = run_dir / f"out-{dtype}-{name}-{workload}.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _mv_rows(z: dict[str, np.ndarray]) -> list[np.ndarray]:
    return np.split(z["mv"], np.cumsum(z["mv_lens"])[:-1])


def _compare_dense(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.abs(a - b).max()), float(cos.min())


def _compare_mv(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float] | None:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return None
    x, y = np.concatenate(a), np.concatenate(b)
    cos = np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return float(np.abs(x - y).max()), float(cos.min())


def parity(run_dir: Path, dtypes: list[str], workloads: list[str]) -> list[list[Any]]:
    """Rows: (check, dtype, workload, max |Δ| and min cosine of the dense, then of the multi-vectors)."""
    rows: list[list[Any]] = []
    pairs = [
        ("ours vs reference-style", "reference-style"),
        ("ours vs colqwen2.5 (merged LoRA)", "colqwen2.5"),
    ]
    for dtype in dtypes:
        for workload in workloads:
            ours = _load(run_dir, dtype, "ours", workload)
            if ours is None:
                continue
            for label, peer in pairs:
                theirs = _load(run_dir, dtype, peer, workload)
                if theirs is None or (peer == "colqwen2.5" and workload == "pages"):
                    continue  # ColQwen's image template differs from ours: different inputs, no parity
                dense = _compare_dense(ours["dense"], theirs["dense"]) if "dense" in theirs else (None, None)
                mv = _compare_mv(_mv_rows(ours), _mv_rows(theirs)) or (None, None)
                rows.append([label, dtype, workload, *dense, *mv])
    if {"float32", "bfloat16"} <= set(dtypes):
        for workload in workloads:
            a, b = _load(run_dir, "float32", "ours", workload), _load(run_dir, "bfloat16", "ours", workload)
            if a is not None and b is not None:
                mv = _compare_mv(_mv_rows(a), _mv_rows(b)) or (None, None)
                rows.append(["ours bf16 vs ours fp32", "—", workload, *_compare_dense(a["dense"], b["dense"]), *mv])
    return rows


# --- report -------------------------------------------------------------------------------------------------
def throughput_rows(
    results: dict[str, dict[str, Measurement]], flops: dict[str, list[Flops]], rate: float
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for workload, by_name in results.items():
        total = sum(f.total for f in flops[workload])
        n = len(flops[workload])
        limit_s = total / rate
        ours = by_name.get("ours")
        for name, m in by_name.items():
            speedup = ours.items_per_s / m.items_per_s if ours and name != "ours" else None
            achieved = total / m.median_s
            rows.append(
                [
                    workload,
                    name,
                    m.items,
                    m.tokens,
                    m.median_s,
                    m.min_s,
                    m.items_per_s,
                    m.tokens_per_s,
                    speedup,
                    achieved / 1e9,
                    100 * achieved / rate,
                ]
            )
        rows.append([workload, "machine limit", n, None, limit_s, None, n / limit_s, None, None, rate / 1e9, 100.0])
    return rows


def goals(
    config: str,
    all_results: dict[str, dict[str, dict[str, Measurement]]],
    flops: dict[str, list[Flops]],
    rates: dict[str, float],
    memory: dict[str, Any],
    parity_rows: list[list[Any]],
) -> list[Goal]:
    out: list[Goal] = []
    for dtype, results in all_results.items():
        for workload in ("queries", "passages", "pages"):
            by_name = results.get(workload, {})
            if "ours" not in by_name:
                continue
            ours = by_name["ours"].items_per_s
            ratios = {p: ours / m.items_per_s for p, m in by_name.items() if p != "ours"}
            fig = ", ".join(f"{p} {r:.2f}×" for p, r in ratios.items()) or "no peer ran"
            met = all(r >= 2.0 for r in ratios.values()) if ratios else None
            out.append(Goal(f"{workload}/s ≥ 2× both peers ({dtype})", fig, met))
    bf16_pages = all_results.get("bfloat16", {}).get("pages", {}).get("ours")
    if bf16_pages is not None and config == "real-width":
        frac = sum(f.total for f in flops["pages"]) / bf16_pages.median_s / rates["bfloat16"]
        out.append(Goal("real-width bf16 pages ≥ 50% of bf16 matmul rate", f"{100 * frac:.1f}%", frac >= 0.5))
    else:
        out.append(Goal("real-width bf16 pages ≥ 50% of bf16 matmul rate", "needs --config real-width, bf16", None))
    ours_mem, ref_mem = memory.get("ours", {}), memory.get("reference-style", {})
    if "peak" in ours_mem and "peak" in ref_mem:
        r = ours_mem["peak"] / ref_mem["peak"]
        fig = f"{ours_mem['peak'] / 2**30:.2f} / {ref_mem['peak'] / 2**30:.2f} GiB = {r:.3f}"
        out.append(Goal(f"{ours_mem['tokens']}-token peak RSS ≤ 1/3 of reference-style", fig, r <= 1 / 3))
    else:
        out.append(Goal("32k-token peak RSS ≤ 1/3 of reference-style", "not run", None))
    for dtype, results in all_results.items():
        mixed, single = results.get("mixed", {}).get("ours"), results.get("single", {}).get("ours")
        if mixed and single:
            r = mixed.median_s / single.median_s
            out.append(Goal(f"mixed-task ≤ 10% more than single-task ({dtype})", f"{100 * (r - 1):+.1f}%", r <= 1.10))
    fp32 = [r for r in parity_rows if r[0] == "ours vs reference-style" and r[1] == "float32"]
    if fp32:
        worst = max(max(r[3] or 0.0, r[5] or 0.0) for r in fp32)
        out.append(Goal("fp32 outputs = reference-style (≤ 1e-5)", f"max |Δ| {worst:.2e}", worst <= 1e-5))
    cos = [r for r in parity_rows if r[0] == "ours bf16 vs ours fp32"]
    if cos:
        worst_cos = min(r[4] for r in cos)
        out.append(Goal("bf16 vs fp32 dense cosine ≥ 0.999", f"min {worst_cos:.5f}", worst_cos >= 0.999))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "both"], default="both")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="all")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per workload (median reported)")
    parser.add_argument(
        "--no-warmup-pass",
        dest="warmup_pass",
        action="store_false",
        help="skip the untimed first pass of each workload (oneDNN builds kernels per new shape)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="rows per forward for every contestant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--contestants", default=",".join(CONTESTANTS))
    parser.add_argument("--memory-tokens", type=int, default=32768, help="0 skips the peak-memory probe")
    parser.add_argument("--memory-dtype", choices=["float32", "bfloat16"], default="bfloat16")
    parser.add_argument("--checkpoint", type=Path, help="use this published-layout checkpoint instead of --config")
    args = parser.parse_args(argv)
    args.contestants = args.contestants.split(",")

    run_dir = RESULTS / f"run-{args.config}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    checkpoint = args.checkpoint.resolve() if args.checkpoint else build_checkpoint(args.config)
    workloads = write_workloads(RESULTS / "workloads")
    dtypes = ["float32", "bfloat16"] if args.dtype == "both" else [args.dtype]

    import torch

    from bench.machine import matmul_rate

    if args.threads:
        torch.set_num_threads(args.threads)
    rates = {d: matmul_rate(getattr(torch, d)) for d in dtypes}
    flops = workload_flops(checkpoint, workloads)
    all_results: dict[str, dict[str, dict[str, Measurement]]] = {}
    infos: dict[str, Any] = {}
    for dtype in dtypes:
        all_results[dtype], infos[dtype] = run_throughput(args, checkpoint, workloads, dtype, run_dir)
    memory = run_memory(args, checkpoint, workloads, run_dir) if args.memory_tokens else {}
    parity_rows = parity(run_dir, dtypes, WORKLOADS[args.workload])

    print(f"\n== bench/encoder.py --config {args.config}: {checkpoint.name}, {args.repeats} repeats (median)")
    dims = ModelDims.from_checkpoint(checkpoint)
    print(f"model: text {dims.text}\n       vision {dims.vision}\n       lora rank {dims.lora_rank}")
    for dtype in dtypes:
        r = rates[dtype]
        peer_rate = infos[dtype].get("colqwen2.5", {}).get("matmul")
        extra = (
            f"; .bench-venv (torch {infos[dtype]['colqwen2.5']['torch']}) best {peer_rate['best'] / 1e9:.1f}"
            if peer_rate
            else ""
        )
        head = f"matmul {dtype} ({r.n}×{r.n}, {r.threads} threads)"
        print(f"{head}: best {r.best / 1e9:.1f} GFLOP/s, median {r.median / 1e9:.1f}{extra}")
    for dtype in dtypes:
        for name, hello in infos[dtype].items():
            if "error" in hello:
                print(f"contestant {name} ({dtype}): DID NOT RUN — {hello['error']}")
            else:
                load = f"loaded in {hello['load_seconds']:.1f} s, RSS {hello['rss_after_load'] / 2**30:.2f} GiB"
                print(f"contestant {name} ({dtype}): torch {hello['torch']}, {hello['threads']} threads, {load}")
    for name, f in flops.items():
        if name == "single":
            continue
        avg = sum(x.total for x in f) / len(f)
        lora = sum(x.lora for x in f) / len(f)
        print(f"FLOPs/input {name:8s}: {avg / 1e9:10.3f} GFLOP (+ LoRA {lora / 1e9:.3f} GFLOP, not counted)")
    for dtype in dtypes:
        headers = [
            "workload",
            "contestant",
            "items",
            "tokens",
            "s (median)",
            "s (min)",
            "items/s",
            "tokens/s",
            "ours ×",
            "GFLOP/s",
            "% matmul",
        ]
        print()
        print(
            format_table(
                headers,
                throughput_rows(all_results[dtype], flops, rates[dtype].best),
                f"-- throughput, {dtype}",
            )
        )
    if memory:
        rows = []
        for name, m in memory.items():
            if "skipped" in m:
                rows.append([name, None, None, None, None, m["skipped"]])
            else:
                rows.append(
                    [
                        name,
                        m["tokens"],
                        m["rss_after_load"] / 2**30,
                        m["peak"] / 2**30,
                        (m["peak"] - m["rss_before"]) / 2**30,
                        f"{m['seconds']:.1f} s",
                    ]
                )
        print()
        title = f"-- peak RSS, one text, {args.memory_dtype}, a fresh process each, sampled every 5 ms"
        print(
            format_table(
                ["contestant", "tokens", "RSS loaded GiB", "peak GiB", "peak − before GiB", "time"],
                rows,
                title,
            )
        )
    if parity_rows:
        print()
        headers = ["check", "dtype", "workload", "dense max|Δ|", "dense min cos", "mv max|Δ|", "mv min cos"]
        print(format_table(headers, parity_rows, "-- outputs"))
    goal_list = goals(args.config, all_results, flops, {d: r.best for d, r in rates.items()}, memory, parity_rows)
    print()
    print(format_table(["goal (issue 5)", "figure", "verdict"], goal_rows(goal_list), "-- goals"))
    summary = {
        "args": vars(args),
        "rates": {d: asdict(r) for d, r in rates.items()},
        "results": {
            d: {w: {n: asdict(m) for n, m in ms.items()} for w, ms in r.items()} for d, r in all_results.items()
        },
        "info": infos,
        "memory": memory,
        "goals": [asdict(g) for g in goal_list],
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n(results and per-contestant logs in {run_dir.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
