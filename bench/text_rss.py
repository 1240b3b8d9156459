"""RSS of a server before and after large text uploads (issue 25: it stayed at ~2.8 GB after them, 0.7 GB idle).

Starts ``python -m service serve`` on the tiny random checkpoint (CPU), reads its RSS (``/proc/<pid>/status``)
when ready, after one small upload (the first-use costs), then after ``--docs`` text documents of ``--mib`` MiB
each (prose, many chunks: tokenizing, chunking and late-chunking windows), and once more after ``--settle``
seconds idle. Without ``malloc_trim`` (``service/engine/memory.py``) to compare: run this file from a checkout
of the commit before it.

    .venv/bin/python -m bench.text_rss --docs 3 --mib 2
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def prose(mib: float, seed: int) -> bytes:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    out, size = [], 0
    while size < mib * 1024 * 1024:
        paragraph = " ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + ".\n\n"
        out.append(paragraph)
        size += len(paragraph)
    return "".join(out).encode()[: int(mib * 1024 * 1024)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3)
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    from model.testing import build_tiny_checkpoint

    work = Path(tempfile.mkdtemp(prefix="text-rss-"))
    checkpoint = build_tiny_checkpoint(work / "tiny")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(
        JEV4_MODEL=str(checkpoint),
        JEV4_PORT=str(port),
        JEV4_DATA_DIR=str(work / "data"),
        HF_HUB_OFFLINE="1",
        JEV4_MAX_BODY_BYTES=str(64 << 20),
        JEV4_LOG_LEVEL="warning",
        JEV4_TORCH_THREADS="1",
    )
    log = (work / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=3600) as client:
            print(f"ready:            {rss_mib(server.pid):7.0f} MiB")
            client.post("/v1/collections", json={"name": "rss", "unit_kind": "chunk"}).raise_for_status()
            docs = "/v1/collections/rss/documents"
            client.post(docs, files={"file": ("warm.txt", prose(0.01, 0), "text/plain")}).raise_for_status()
            before = rss_mib(server.pid)
            print(f"after small doc:  {before:7.0f} MiB")
            for k in range(args.docs):
                start = time.perf_counter()
                data = prose(args.mib, k + 1)
                answer = client.post(docs, files={"file": (f"big{k}.txt", data, "text/plain")})
                answer.raise_for_status()
                print(
                    f"after doc {k + 1} ({len(data) >> 20} MiB, {answer.json()['pages']} chunks, "
                    f"{time.perf_counter() - start:.0f} s): {rss_mib(server.pid):7.0f} MiB"
                )
            time.sleep(args.settle)
            after = rss_mib(server.pid)
            print(f"idle {args.settle:.0f} s later:   {after:7.0f} MiB  ({(after - before) / before:+.0%} of before)")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
