"""Soak test: mixed traffic from many clients against one server on loopback, for minutes.

    python -m bench.soak --minutes 10 --clients 16            # starts its own server (--tiny) and stops it
    python -m bench.soak --url http://127.0.0.1:8080 --key K   # an existing server (RSS sampling needs --pid)

Traffic (weighted, per client, back to back): text embeddings, image embeddings, 2-page PDF embeddings, rerank,
collection search, image and PDF uploads, document deletes (of the client's own uploads). A client holding
``--max-docs`` documents deletes one before its next upload, so the collection reaches a steady size (at most
clients x max-docs documents) and memory that still grows is a leak, not data. Reported: p50/p99 latency and
count per route, responses by status per route, and the server's RSS, open file descriptors and threads sampled
every ``--sample-s`` seconds, with their first/last/max, the change over the second half and its least-squares
slope per minute (a leak shows as a steady climb there). ``--out`` writes everything as JSON.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

COLLECTION = "soak"
WEIGHTS = {
    "embed_text": 30,
    "embed_image": 12,
    "embed_pdf": 5,
    "rerank": 10,
    "search": 20,
    "upload_image": 10,
    "upload_pdf": 4,
    "delete": 9,
}


def _png(seed: int) -> str:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _pdf(pages: int) -> str:
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=400)
        page.insert_text((30, 50), f"Soak test page {i + 1}: revenue by region, quarterly figures", fontsize=11)
    data: bytes = doc.tobytes()
    return base64.b64encode(data).decode()


class Traffic:
    """One client's loop; records (route, status, seconds) into shared lists."""

    def __init__(
        self, url: str, key: str, index: int, records: list[tuple[str, int, float]], max_docs: int = 4
    ) -> None:
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
        self.rng = random.Random(index)
        self.index = index
        self.records = records
        self.mine: list[str] = []
        self.max_docs = max_docs
        self.images = [_png(index * 100 + i) for i in range(4)]
        self.pdf = _pdf(2)

    def request(self, route: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = self.client.request(method, path, **kwargs)
            status = response.status_code
        except httpx.HTTPError:
            response, status = None, 0  # 0 = transport error (connection refused/reset, timeout)
        self.records.append((route, status, time.perf_counter() - start))
        return response

    def step(self) -> None:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if kind.startswith("upload") and len(self.mine) >= self.max_docs:
            kind = "delete"  # steady state: the collection stops growing
        texts = [f"soak client {self.index} text {self.rng.random()}" for _ in range(self.rng.randint(1, 8))]
        docs = f"/v1/collections/{COLLECTION}/documents"
        if kind == "embed_text":
            self.request(kind, "POST", "/v1/embeddings", json={"input": texts, "task": "retrieval.passage"})
        elif kind == "embed_image":
            self.request(kind, "POST", "/v1/embeddings", json={"input": [{"image": self.rng.choice(self.images)}]})
        elif kind == "embed_pdf":
            self.request(kind, "POST", "/v1/embeddings", json={"input": [{"pdf": self.pdf}]})
        elif kind == "rerank":
            body = {"query": texts[0], "documents": [*texts, {"image": self.images[0]}], "top_n": 3}
            self.request(kind, "POST", "/v1/rerank", json=body)
        elif kind == "search":
            self.request(kind, "POST", f"/v1/collections/{COLLECTION}/search", json={"query": texts[0], "top_k": 5})
        elif kind in ("upload_image", "upload_pdf"):
            doc_id = f"c{self.index}-{self.rng.getrandbits(40):x}"
            media = {"image": self.rng.choice(self.images)} if kind == "upload_image" else {"pdf": self.pdf}
            body = {**media, "document_id": doc_id, "metadata": {"client": self.index}}
            response = self.request(kind, "POST", docs, json=body)
            if response is not None and response.status_code == 201:
                self.mine.append(doc_id)
        elif self.mine:
            self.request(kind, "DELETE", f"{docs}/{self.mine.pop(self.rng.randrange(len(self.mine)))}")


def _sample(pid: int | None) -> dict[str, float]:
    if pid is None:
        return {}
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "open_files": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
    }


def _start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "soak-key"
    env = {**os.environ, "JEV4_PORT": str(port), "JEV4_API_KEYS": key, "JEV4_DATA_DIR": str(data_dir)}
    env.setdefault("JEV4_IMAGE_MAX_PIXELS", str(256 * 28 * 28))
    env.setdefault("JEV4_PDF_DPI", "72")
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "service", "serve", "--tiny"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(900):
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url, key
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(1)
    raise RuntimeError("server not ready after 15 minutes")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def summarise(records: list[tuple[str, int, float]], samples: list[dict[str, float]]) -> dict[str, Any]:
    by_route: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    for route, status, seconds in records:
        by_route[route].append(seconds)
        statuses[route][status] += 1
    routes = {
        route: {
            "count": len(times),
            "p50_ms": round(_percentile(times, 50), 1),
            "p99_ms": round(_percentile(times, 99), 1),
            "statuses": dict(sorted(statuses[route].items())),
        }
        for route, times in sorted(by_route.items())
    }
    resources: dict[str, Any] = {}
    if samples:
        half = samples[len(samples) // 2 :]
        for name in ("rss_mib", "open_files", "threads"):
            values = [s[name] for s in samples]
            resources[name] = {
                "first": round(values[0], 1),
                "last": round(values[-1], 1),
                "max": round(max(values), 1),
                "second_half_change": round(half[-1][name] - half[0][name], 1),
                "second_half_slope_per_min": _slope_per_min(half, name),
            }
    return {"routes": routes, "resources": resources, "samples": samples}


def _slope_per_min(samples: list[dict[str, float]], name: str) -> float:
    """Least-squares slope of ``name`` over time, per minute (0 for fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    t = np.array([s["t_s"] for s in samples]) / 60
    v = np.array([s[name] for s in samples])
    return round(float(np.polyfit(t, v, 1)[0]), 2)


def print_table(summary: dict[str, Any]) -> None:
    print(f"{'route':<14} {'count':>7} {'p50 ms':>9} {'p99 ms':>9}  statuses")
    for route, row in summary["routes"].items():
        print(f"{route:<14} {row['count']:>7} {row['p50_ms']:>9} {row['p99_ms']:>9}  {row['statuses']}")
    for name, row in summary["resources"].items():
        print(f"{name:<12} first {row['first']} last {row['last']} max {row['max']} "
              f"second-half change {row['second_half_change']} "
              f"(slope {row['second_half_slope_per_min']}/min)")  # fmt: skip


def run(
    url: str, key: str, pid: int | None, minutes: float, clients: int, sample_s: float, max_docs: int = 4
) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        c.post("/v1/collections", json={"name": COLLECTION})
    records: list[tuple[str, int, float]] = []
    samples: list[dict[str, float]] = []
    stop = time.monotonic() + minutes * 60
    loops = [Traffic(url, key, i, records, max_docs) for i in range(clients)]

    def client_loop(traffic: Traffic) -> None:
        while time.monotonic() < stop:
            traffic.step()

    threads = [threading.Thread(target=client_loop, args=(t,), daemon=True) for t in loops]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    while time.monotonic() < stop:
        sample = _sample(pid)
        if sample:
            samples.append({"t_s": round(time.monotonic() - start, 1), **sample})
        time.sleep(sample_s)
    for thread in threads:
        thread.join(timeout=600)
    return summarise(records, samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sample-s", type=float, default=5)
    parser.add_argument("--max-docs", type=int, default=4, help="documents a client holds at most (steady state)")
    parser.add_argument("--url", help="an existing server (default: start one with --tiny)")
    parser.add_argument("--key", default="")
    parser.add_argument("--pid", type=int, help="the existing server's pid (for RSS/fd/thread samples)")
    parser.add_argument("--out", type=Path, help="write the summary as JSON here")
    args = parser.parse_args(argv)
    process = None
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        if args.url:
            url, key, pid = args.url, args.key, args.pid
        else:
            process, url, key = _start_server(Path(tmp))
            pid = process.pid
        try:
            summary = run(url, key, pid, args.minutes, args.clients, args.sample_s, args.max_docs)
        finally:
            if process is not None:
                process.terminate()
                process.wait(30)
    summary["config"] = {
        "minutes": args.minutes,
        "clients": args.clients,
        "max_docs": args.max_docs,
        "weights": WEIGHTS,
    }
    print_table(summary)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
