"""Where the multi-vector codes should live (issue 26 item 3): SQLite BLOBs (today) vs one append-only file.

    nice -n 10 .venv/bin/python -m bench.code_reads [--pages 100000] [--codecs binary,residual2]
        [--candidates 100,400,1000] [--dir DIR] [--synchronous FULL]

For each codec, the same ``--pages`` pages of ~``--tokens`` codes each (random bytes of the codec's size; valid
centroid ids for the residual codecs, so they can be scored) are written twice:

* **sqlite** — as the embedded index stores them today: one ``multivectors(page_id, n, data)`` row per page in an
  index made by :meth:`colbert.local.LocalStore.create` (its page size, WAL, ``mmap_size``), one ``BEGIN
  IMMEDIATE … COMMIT`` per ``--doc-pages`` pages (a document), read by the store's own
  :func:`colbert.local.scan.read_pages` (one ``json_each`` query);
* **file** — one append-only ``codes.bin`` read through ``numpy.memmap``, with ``(page_id, n, offset, length)``
  rows in a SQLite file of the same settings; a document appends its pages' codes, fsyncs the file (when
  ``--synchronous FULL``) and then commits its offsets (the design a reader never sees half of). Read two ways:
  offsets by the same ``json_each`` query (``file+sql``) or from arrays held in memory (``file+mem``).

Fetching N candidates = sorted random page ids → one contiguous buffer of their codes (what the rerank's
scorer packs). **Warm**: every file read once beforehand (page cache holds it); median of ``--repeats`` fetches,
fresh ids each. **Cold**: before each fetch every connection and map is closed and the files are dropped from the
page cache with ``posix_fadvise(POSIX_FADV_DONTNEED)`` (this process's files only, no root, nothing else on the
machine evicted; check with ``fincore``), then reopened; median of ``--cold-repeats``. Beside them, the time the
rerank takes to score those N pages (:class:`colbert.local.scan.PageScorer`, 32 query tokens), so the fetch's
share of a search is visible. Ratios are sqlite ÷ file from the same run.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colbert.codebook import Codebook
from colbert.local import LocalStore
from colbert.local import schema as _schema
from colbert.local.scan import PageScorer, read_pages
from colbert.quantize import Codec, bytes_per_row, needs_codebook, train_codebook
from colbert.store import CollectionConfig

__all__ = ["main"]

DIM, K = 128, 1024
MMAP_BYTES = 1 << 31  # LocalOptions.mmap_bytes
OFFSETS_DDL = "CREATE TABLE code_offsets (page_id INTEGER PRIMARY KEY, n INTEGER, offset INTEGER, length INTEGER)"
_OFFSETS_IN = "SELECT page_id, n, offset, length FROM code_offsets WHERE page_id IN (SELECT value FROM json_each(?))"
Fetch = Callable[[np.ndarray], tuple[list[int], bytes]]
Layouts = dict[str, tuple[Path, Callable[[], AbstractContextManager[Fetch]]]]


class Pages:
    """Deterministic page codes: page i has ``counts[i]`` tokens; its bytes are cut from one random pool."""

    def __init__(self, codec: Codec, pages: int, tokens: int, seed: int = 0) -> None:
        self.codec, self.row = codec, bytes_per_row(codec, DIM)
        self.counts = tokens - np.arange(pages) % 16  # (pages,) ~ a real page's 747-755
        rng = np.random.default_rng(seed)
        self._pool = rng.integers(0, 256, size=64 << 20, dtype=np.uint8).tobytes()
        self._ids = rng.integers(0, K, size=4 * tokens, dtype="<u2").tobytes()  # valid centroid ids

    def blob(self, i: int) -> bytes:
        n = int(self.counts[i])
        start = (i * 7919) % (len(self._pool) - n * self.row)
        if not needs_codebook(self.codec):
            return self._pool[start : start + n * self.row]
        first = (i % int(self.counts[0])) * 2  # the id pool holds 4 pages' worth of ids
        return self._ids[first : first + 2 * n] + self._pool[start : start + n * (self.row - 2)]


def build_sqlite(
    directory: Path, pages: Pages, doc_pages: int, synchronous: str, page_size: int | None = None
) -> float:
    """Today's layout through the store's own schema; seconds spent writing. ``page_size``: the SQLite page size
    set before the file is created (the store's own files keep SQLite's 4 KiB: ``colbert/local/schema.py``)."""
    config = CollectionConfig(dense_dim=8, multivector_dim=DIM, codec=pages.codec)
    if page_size is None:
        LocalStore.create(directory, config).close()
    else:
        directory.mkdir(parents=True)
        conn = sqlite3.connect(directory / _schema.DB_FILE, isolation_level=None)
        conn.execute(f"PRAGMA page_size={page_size}")
        _schema.create_schema(conn, config)  # its first write fixes the page size set above
        assert conn.execute("PRAGMA page_size").fetchone()[0] == page_size
        conn.close()
    conn = _schema.connect(directory / _schema.DB_FILE, synchronous=synchronous, busy_timeout_s=5, mmap_bytes=0)
    t0 = time.perf_counter()
    for first in range(0, pages.counts.size, doc_pages):
        rows = [(i + 1, int(pages.counts[i]), pages.blob(i)) for i in range(first, first + doc_pages)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO multivectors (page_id, n, data) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return elapsed


def build_file(directory: Path, pages: Pages, doc_pages: int, synchronous: str) -> float:
    """Append-only codes file + offsets rows committed after the file is (f)synced; seconds spent writing."""
    directory.mkdir(parents=True)
    conn = _schema.connect(directory / "offsets.sqlite", synchronous=synchronous, busy_timeout_s=5, mmap_bytes=0)
    conn.execute(OFFSETS_DDL)
    fd = os.open(directory / "codes.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    offset = 0
    t0 = time.perf_counter()
    for first in range(0, pages.counts.size, doc_pages):
        rows, chunks = [], []
        for i in range(first, first + doc_pages):
            blob = pages.blob(i)
            rows.append((i + 1, int(pages.counts[i]), offset, len(blob)))
            chunks.append(blob)
            offset += len(blob)
        os.write(fd, b"".join(chunks))
        if synchronous == "FULL":
            os.fdatasync(fd)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO code_offsets (page_id, n, offset, length) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    os.close(fd)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return elapsed


def evict(directory: Path) -> None:
    """Drop the directory's files from the page cache (clean pages no process maps)."""
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(directory: Path) -> None:
    for path in directory.iterdir():
        with path.open("rb") as f:
            while f.read(16 << 20):
                pass


@contextmanager
def sqlite_reader(directory: Path) -> Iterator[Fetch]:
    conn = _schema.connect(directory / _schema.DB_FILE, synchronous="FULL", busy_timeout_s=5, mmap_bytes=MMAP_BYTES)

    def fetch(ids: np.ndarray) -> tuple[list[int], bytes]:
        _, counts, blobs = read_pages(conn, ids)
        return counts, b"".join(blobs)

    try:
        yield fetch
    finally:
        conn.close()


@contextmanager
def file_reader(directory: Path, *, offsets_in_memory: bool) -> Iterator[Fetch]:
    """The codes file mapped read-only (``mmap``, what ``numpy.memmap`` wraps; unmapped on exit so that the cold
    runs can evict it); offsets by SQL or from an in-memory (pages, 3) array of n, offset, length."""
    conn = _schema.connect(directory / "offsets.sqlite", synchronous="FULL", busy_timeout_s=5, mmap_bytes=MMAP_BYTES)
    with (directory / "codes.bin").open("rb") as f:
        codes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    table = np.empty((0, 3), dtype=np.int64)
    if offsets_in_memory:
        table = np.array(conn.execute("SELECT n, offset, length FROM code_offsets ORDER BY page_id").fetchall())

    def fetch(ids: np.ndarray) -> tuple[list[int], bytes]:
        if offsets_in_memory:
            rows = table[ids - 1]  # (N, 3) n, offset, length
        else:
            rows = np.array(conn.execute(_OFFSETS_IN, (json.dumps(ids.tolist()),)).fetchall())[:, 1:]
        with memoryview(codes) as view:
            return rows[:, 0].tolist(), b"".join(view[o : o + n] for o, n in rows[:, 1:].tolist())

    try:
        yield fetch
    finally:
        codes.close()
        conn.close()


def timed(fetch: Fetch, ids: np.ndarray) -> float:
    t0 = time.perf_counter()
    fetch(ids)
    return (time.perf_counter() - t0) * 1e3


def draws(pages: int, n: int, repeats: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(pages, size=n, replace=False) + 1).astype(np.int64) for _ in range(repeats)]


def fetch_times(layouts: Layouts, pages: int, n: int, args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    """(warm median, warm best, cold median) ms per layout: the same ids for each, the layouts interleaved draw by
    draw (the order rotating), so that load from other processes falls on each alike."""
    names = list(layouts)
    warm_ms: dict[str, list[float]] = {name: [] for name in names}
    cold_ms: dict[str, list[float]] = {name: [] for name in names}
    for directory in {d for d, _ in layouts.values()}:
        warm(directory)
    with ExitStack() as stack:
        fetches = {name: stack.enter_context(reader()) for name, (_, reader) in layouts.items()}
        for name in names:
            fetches[name](draws(pages, n, 1, 99)[0])  # the connection's first query, the map's first faults
        for r, ids in enumerate(draws(pages, n, args.repeats, n)):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                warm_ms[name].append(timed(fetches[name], ids))
    for r, ids in enumerate(draws(pages, n, args.cold_repeats, n + 1)):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            directory, reader = layouts[name]
            evict(directory)
            with reader() as fetch:
                cold_ms[name].append(timed(fetch, ids))
    return {
        name: (statistics.median(warm_ms[name]), min(warm_ms[name]), statistics.median(cold_ms[name])) for name in names
    }


def scoring_ms(directory: Path, pages: Pages, book: Codebook | None, n: int) -> float:
    """Median ms for the rerank's scorer over N fetched pages (32 query tokens), fetch excluded."""
    config = CollectionConfig(dense_dim=8, multivector_dim=DIM, codec=pages.codec)
    scorer = PageScorer(config, 1 << 30, lambda: book)
    q = np.random.default_rng(3).normal(size=(32, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    conn = _schema.connect(directory / _schema.DB_FILE, synchronous="FULL", busy_timeout_s=5, mmap_bytes=MMAP_BYTES)
    blocks = [read_pages(conn, ids) for ids in draws(pages.counts.size, n, 5, 7)]
    conn.close()
    times = []
    for block in blocks:
        t0 = time.perf_counter()
        scorer.top_of(q, 10, [block])
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def built(directory: Path, build: Callable[[], float]) -> float:
    """Seconds the build of ``directory`` took: built now, or read from the marker of an earlier complete build
    (``--dir`` keeps them; a directory without its marker is rebuilt)."""
    marker = directory.with_suffix(".seconds")
    if marker.is_file() and directory.is_dir():
        return float(marker.read_text())
    if directory.exists():
        shutil.rmtree(directory)
    seconds = build()
    marker.write_text(repr(seconds))
    return seconds


def run_codec(codec: Codec, root: Path, args: argparse.Namespace) -> None:
    pages = Pages(codec, args.pages, args.tokens)
    size = sum(len(pages.blob(i)) for i in range(min(args.pages, 1000))) / min(args.pages, 1000)
    print(f"\n## {codec}: {args.pages:,} pages, ~{size:,.0f} B of codes/page ({size * args.pages / 1e9:.2f} GB)")
    tag = f"{codec}-{args.pages}-{args.synchronous}"
    dirs = {name: root / f"{tag}-{name}" for name in ("sqlite", "sqlite64k", "file")}
    builds: dict[str, Callable[[], float]] = {
        "sqlite": lambda: build_sqlite(dirs["sqlite"], pages, args.doc_pages, args.synchronous),
        "sqlite64k": lambda: build_sqlite(dirs["sqlite64k"], pages, args.doc_pages, args.synchronous, 65536),
        "file": lambda: build_file(dirs["file"], pages, args.doc_pages, args.synchronous),
    }
    seconds = {name: built(dirs[name], build) for name, build in builds.items()}
    print(f"write, one {args.doc_pages}-page transaction each, synchronous={args.synchronous}:")
    for name, secs in seconds.items():
        disk = sum(p.stat().st_size for p in dirs[name].iterdir())
        print(
            f"  {name:9s} {args.pages / secs:9,.0f} pages/s  {size * args.pages / secs / 1e6:7,.1f} MB/s  "
            f"files {disk / 1e9:.2f} GB   time ratio sqlite ÷ {name}: {seconds['sqlite'] / secs:.2f}"
        )
    layouts: Layouts = {
        "sqlite": (dirs["sqlite"], lambda: sqlite_reader(dirs["sqlite"])),
        "sqlite64k": (dirs["sqlite64k"], lambda: sqlite_reader(dirs["sqlite64k"])),
        "file+sql": (dirs["file"], lambda: file_reader(dirs["file"], offsets_in_memory=False)),
        "file+mem": (dirs["file"], lambda: file_reader(dirs["file"], offsets_in_memory=True)),
    }
    book = _book(codec)
    print("fetch N random pages' codes into one buffer, ms (ratio: sqlite ÷ that layout, same column):")
    print("  N      layout      warm median   warm best   cold median")
    for n in args.candidates:
        t = fetch_times(layouts, args.pages, n, args)
        for name, (median, best, cold) in t.items():
            print(f"  {n:<6d} {name:10s} {median:12.2f} {best:11.2f} {cold:13.2f}")
        for name in ("sqlite64k", "file+sql", "file+mem"):
            ratios = [a / b for a, b in zip(t["sqlite"], t[name], strict=True)]
            print(f"  {n:<6d} ratio {name:9s} {ratios[0]:7.2f}x {ratios[1]:10.2f}x {ratios[2]:12.2f}x")
        print(f"  {n:<6d} rerank scoring of the {n} pages fetched (PageScorer, 32 query tokens): "
              f"{scoring_ms(dirs['sqlite'], pages, book, n):.2f} ms")  # fmt: skip


def _book(codec: Codec) -> Codebook | None:
    if not needs_codebook(codec):
        return None
    tokens = np.random.default_rng(5).normal(size=(K * 8, DIM)).astype(np.float32)
    return train_codebook(codec, tokens / np.linalg.norm(tokens, axis=1, keepdims=True), k=K)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=755, help="tokens per page (a real page: 747-755)")
    parser.add_argument("--codecs", default="binary,residual2")
    parser.add_argument("--candidates", default="100,400,1000")
    parser.add_argument("--doc-pages", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL", "OFF"], default="FULL")
    parser.add_argument(
        "--dir",
        type=Path,
        help="where to build and keep the files (reused by a later run with the "
        "same --pages and --synchronous); default: a temporary directory, removed",
    )
    args = parser.parse_args(argv)
    args.candidates = [int(x) for x in args.candidates.split(",")]
    if args.pages % args.doc_pages or min(args.candidates) > args.pages:
        parser.error("--pages must be a multiple of --doc-pages and at least every --candidates")
    with tempfile.TemporaryDirectory() if args.dir is None else nullcontext(str(args.dir)) as root:
        Path(root).mkdir(parents=True, exist_ok=True)
        for codec in args.codecs.split(","):
            run_codec(Codec(codec), Path(root), args)


if __name__ == "__main__":
    main()
