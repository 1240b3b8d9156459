"""How the management commands print: one JSON object per line with ``--json``, else lines for people."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import msgspec

from service.collections.schemas import CollectionObject, DocumentObject

__all__ = ["collection_line", "counted", "document_lines", "show", "size", "when"]


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    >>> counted(1, "document"), counted(0, "page"), counted(3, "unit")
    ('1 document', '0 pages', '3 units')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def show(args: argparse.Namespace, obj: msgspec.Struct, text: str) -> None:
    """``obj`` as one JSON line with ``--json``, else ``text``."""
    print(msgspec.json.encode(obj).decode() if args.json else text)


def size(n: int | None) -> str:
    """Bytes for people.

    >>> size(None), size(999), size(123_456_789)
    ('size on disk not known here', '999 B', '117.7 MiB')
    """
    if n is None:
        return "size on disk not known here"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def collection_line(c: CollectionObject) -> str:
    """``name  N documents, N pages, SIZE on disk  (dimensions D, codec C, pool factor P[, K cells])``: the cells
    of the pooled_ivf first stage once trained (``collections train-cells``)."""
    on_disk = "" if c.disk_bytes is None else f", {size(c.disk_bytes)} on disk"
    cells = "" if c.cells is None else f", {counted(c.cells, 'cell')}"
    return (
        f"{c.name}  {counted(c.documents, 'document')}, {counted(c.pages, 'page')}{on_disk}  "
        f"(dimensions {c.dimensions}, codec {c.codec}, pool factor {c.pool_factor}{cells})"
    )


def document_lines(d: DocumentObject) -> list[str]:
    meta = json.dumps(d.metadata, ensure_ascii=False, sort_keys=True) if d.metadata else "no metadata"
    lines = [f"{d.id}  {counted(d.pages, 'page')}  added {when(d.created_at)}", f"    {meta}"]
    if d.file is not None:
        name = "" if d.file.name is None else f" {json.dumps(d.file.name, ensure_ascii=False)}"
        lines.append(f"    original file{name}: {d.file.media_type}, {size(d.file.bytes)}")
    lines += [f"    warning: {w}" for w in d.warnings]
    return lines
