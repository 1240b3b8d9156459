"""Several processes on one embedded index: what a reader pays while another process writes, and how soon it
sees each write.

One collection of ``--pages`` synthetic pages (``bench._synthetic``, float16, 128-d, ~``--vectors`` tokens each)
is searched by this process (dense first stage, ``--candidates``, exact MaxSim rerank), first alone, then while
a second process (``python -m bench.scaleout --writer DIR``) adds one ``--doc-pages``-page document after
another as fast as it can, each with a ``--image-bytes`` page image like the service's. Reported:

* search latency p50/p95 alone and under the writer (the difference is the cost of catching up with the
  writer's commits: each search first loads the rows committed since the last one, and shares the disk);
* visibility delay: for each document the writer acknowledges (its commit returned), the time until a
  search of this process (a query made from that document's first page, on a second handle in a watcher
  thread) finds it — bounded by about one search, since every search starts by loading every commit made
  before it.

    python -m bench.scaleout --pages 5000 --seconds 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench._report import format_table
from bench._synthetic import Corpus
from colbert.local import LocalStore
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]

CONFIG = CollectionConfig(dense_dim=128, multivector_dim=128, codec=Codec.FLOAT16)


def _records(corpus: Corpus, centroids: np.ndarray, first: int, count: int, image_bytes: int) -> list[UnitRecord]:
    pages = [corpus.page(first + j, centroids) for j in range(count)]
    image = bytes(image_bytes) if image_bytes else None
    return [UnitRecord(j, p.dense, p.tokens, text=f"page {first + j}", image=image) for j, p in enumerate(pages)]


def writer(directory: Path, args: argparse.Namespace) -> None:
    """Add documents ``w0, w1, …`` forever; print ``ack <id> <time>`` after each commit."""
    corpus = Corpus(vectors=args.vectors)
    centroids = corpus.centroids()
    store = LocalStore.open(directory)
    i = 0
    while True:
        records = _records(corpus, centroids, args.pages + i * args.doc_pages, args.doc_pages, args.image_bytes)
        store.add_document(f"w{i}", records)
        print(f"ack w{i} {time.time()!r}", flush=True)
        i += 1


def _search_loop(
    store: LocalStore, queries: list[np.ndarray], dense: list[np.ndarray], args: argparse.Namespace, seconds: float
) -> list[float]:
    times: list[float] = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        store.search(
            Query(queries[i % len(queries)], dense[i % len(dense)]), SearchOptions(k=10, candidates=args.candidates)
        )
        times.append(time.perf_counter() - t0)
        i += 1
    return times


def _visibility(
    store: LocalStore,
    acks: list[tuple[str, float]],
    stop: threading.Event,
    out: list[float],
    args: argparse.Namespace,
) -> None:
    """For each acknowledged document: seconds from its ack until a search of this process finds it (a query made
    from the document's first page, searched as the benchmark searches, until the document is among the hits)."""
    corpus = Corpus(vectors=args.vectors)
    centroids = corpus.centroids()
    rng = np.random.default_rng(2)
    seen = 0
    while not stop.is_set():
        while seen < len(acks) and not stop.is_set():
            doc, at = acks[seen]
            page = corpus.page(args.pages + int(doc[1:]) * args.doc_pages, centroids)
            query = corpus.query(page, rng)[0]
            while not stop.is_set():
                hits = store.search(Query(query, page.dense), SearchOptions(k=10, candidates=args.candidates))
                if any(h.doc_id == doc for h in hits):
                    out.append(time.time() - at)
                    break
            seen += 1
        time.sleep(0.001)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--vectors", type=int, default=256)
    parser.add_argument("--doc-pages", type=int, default=4)
    parser.add_argument("--image-bytes", type=int, default=200_000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer is not None:
        writer(args.writer, args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "c"
        corpus = Corpus(vectors=args.vectors)
        centroids = corpus.centroids()
        store = LocalStore.create(directory, CONFIG)
        for start in range(0, args.pages, args.doc_pages):
            count = min(args.doc_pages, args.pages - start)
            store.add_document(f"d{start}", _records(corpus, centroids, start, count, 0))
        rng = np.random.default_rng(1)
        probes = [corpus.page(int(i), centroids) for i in rng.integers(0, args.pages, 32)]
        queries = [corpus.query(p, rng)[0] for p in probes]
        dense = [p.dense for p in probes]
        alone = _search_loop(store, queries, dense, args, args.seconds)
        cmd = [sys.executable, "-m", "bench.scaleout", "--writer", str(directory), *_forward(args)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        acks: list[tuple[str, float]] = []
        stop = threading.Event()
        reader = threading.Thread(target=_read_acks, args=(proc, acks), daemon=True)
        reader.start()
        delays: list[float] = []
        watcher = threading.Thread(target=_visibility, args=(LocalStore.open(directory), acks, stop, delays, args))
        watcher.start()
        deadline = time.monotonic() + 300
        while not acks and time.monotonic() < deadline:  # the writer is writing before the clock starts
            time.sleep(0.01)
        busy = _search_loop(store, queries, dense, args, args.seconds)
        stop.set()
        proc.kill()
        proc.wait()
        watcher.join()
        written = len(acks)
    rows = [
        ["alone", len(alone), *_pct(alone), "-", "-"],
        ["with a writer", len(busy), *_pct(busy), written, _delay(delays)],
    ]
    head = ["search", "n", "p50 ms", "p95 ms", "docs written", "visible after ms (p50 / max)"]
    print(format_table(head, rows, title=f"{args.pages} pages, {args.doc_pages}-page documents"))
    return 0


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        "--pages",
        str(args.pages),
        "--vectors",
        str(args.vectors),
        "--doc-pages",
        str(args.doc_pages),
        "--image-bytes",
        str(args.image_bytes),
    ]


def _read_acks(proc: subprocess.Popen[str], acks: list[tuple[str, float]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        _, doc, at = line.split()
        acks.append((doc, float(at)))


def _delay(delays: list[float]) -> str:
    return "none seen" if not delays else f"{np.median(delays) * 1e3:.1f} / {max(delays) * 1e3:.1f}"


def _pct(times: list[float]) -> list[str]:
    a = np.asarray(times) * 1e3
    return [f"{np.percentile(a, 50):.2f}", f"{np.percentile(a, 95):.2f}"]


if __name__ == "__main__":
    raise SystemExit(main())
