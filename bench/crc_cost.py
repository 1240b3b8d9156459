"""What the multi-vector checksums cost a rerank (:mod:`colbert.local.checksum`, issue 26 "Bad input").

    nice -n 10 .venv/bin/python -m bench.crc_cost [--pages 1000] [--candidates 400] [--codecs binary,int8]

For each codec, ``--pages`` pages of ~``--tokens`` codes (:class:`bench.code_reads.Pages`) are written to an index
made by :meth:`colbert.local.LocalStore.create`, and their checksums by :func:`colbert.local.checksum.add_missing_crcs`
(what ``vacuum`` does for an older index). Then, for ``--repeats`` draws of ``--candidates`` random pages, the
rerank's own work — :func:`colbert.local.scan.read_pages` (one ``json_each`` query) and
:meth:`colbert.local.scan.PageScorer.top_of` (32 query tokens) — is timed twice on the same ids, back to back and
in alternating order: with the checksums checked, and with :func:`colbert.local.scan.check_codes` replaced by a
no-op (the code before the checksums). Times are CPU seconds of this process (``time.process_time``), so another
process's load does not count; the medians and their ratio come from the same run. ``crc32 alone`` is the checksum
pass over the same blobs, without SQL or scoring, as the index computes it (:func:`colbert.local.checksum.code_crc`,
zlib-ng) and with the Python ``zlib`` module (the system zlib: the same values, the index's before zlib-ng).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.code_reads import DIM, MMAP_BYTES, Pages, _book, build_sqlite, draws
from colbert.local import scan
from colbert.local import schema as _schema
from colbert.local.checksum import add_missing_crcs, check_codes, code_crc
from colbert.quantize import Codec
from colbert.store import CollectionConfig

__all__ = ["main"]


def cpu_ms(work: Callable[[Any], object], arg: Any) -> float:
    t0 = time.process_time()
    work(arg)
    return (time.process_time() - t0) * 1e3


def _no_check(conn: object, rows: object) -> None:
    """The code before the checksums: nothing checked."""


def run_codec(codec: Codec, root: Path, args: argparse.Namespace) -> None:
    pages = Pages(codec, args.pages, args.tokens)
    directory = root / str(codec)
    build_sqlite(directory, pages, 10, "NORMAL")
    conn = _schema.connect(directory / _schema.DB_FILE, synchronous="NORMAL", busy_timeout_s=5, mmap_bytes=MMAP_BYTES)
    conn.execute("BEGIN IMMEDIATE")
    add_missing_crcs(conn)
    conn.execute("COMMIT")
    book = _book(codec)
    scorer = scan.PageScorer(CollectionConfig(8, DIM, codec=codec), 1 << 30, lambda: book)
    q = np.random.default_rng(3).normal(size=(32, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    checked = check_codes
    times: dict[str, list[float]] = {"checked": [], "unchecked": [], "crc32 alone": [], "zlib crc32": []}

    def rerank(ids: np.ndarray) -> object:
        return scorer.top_of(q, 10, [scan.read_pages(conn, ids)])

    rerank(np.arange(1, args.pages + 1))  # every page read once: a warm page cache for both variants
    for r, ids in enumerate(draws(args.pages, args.candidates, args.repeats, 11)):
        ids = ids + 1  # page ids start at 1
        for variant in ("checked", "unchecked") if r % 2 else ("unchecked", "checked"):
            scan.check_codes = checked if variant == "checked" else _no_check  # type: ignore[attr-defined]
            try:
                times[variant].append(cpu_ms(rerank, ids))
            finally:
                scan.check_codes = checked  # type: ignore[attr-defined]
        blobs = scan.read_pages(conn, ids)[2]
        times["crc32 alone"].append(cpu_ms(lambda bs: [code_crc(b) for b in bs], blobs))
        times["zlib crc32"].append(cpu_ms(lambda bs: [zlib.crc32(b) for b in bs], blobs))
    conn.close()
    kib = sum(len(pages.blob(i)) for i in range(args.candidates)) / 1024
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{codec} ({args.candidates} candidates, ~{kib:,.0f} KiB of codes), CPU ms, medians of {args.repeats}:")
    for name, value in median.items():
        print(f"  {name:12s} {value:8.2f}")
    print(f"  checked / unchecked: {median['checked'] / median['unchecked']:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=755, help="tokens per page (a real page: 747-755)")
    parser.add_argument("--codecs", default="binary,int8")
    parser.add_argument("--candidates", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.pages % 10 or args.candidates > args.pages:
        parser.error("--pages must be a multiple of 10 and at least --candidates")
    with tempfile.TemporaryDirectory(prefix="crc_cost-") as tmp:
        for codec in args.codecs.split(","):
            run_codec(Codec(codec), Path(tmp), args)


if __name__ == "__main__":
    main()
