"""One contestant's process: load once, then answer the parent's requests (one JSON line each way).

The parent (``bench/encoder.py``) starts one worker per contestant, possibly in another venv, and
interleaves their timed runs so that load from other processes on the machine falls on every contestant
alike. The protocol channel is the worker's original stdout; anything a library prints goes to stderr.

Requests: ``{"op": "warmup"}``;
``{"op": "run", "workload": w, "save": path | null}`` → ``{"seconds", "items", "tokens"}``;
``{"op": "memory", "tokens": n}`` → peak RSS while encoding one ``n``-token text (sampled every 5 ms);
``{"op": "matmul", "dtype": d}`` → this venv's matmul rate; ``{"op": "quit"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from bench.workloads import TextRow, load_workloads

__all__ = ["Contestant", "ContestantArgs", "LoadedWorkloads", "Output", "RssSampler", "serve"]


@dataclass
class Output:
    """What one workload produced: dense (n, D) and/or multi-vectors [(Li, 128)], and tokens processed."""

    dense: np.ndarray | None
    multivector: list[np.ndarray] | None
    tokens: int


class Contestant(Protocol):
    name: str

    def texts(self, rows: list[TextRow], workload: str) -> Output:
        """Encode text rows (``workload`` names the workload, e.g. to pick the batched low-level path)."""
        ...

    def pages(self, images: list[Image.Image]) -> Output:
        """Encode page images with task retrieval."""
        ...

    def memory_probe(self, n_tokens: int) -> int:
        """Encode one text of ``n_tokens`` tokens; return the tokens actually encoded."""
        ...


@dataclass(frozen=True)
class LoadedWorkloads:
    """The workloads in memory: text rows by name, pages decoded to RGB (decoding is off the clock)."""

    texts: dict[str, list[TextRow]]
    pages: list[Image.Image]

    @classmethod
    def load(cls, directory: Path) -> LoadedWorkloads:
        w = load_workloads(directory)
        texts = {"queries": w.queries, "passages": w.passages, "mixed": w.mixed, "single": w.single}
        return cls(texts, [Image.open(p).convert("RGB") for p in w.pages])


@dataclass(frozen=True)
class ContestantArgs:
    checkpoint: Path
    dtype: str
    workloads: Path
    threads: int
    batch_size: int
    device: str = "cpu"


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Max resident set size seen by a background thread (every ``interval`` seconds) while active."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _current_rss())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = _current_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss())


def _save(path: str, out: Output) -> None:
    arrays: dict[str, np.ndarray] = {}
    if out.dense is not None:
        arrays["dense"] = out.dense.astype(np.float32)
    if out.multivector is not None:
        arrays["mv"] = np.concatenate(out.multivector).astype(np.float32)
        arrays["mv_lens"] = np.array([len(m) for m in out.multivector])
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _handle(contestant: Contestant, work: LoadedWorkloads, req: dict[str, Any]) -> dict[str, Any]:
    op = req["op"]
    if op == "warmup":  # lazy initialisation (kernels, allocator, caches) off the clock
        contestant.pages(work.pages[:1])
        contestant.texts(work.texts["queries"][:4], "queries")
        return {}
    if op == "run":
        name = req["workload"]
        start = time.perf_counter()
        out = contestant.pages(work.pages) if name == "pages" else contestant.texts(work.texts[name], name)
        seconds = time.perf_counter() - start
        if req.get("save"):
            _save(req["save"], out)
        n = len(out.dense) if out.dense is not None else len(out.multivector or [])
        return {"seconds": seconds, "items": n, "tokens": out.tokens}
    if op == "memory":
        before = _current_rss()
        with RssSampler() as sampler:
            start = time.perf_counter()
            tokens = contestant.memory_probe(int(req["tokens"]))
            seconds = time.perf_counter() - start
        return {"rss_before": before, "peak": sampler.peak, "tokens": tokens, "seconds": seconds}
    if op == "matmul":
        import torch

        from bench.machine import matmul_rate

        return asdict(matmul_rate(getattr(torch, req["dtype"])))
    raise ValueError(f"unknown op {op!r}")


def serve(build: Callable[[ContestantArgs], Contestant]) -> None:
    """Parse the worker's arguments, build the contestant, answer requests until ``quit`` or EOF."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], required=True)
    parser.add_argument("--workloads", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args()
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library prints go to stderr; stdout is the protocol channel
    sys.stdout = sys.stderr

    import torch

    if ns.threads:
        torch.set_num_threads(ns.threads)
    start = time.perf_counter()
    args = ContestantArgs(ns.checkpoint, ns.dtype, ns.workloads, torch.get_num_threads(), ns.batch_size, ns.device)
    contestant = build(args)
    work = LoadedWorkloads.load(ns.workloads)
    hello = {"name": contestant.name, "torch": torch.__version__, "threads": torch.get_num_threads()}
    hello |= {"load_seconds": time.perf_counter() - start, "rss_after_load": _current_rss()}
    channel.write(json.dumps(hello) + "\n")
    channel.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        try:
            resp = _handle(contestant, work, req)
        except Exception as exc:  # noqa: BLE001 - outermost layer of the worker: report to the parent, keep serving
            traceback.print_exc()
            resp = {"error": f"{type(exc).__name__}: {exc}"}
        channel.write(json.dumps(resp) + "\n")
        channel.flush()
