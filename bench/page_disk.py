"""Everything per real PDF page on disk: index the same PDFs with the CLI (default settings, the tiny random
checkpoint: its vectors have the real multi-vector width, 128, and the real page token counts) and print the
collection's bytes per page, split by what holds them (SQLite ``dbstat``: page images, originals, vectors, ...).

``--repo DIR`` runs another checkout's code on the same PDFs (e.g. ``git archive <commit> | tar -x -C DIR`` for
a before/after); ``--keep-originals`` / ``--no-keep-originals`` set ``JEV4_KEEP_ORIGINALS`` (otherwise the
checkout's default applies: on since issue 26). The machine's CPUs may be shared: only
bytes are printed, no timings.

    .venv/bin/python bench/page_disk.py                       # this checkout, default settings
    .venv/bin/python bench/page_disk.py --no-keep-originals
    .venv/bin/python bench/page_disk.py --codec residual2    # a compact multi-vector codec (issue 26)
    .venv/bin/python bench/page_disk.py --repo /tmp/before    # an older checkout (uses its own .venv if present)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PDFS = (
    ROOT / "samples" / "report.pdf",
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
)
COLLECTION = "pages"


def index(repo: Path, pdfs: list[Path], data_dir: Path, keep_originals: bool | None, codec: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", JEV4_DATA_DIR=str(data_dir))
    if keep_originals is not None:
        env["JEV4_KEEP_ORIGINALS"] = "1" if keep_originals else "0"
    python = repo / ".venv" / "bin" / "python"
    command = [str(python if python.exists() else sys.executable), "-m", "service", "index"]
    command += [*map(str, pdfs), "--collection", COLLECTION, "--tiny", "--no-progress"]
    command += ["--codec", codec] if codec else []
    subprocess.run(command, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)


def report(data_dir: Path, pdfs: list[Path]) -> None:
    folder = data_dir / "collections" / COLLECTION
    files = [p for p in folder.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    database = next(p for p in files if p.suffix in (".sqlite", ".db"))
    with sqlite3.connect(database) as conn:
        pages = conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        tables = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        words = conn.execute("SELECT SUM(LENGTH(json_extract(metadata, '$.words'))) FROM pages").fetchone()[0]
    source = sum(p.stat().st_size for p in pdfs)
    print(f"{pages} pages from {len(pdfs)} PDFs ({source / pages / 1024:.1f} KB of PDF per page)")
    print(f"on disk: {total / 1024 / 1024:.2f} MB = {total / pages / 1024:.1f} KB per page ({len(files)} files)")
    for name, size in tables:
        if size >= 0.005 * total:
            print(f"  {name:<32}{size / pages / 1024:>8.1f} KB/page")
    print(f"  of pages: word boxes ('words') {(words or 0) / pages / 1024:>8.1f} KB/page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--keep-originals", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--codec", help="the new collection's multi-vector codec (default: the CLI's)")
    parser.add_argument("--data-dir", type=Path, help="index into this (new) data directory and keep it")
    args = parser.parse_args()
    pdfs = [p.resolve() for p in (args.pdfs or DEFAULT_PDFS) if p.is_file()]
    if args.data_dir is not None:  # kept, e.g. for ``python -m bench.storage DIR/collections/pages --real-dims``
        index(args.repo.resolve(), pdfs, args.data_dir, args.keep_originals, args.codec)
        report(args.data_dir, pdfs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        index(args.repo.resolve(), pdfs, Path(tmp), args.keep_originals, args.codec)
        report(Path(tmp), pdfs)


if __name__ == "__main__":
    main()
