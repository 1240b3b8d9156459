"""Encoder throughput on a GPU (issue 5's device run): ours vs ColQwen2.5 vs the reference-style path.

    python3 -m bench.gpu --config full --pages 64 --queries 256 --batch-size 16 --json $OUT/gpu.json

The same contestants and inputs as ``bench/encoder.py`` (``bench/_ours.py``, ``bench/_peers_colpali.py``,
``bench/_peer_reference.py``; ``bench/workloads.py``'s 8 pages, 64 queries and 16 passages, the pages and
queries repeated to ``--pages`` / ``--queries``), on random weights in the published layout: ``full`` is the
real model's size (36 text layers, 32 vision blocks with full attention in blocks 7/15/23/31, 3.75 B
parameters), built on the GPU in seconds (``model.testing.build_tiny_checkpoint(device="cuda")``).

A GPU has no noisy neighbours to interleave against, so the contestants run in this one process one after the
other: each is loaded, runs every workload once untimed (kernels, allocator, the exact shapes), then
``--repeats`` timed passes (``torch.cuda.synchronize`` around each; median reported), and is freed.

Two timings for ours on pages and texts: **end to end** (preprocessing — tokenising, image resize and
patching on the CPU — inside the clock, as for every contestant) and **model only** (inputs prepared before
the clock: what the GPU itself sustains). The machine's limit: counted FLOPs (``bench/flops.py``, LoRA not
counted) ÷ the measured rate of an 8192³ matmul in the same dtype on this GPU; MFU = achieved ÷ that rate.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import format_table
from bench.encoder import CONFIGS, REAL_WIDTH
from bench.flops import ModelDims, image_flops, text_input_flops
from bench.workloads import write_workloads

__all__ = ["FULL", "main"]

FULL: dict[str, Any] = {
    "text_config": REAL_WIDTH["text_config"] | {"num_hidden_layers": 36},
    "vision_config": REAL_WIDTH["vision_config"] | {"depth": 32, "fullatt_block_indexes": [7, 15, 23, 31]},
}
GPU_CONFIGS: dict[str, dict[str, Any]] = {**CONFIGS, "full": FULL | {"dtype": "bfloat16"}}


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gpu_matmul_rate(dtype: Any, n: int = 8192, reps: int = 10) -> float:
    """FLOP/s of ``n × n @ n × n`` on the current device (mean of ``reps`` after 3 warm-ups); on a machine
    without CUDA (a smoke test of this script) the CPU rate of ``bench.machine``."""
    import torch

    if not torch.cuda.is_available():
        from bench.machine import matmul_rate

        return matmul_rate(dtype).best
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    _sync()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync()
    rate = 2.0 * n**3 * reps / (time.perf_counter() - start)
    del a, b
    torch.cuda.empty_cache()
    return rate


def build_checkpoint(config: str, directory: Path, device: str) -> tuple[Path, float]:
    import torch

    from model.testing import build_tiny_checkpoint

    start = time.perf_counter()
    if not (directory / "config.json").exists():
        overrides = dict(GPU_CONFIGS[config])
        overrides["dtype"] = getattr(torch, overrides.get("dtype", "float32"))
        build_tiny_checkpoint(directory, seed=0, device=device, **overrides)
    return directory, time.perf_counter() - start


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    out = fn()  # untimed: kernels, allocator, these exact shapes
    seconds: list[float] = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        out = fn()
        _sync()
        seconds.append(time.perf_counter() - start)
    return seconds, out


ONLY: dict[str, set[str]] = {"ours-graphs": {"queries"}}
"""Workloads a contestant runs where it differs from ``ours`` on those only (CUDA graphs: text batches of at most
``graph_max_tokens`` tokens; the bench's pages are images and its passage batches are longer)."""


def _contestant(name: str, args: Any) -> Any:
    if name in ("ours", "ours-padded", "ours-replan", "ours-compiled", "ours-graphs"):
        from bench._ours import Ours
        from model.options import ForwardOptions

        # ours-padded: the packing lever off (``model.packing``), every batch padded to its longest row;
        # ours-replan: the vision windows planned in every block (host-device syncs) instead of once per forward
        # ours-compiled: the elementwise half through torch.compile (model.compiled; Triton kernels on a GPU)
        # ours-graphs: short text batches as CUDA graphs over token buckets (model.graphs), captured at load
        options = ForwardOptions(
            pack_rows=name != "ours-padded",
            plan_windows_once=name != "ours-replan",
            compile=name == "ours-compiled",
            cuda_graphs=name == "ours-graphs",
        )
        ours = Ours(args, options)
        if name == "ours-graphs":
            import torch

            cuda = torch.cuda.is_available()
            before = torch.cuda.memory_reserved() if cuda else 0
            start = time.perf_counter()
            captured = ours.encoder.capture_graphs()
            runner = ours.encoder.network.graphs
            if runner is None:
                print(f"{name}: no CUDA device, CUDA graphs are off: it runs eager (a dry run)", flush=True)
            else:
                seconds = time.perf_counter() - start
                held = (torch.cuda.memory_reserved() - before) / 2**20 if cuda else 0.0
                print(
                    f"{name}: captured {captured} CUDA graphs (buckets {runner.buckets}) in {seconds:.1f} s; "
                    f"GPU memory reserved +{held:.0f} MiB (graph pool and static buffers)",
                    flush=True,
                )
        return ours
    if name == "colqwen2.5":
        from bench._peers_colpali import ColQwenPeer

        return ColQwenPeer(args)
    from bench._peer_reference import ReferenceStyle

    return ReferenceStyle(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(GPU_CONFIGS), default="full")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--pages", type=int, default=64, help="page images (the 8 bench pages, repeated)")
    parser.add_argument("--queries", type=int, default=256, help="queries (the 64 bench queries, repeated)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per forward for every contestant")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--contestants",
        default="ours,colqwen2.5,reference-style",
        help="comma-separated; also ours-padded (ours with packing off), ours-replan (vision windows planned in "
        "every block), ours-compiled (torch.compile) and ours-graphs (CUDA graphs for short text batches; queries "
        "only), each a lever alone",
    )
    parser.add_argument("--workloads", default="pages,queries,passages")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/jev4-gpu-bench"))
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--save", type=Path, help="save each contestant's outputs here (<dtype>-<name>-<workload>.npz)")
    parser.add_argument("--compare", type=Path, help="only compare the outputs saved in this folder, across dtypes")
    parser.add_argument(
        "--profile",
        type=Path,
        help="after the timed passes, one torch.profiler pass of ours (model only) per workload; tables go to "
        "DIR/profile-<dtype>.txt (kernels by device time, then ops by CPU time: launch-bound or not)",
    )
    args = parser.parse_args(argv)
    if args.compare:
        print(
            format_table(
                ["workload", "a", "b", "dense min cos", "dense max |Δ|", "multi-vector min cos"],
                compare_saved(args.compare),
                f"outputs saved in {args.compare}",
            )
        )
        return 0

    import torch

    from bench._worker import ContestantArgs, LoadedWorkloads
    from model.processor import Processor
    from model.types import parse_task

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and args.config == "full":
        print("--config full needs a CUDA device (--config tiny runs on the CPU as a smoke test)", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    # float32 means float32: no TF32 in matmuls or in cuDNN's convolutions (the stock patch embedding is a Conv3d;
    # cuDNN allows TF32 by default, which would make the peers' float32 differ from ours by ~1e-3)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device_name = torch.cuda.get_device_properties(0).name if device == "cuda" else "cpu (smoke test)"
    report: dict[str, Any] = {"device": device_name, "torch": torch.__version__, "config": args.config}
    import transformers

    report["transformers"] = transformers.__version__
    rate = gpu_matmul_rate(dtype)
    report["matmul_flops"] = rate
    print(f"{device_name}: {args.dtype} matmul 8192³ {rate / 1e12:.1f} TFLOP/s", flush=True)

    checkpoint, build_s = build_checkpoint(args.config, args.work_dir / f"checkpoint-{args.config}", device)
    print(f"checkpoint {checkpoint} ready in {build_s:.1f} s", flush=True)
    work = LoadedWorkloads.load(write_workloads(args.work_dir / "workloads"))
    pages = [work.pages[i % len(work.pages)] for i in range(args.pages)]
    queries = [work.texts["queries"][i % len(work.texts["queries"])] for i in range(args.queries)]
    passages = work.texts["passages"]
    texts = {"queries": queries, "passages": passages}

    dims = ModelDims.from_checkpoint(checkpoint)
    processor = Processor.from_pretrained(checkpoint)
    page_spec = parse_task("retrieval", "passage")
    prepared_pages = [processor.prepare_image(im, page_spec) for im in pages]
    flops = {"pages": sum(image_flops(dims, p.image_grid_thw[0].tolist(), p.num_tokens).total for p in prepared_pages)}
    prepared_texts = {
        name: [processor.prepare_text(r.text, parse_task(r.task, r.prompt)) for r in rows]
        for name, rows in texts.items()
    }
    for name, items in prepared_texts.items():
        flops[name] = sum(text_input_flops(dims, p.num_tokens).total for p in items)
    counts = {"pages": len(pages), "queries": len(queries), "passages": len(passages)}
    report["flops"] = flops
    workloads = [w for w in args.workloads.split(",") if w]

    rows: list[list[Any]] = []
    outputs: dict[str, dict[str, Any]] = {}

    def run_workloads(name: str, contestant: Any) -> None:
        """Every workload's timed passes; a function, so that no closure over ``contestant`` outlives it."""
        outputs[name] = {}
        for workload in workloads:
            if workload not in ONLY.get(name, {workload}):
                continue
            variants: list[tuple[str, Callable[[], Any]]] = []
            if workload == "pages":
                variants.append(("end to end", lambda: contestant.pages(pages)))
                if name == "ours":
                    variants.append(("model only", lambda: contestant._embed(prepared_pages)))
            else:
                rows_w = texts[workload]
                variants.append(("end to end", lambda r=rows_w, w=workload: contestant.texts(r, w)))
                if name == "ours":
                    variants.append(("model only", lambda w=workload: contestant._embed(prepared_texts[w])))
            for label, fn in variants:
                try:
                    seconds, out = _timed(fn, args.repeats)
                except Exception as exc:  # noqa: BLE001 - report and go on with the next workload
                    print(f"{name} {workload} {label}: FAILED — {type(exc).__name__}: {exc}", flush=True)
                    report.setdefault("errors", {})[f"{name}/{workload}/{label}"] = str(exc)
                    continue
                med = statistics.median(seconds)
                achieved = flops[workload] / med
                n = counts[workload]
                mfu = 100 * achieved / rate
                rows.append([workload, name, label, n, med, min(seconds), n / med, achieved / 1e12, mfu])
                print(f"{name} {workload} {label}: {med:.3f} s, {n / med:.1f}/s, MFU {mfu:.1f}%", flush=True)
                if label == "end to end":
                    outputs[name][workload] = out
                    if args.save:
                        args.save.mkdir(parents=True, exist_ok=True)
                        _save_output(args.save / f"{args.dtype}-{name}-{workload}.npz", out)
        if args.profile and name in ("ours", "ours-graphs"):
            for workload in workloads:
                if workload not in ONLY.get(name, {workload}):
                    continue
                items = prepared_pages if workload == "pages" else prepared_texts[workload]
                launches = _profile(
                    lambda i=items: contestant._embed(i), f"{name} {workload}", args.profile, args.dtype
                )
                report.setdefault("launches", {})[f"{name}/{workload}"] = launches

    for name in [c for c in args.contestants.split(",") if c]:
        cargs = ContestantArgs(checkpoint, args.dtype, args.work_dir / "workloads", 0, args.batch_size, device)
        gc.collect()
        held = 0
        if device == "cuda":
            torch.cuda.empty_cache()
            held = torch.cuda.memory_allocated()  # ~0: the previous contestant is gone (checked, and subtracted)
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            contestant = _contestant(name, cargs)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot load is reported, the others still run
            print(f"{name}: DID NOT LOAD — {type(exc).__name__}: {exc}", flush=True)
            report.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            continue
        load_s = time.perf_counter() - start
        print(f"{name}: loaded in {load_s:.1f} s ({held / 2**30:.2f} GiB still held before it)", flush=True)
        run_workloads(name, contestant)
        if device == "cuda":
            report.setdefault("peak_gpu_bytes", {})[name] = torch.cuda.max_memory_allocated() - held
        del contestant

    report["rows"] = rows
    headers = ["workload", "contestant", "timing", "items", "s (median)", "s (min)", "items/s", "TFLOP/s", "% matmul"]
    print()
    print(f"== bench/gpu.py --config {args.config} on {device_name}, {args.dtype}, batch {args.batch_size}")
    print(f"model: text {dims.text}\n       vision {dims.vision}")
    print(f"matmul 8192³ {args.dtype}: {rate / 1e12:.1f} TFLOP/s (the machine limit below)")
    for w in workloads:
        per = flops[w] / counts[w] / 1e9
        print(f"FLOPs/input {w:8s}: {per:10.1f} GFLOP; machine limit {rate / (flops[w] / counts[w]):.1f} items/s")
    print(format_table(headers, rows, "throughput (preprocessing inside the clock for 'end to end')"))
    ratio_rows = _ratios(rows, workloads)
    if ratio_rows:
        print(
            format_table(
                ["workload", "ratio (end to end)", "×"], ratio_rows, "ours (and its variants) against the peers"
            )
        )
    report["ratios"] = ratio_rows
    goal_rows = _goals(rows)
    if goal_rows:
        print(format_table(["goal (issue 19)", "contestant", "measured", "goal", "met"], goal_rows, "goals"))
    report["goals"] = goal_rows
    parity = _parity(outputs)
    if parity:
        print(format_table(["workload", "pair", "dense min cos", "multi-vector min cos"], parity, "outputs"))
    report["parity"] = parity
    for name, peak in report.get("peak_gpu_bytes", {}).items():
        print(f"peak GPU memory {name}: {peak / 2**30:.2f} GiB (above what was held before it loaded)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


def _ratios(rows: list[list[Any]], workloads: list[str]) -> list[list[Any]]:
    """items/s (end to end) of ``ours`` and each ``ours-*`` variant over each peer's, and each variant over ours.

    >>> row = lambda name, rate: ["queries", name, "end to end", 8, 1.0, 1.0, rate]
    >>> for r in _ratios([row("ours", 10.0), row("ours-graphs", 30.0), row("colqwen2.5", 20.0)], ["queries"]):
    ...     print(r)
    ['queries', 'ours / colqwen2.5', 0.5]
    ['queries', 'ours-graphs / colqwen2.5', 1.5]
    ['queries', 'ours-graphs / ours', 3.0]
    """
    out: list[list[Any]] = []
    end = [r for r in rows if r[2] == "end to end"]
    for w in workloads:
        here = {r[1]: r[6] for r in end if r[0] == w}
        ours = [n for n in here if n == "ours" or n.startswith("ours-")]
        peers = [n for n in here if n not in ours]
        out += [[w, f"{a} / {b}", here[a] / here[b]] for a in ours for b in peers]
        out += [[w, f"{a} / ours", here[a] / here["ours"]] for a in ours if a != "ours" and "ours" in here]
    return out


GOALS = (("queries", "colqwen2.5", 1.5), ("passages", "colqwen2.5", 2.0))
"""Issue 19's goals as ratios against a peer measured in the same run (pages: ≥ 35 pages/s, printed above)."""


def _goals(rows: list[list[Any]]) -> list[list[Any]]:
    """Each goal of :data:`GOALS` for ours and every variant that ran the workload, met or not."""
    out: list[list[Any]] = []
    end = [r for r in rows if r[2] == "end to end"]
    for workload, peer, goal in GOALS:
        here = {r[1]: r[6] for r in end if r[0] == workload}
        if peer not in here:
            continue
        for name, rate in here.items():
            if name == "ours" or name.startswith("ours-"):
                ratio = rate / here[peer]
                out.append([f"{workload} ≥ {goal}× {peer}", name, f"{ratio:.2f}×", f"{goal}×", ratio >= goal])
    pages = next((r for r in end if r[0] == "pages" and r[1] == "ours"), None)
    if pages is not None:
        out.append(["pages ≥ 35 pages/s", "ours", f"{pages[6]:.1f}/s", "35/s", pages[6] >= 35])
    return out


def _profile(fn: Callable[[], Any], label: str, directory: Path, dtype: str) -> int:
    """One pass of ``fn`` under ``torch.profiler``; appends two tables to ``directory/profile-<dtype>.txt``: ops by
    device (kernel) time and by CPU time. Wall ≫ the kernels' total means the GPU waits for launches. Returns the
    kernel and graph launches of the pass (CUDA runtime/driver calls; 0 without CUDA)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    fn()  # warm: the timed passes ran other shapes last
    _sync()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        fn()
        _sync()
        wall = time.perf_counter() - start
    events = prof.key_averages()
    launches = sum(int(e.count) for e in events if "LaunchKernel" in e.key or "GraphLaunch" in e.key)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"profile-{dtype}.txt").open("a") as f:
        f.write(
            f"\n===== {label}: one pass, {wall:.3f} s wall (under the profiler), {launches} kernel/graph launches\n"
        )
        if torch.cuda.is_available():
            f.write(events.table(sort_by="self_device_time_total", row_limit=30, max_name_column_width=60))
        f.write(events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60))
    print(
        f"profiled {label}: {wall:.3f} s wall, {launches} launches → {directory / f'profile-{dtype}.txt'}", flush=True
    )
    return launches


def _save_output(path: Path, out: Any) -> None:
    arrays = {"dense": np.asarray(out.dense, np.float32)} if out.dense is not None else {}
    if out.multivector:
        arrays["mv"] = np.concatenate(out.multivector).astype(np.float32)
        arrays["mv_lens"] = np.array([len(m) for m in out.multivector])
    np.savez(path, **arrays)  # type: ignore[arg-type]


def compare_saved(directory: Path) -> list[list[Any]]:
    """Every pair of saved outputs of one workload (same shapes): min cosine and max |Δ| of the dense rows,
    min cosine of the multi-vector rows. Comparing each path's bf16 output with its own fp32 output shows how
    far bf16 rounding alone moves it, which is the yardstick for ours-vs-peer differences in bf16."""
    loaded: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for path in sorted(directory.glob("*.npz")):
        dtype, rest = path.stem.split("-", 1)
        name, workload = rest.rsplit("-", 1)
        with np.load(path) as z:
            loaded.setdefault(workload, {})[f"{name} {dtype}"] = {k: z[k] for k in z.files}
    rows: list[list[Any]] = []
    for workload, by in loaded.items():
        keys = sorted(by)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                x, y = by[a], by[b]
                dense = (
                    (_cos_rows(x["dense"], y["dense"]), float(np.abs(x["dense"] - y["dense"]).max()))
                    if ("dense" in x and "dense" in y)
                    else (None, None)
                )
                mv = _cos_rows(x["mv"], y["mv"]) if "mv" in x and "mv" in y and x["mv"].shape == y["mv"].shape else None
                rows.append([workload, a, b, *dense, mv])
    return rows


def _cos_rows(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())


def _parity(outputs: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """Ours vs reference-style (same inputs, same dtype): minimum cosine of dense and multi-vector rows."""
    rows: list[list[Any]] = []
    ours, ref = outputs.get("ours", {}), outputs.get("reference-style", {})
    for w, out in ours.items():
        theirs = ref.get(w)
        if theirs is None:
            continue
        dense = _cos_rows(out.dense, theirs.dense)
        mv = None
        if (
            out.multivector
            and theirs.multivector
            and all(x.shape == y.shape for x, y in zip(out.multivector, theirs.multivector, strict=True))
        ):
            mv = _cos_rows(np.concatenate(out.multivector), np.concatenate(theirs.multivector))
        rows.append([w, "ours vs reference-style", dense, mv])
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
