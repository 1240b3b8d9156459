"""The CLI's ``search`` without a server (the process loads the model for its one query) against ``search --url``
(the process asks a running server: one HTTP request), same query, same collection, whole processes timed.

    nice -n 10 .venv/bin/python bench/cli_url.py [--runs 3] [--model PATH | (default) --tiny]

Starts ``python -m service serve`` on a new data directory and a free loopback port, indexes
``samples/report.pdf`` into the collection ``bench`` with ``index --url`` (so that path runs too), then, ``--runs``
times in turn, one local ``search`` (``--data-dir`` of the server, the model loaded in the process) and one
``search --url``, and two floors of the ``--url`` side: the same search as one HTTP request from this process
(``httpx``, a new connection), and a bare ``python -c "import service.cli"`` (the interpreter and the CLI's imports,
which any command pays). Prints each run's wall seconds, the medians and their ratio, and whether both printed the
same hits (document and page, in order). The tiny checkpoint makes the model load short: with a real one the
local side is slower still, the ``--url`` side unchanged.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUERY = "Which region had the highest revenue?"

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "service", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _http_search(url: str) -> float:
    """One search request as the CLI sends it (its default top_k 5), on a new connection; wall seconds."""
    start = time.perf_counter()
    answer = httpx.post(f"{url}/v1/collections/bench/search", json={"query": QUERY, "top_k": 5}, timeout=600)
    seconds = time.perf_counter() - start
    answer.raise_for_status()
    return seconds


def _startup(env: dict[str, str]) -> float:
    """A process that starts the interpreter and imports the CLI, then exits; wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import service.cli"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def _hits(table: str) -> list[tuple[str, ...]]:
    """(document, page) of each table row: ``rank score document page N [signals]``."""
    return [tuple(line.split()[2:5]) for line in table.splitlines() if line.strip()]


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready after {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", help="a checkpoint (default: the tiny random one, --tiny)")
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else ["--tiny"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env |= {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "JEV4_PDF_DPI": "72"}
    with tempfile.TemporaryDirectory() as tmp:
        data = ["--data-dir", str(Path(tmp) / "data")]
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "service", "serve", "--port", str(port), *data, *model]
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, server, log_path)
            index = ["index", "samples/report.pdf", "--collection", "bench", "--no-progress", "--url", url]
            seconds, _ = _cli(*index, env=env)
            print(f"index --url (3 pages, embedded by the server): {seconds:.2f} s")
            local_s, remote_s, http_s, start_s, same = [], [], [], [], []
            for run in range(1, args.runs + 1):
                t_local, out_local = _cli("search", QUERY, "--collection", "bench", *data, *model, env=env)
                t_remote, out_remote = _cli("search", QUERY, "--collection", "bench", "--url", url, env=env)
                t_http = _http_search(url)
                t_start = _startup(env)
                local_s.append(t_local)
                remote_s.append(t_remote)
                http_s.append(t_http)
                start_s.append(t_start)
                same.append(_hits(out_local) == _hits(out_remote))
                print(
                    f"run {run}: search without a server {t_local:.2f} s, search --url {t_remote:.2f} s; "
                    f"one HTTP request {t_http:.2f} s, interpreter + CLI imports {t_start:.2f} s"
                )
        finally:
            server.terminate()
            server.wait(30)
    local, remote = statistics.median(local_s), statistics.median(remote_s)
    print(f"median: without a server {local:.2f} s, --url {remote:.2f} s; ratio {local / remote:.1f}x")
    http, start = statistics.median(http_s), statistics.median(start_s)
    print(
        f"median floors of --url: one HTTP request {http:.2f} s + interpreter and CLI imports {start:.2f} s "
        f"= {http + start:.2f} s; --url is {remote / (http + start):.2f}x that"
    )
    print(f"same hits both ways: {sum(same)} of {len(same)} runs")


if __name__ == "__main__":
    main()
