"""Where the bytes of an embedded collection go: bytes per unit by table (issue 26, "where the bytes go").

    .venv/bin/python -m bench.storage DATA_DIR/collections/<name> [--source PATH ...] [--real-dims]

Reads one collection's ``index.sqlite`` (run ``vacuum`` or build it fresh first, or freed pages count as
``free``) and prints, per table and index (SQLite's ``dbstat``: every page it owns, so overhead included) its
bytes, bytes per unit and share, then the payload bytes of the large columns (what the blobs and texts hold,
without SQLite's page overhead). ``--source`` folders/files: their size and the collection's ratio to it
(the issue's "code collection ≤ 8× its source").

``--real-dims``: the vector payloads as they would be at the real model's sizes (dense 2048, multi-vector 128)
for the same stored rows — for collections built with the tiny random checkpoint (``--tiny``), whose widths are
smaller but whose token counts, texts, images and originals are the real ones.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colbert.local.dense_codec import dense_bytes
from colbert.local.sketch_codec import sketch_row_bytes
from colbert.quantize import bytes_per_row

__all__ = ["main", "table_bytes"]

REAL_DENSE, REAL_MV = 2048, 128
_PAYLOADS = (  # (label, SQL of the summed payload bytes)
    ("pages.dense", "SELECT COALESCE(SUM(length(dense)), 0) FROM pages"),
    ("multivectors.data", "SELECT COALESCE(SUM(length(data)), 0) FROM multivectors"),
    ("sketches.data", "SELECT COALESCE(SUM(length(data)), 0) FROM sketches"),
    ("unit_text.text", "SELECT COALESCE(SUM(length(CAST(text AS BLOB))), 0) FROM unit_text"),
    ("unit_images.data", "SELECT COALESCE(SUM(length(data)), 0) FROM unit_images"),
    ("originals.data", "SELECT COALESCE(SUM(length(data)), 0) FROM originals"),
)


def table_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes of every table and index (``dbstat``), FTS5 shadow tables folded into one ``unit_fts*`` entry."""
    out: dict[str, int] = {}
    for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        key = "unit_fts* (full-text index)" if str(name).startswith("unit_fts") else str(name)
        out[key] = out.get(key, 0) + int(size)
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    out["(free pages)"] = int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page_size
    return out


def _source_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts]
        total += sum(p.stat().st_size for p in files)
    return total


def _real_dims(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    units, rows = conn.execute("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM multivectors").fetchone()
    k = int(meta.get("sketch_vectors", 8))
    dense = dense_bytes(meta.get("dense_codec", "float32"), REAL_DENSE)
    return [
        ("pages.dense", units * dense),
        ("multivectors.data", rows * bytes_per_row(meta["codec"], REAL_MV)),
        ("sketches.data", units * sketch_row_bytes(meta.get("sketch_codec", "float16"), k, REAL_MV)),
    ]


def report(index: Path, sources: list[Path], real_dims: bool) -> str:
    conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        units = int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]) or 1
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        tables = table_bytes(conn)
        file_bytes = sum(p.stat().st_size for p in index.parent.iterdir() if p.is_file())
        lines = [
            f"{index}: {units} units, codec {meta['codec']}, pool_factor {meta['pool_factor']}, "
            f"dense {meta['dense_dim']}-d {meta.get('dense_codec', 'float32')}, sketch_vectors "
            f"{meta.get('sketch_vectors')} ({meta.get('sketch_codec', 'float16')}); "
            f"files {file_bytes:,} B = {file_bytes / units:,.0f} B/unit",
            f"{'table / index (dbstat, pages owned)':<40}{'bytes':>14}{'B/unit':>12}{'share':>8}",
        ]
        total = sum(tables.values()) or 1
        for name, size in sorted(tables.items(), key=lambda kv: -kv[1]):
            lines.append(f"{name:<40}{size:>14,}{size / units:>12,.0f}{100 * size / total:>7.1f}%")
        lines.append(f"{'payload (column bytes, no overhead)':<40}{'bytes':>14}{'B/unit':>12}")
        for label, sql in _PAYLOADS:
            size = int(conn.execute(sql).fetchone()[0])
            lines.append(f"{label:<40}{size:>14,}{size / units:>12,.0f}")
        if real_dims:
            lines.append(f"{'payload at real sizes (2048 / 128)':<40}{'bytes':>14}{'B/unit':>12}")
            payload = dict(_PAYLOADS)
            for label, size in _real_dims(conn):
                lines.append(f"{label:<40}{size:>14,}{size / units:>12,.0f}")
                file_bytes += size - int(conn.execute(payload[label]).fetchone()[0])  # ≈: page packing not redone
            lines.append(f"files at real sizes ≈ {file_bytes:,} B = {file_bytes / units:,.0f} B/unit")
        if sources:
            src = _source_bytes(sources)
            lines.append(f"source {src:,} B; collection files / source = {file_bytes / max(src, 1):.1f}x")
    finally:
        conn.close()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("collection", type=Path, help="a collection directory (holding index.sqlite)")
    p.add_argument("--source", type=Path, action="append", default=[], help="the indexed files/folders")
    p.add_argument("--real-dims", action="store_true", help="vector payloads at the real model's sizes")
    args = p.parse_args(argv)
    print(report(args.collection / "index.sqlite", args.source, args.real_dims))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
