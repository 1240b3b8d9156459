"""Bytes per page of each codec on each backend (issue 26 item 6): the same synthetic pages written to the
embedded backend and to the Qdrant backend, no page images (they cost the same on both: one blob per page).

Per codec, three numbers per page, each labelled by how it was obtained:

* **embedded, measured**: the collection directory's size on disk after the writes (SQLite file + WAL), split into
  the multi-vector table and the rest (dense vector, sketch, text, BM25 postings, records) with SQLite's
  ``dbstat`` (:func:`bench.storage.table_bytes`).
* **Qdrant local mode, measured**: qdrant-client's local mode persisted with ``path=`` — its directory's size.
  Local mode pickles each point (vectors as Python float lists) into one SQLite file and ignores the datatype and
  quantization: a measurement of that storage, *not* of a Qdrant server's.
* **Qdrant server, computed** from Qdrant's documented layout and the points this code writes
  (:func:`colbert.qdrant.layout.unit_point`): ``mv`` tokens × (datatype bytes × d + the quantized copy's bytes,
  :class:`colbert.qdrant.codecs.MultivectorStorage`), the ``dense`` vector (float32) with its HNSW level-0 links
  (2·m × 4 B, m = 16), the sparse ``text`` vector (nnz × 8 B: u32 index + f32 weight), the payload's JSON bytes,
  and the document record's JSON bytes over the document's pages. No server can run here, so this is the one
  number that is not measured; RAM is shown beside it (the quantized copy, ``always_ram``; the originals are on
  disk, ``multivector_on_disk``).

Residual codecs: embedded only (Qdrant refuses them, :mod:`colbert.qdrant.codecs`).

``--layouts SKETCH:DENSE[:PAGE_SIZE] ...`` also builds the embedded collection once per on-disk layout — the
sketch codec (:mod:`colbert.local.sketch_codec`: ``float16`` as every index before the ``sketch_codec`` meta key,
``int8`` as new ones), the dense codec and SQLite's page size (default 4096, what every index has) — and prints
bytes per page by table (``dbstat``: pages owned, overhead included) for each codec × layout: before/after in one
run on the same pages. ``--embedded-only`` skips Qdrant; ``--words 0`` stores no text (the issue's "vectors +
first-stage index" row); ``--batch-docs`` loads through ``add_documents`` (documents per transaction), as
``bench/search.py`` builds.

    .venv/bin/python -m bench.qdrant_bytes                     # 100 pages of ~768 tokens × 128, every codec
    .venv/bin/python -m bench.qdrant_bytes --pages 40 --codecs float16 int8
    .venv/bin/python -m bench.qdrant_bytes --embedded-only --pages 20000 --dense-dim 128 --words 0 \
        --codecs binary residualpq1 int8 --layouts float16:float32 int8:float32 int8:int8 --batch-docs 20

Only bytes are printed (the machine's CPUs may be shared: no timings).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qdrant_client import QdrantClient

from bench._qdrant_edge import EdgeRun
from bench._qdrant_edge import available as edge_available
from bench._qdrant_edge import run as edge_run
from bench._synthetic import Corpus
from bench._synthetic_text import TextCorpus
from bench.storage import table_bytes
from colbert.local import LocalStore
from colbert.local import schema as _schema
from colbert.local.bulk import add_documents
from colbert.local.options import LocalOptions
from colbert.qdrant import QdrantStore
from colbert.qdrant.codecs import storage_of
from colbert.qdrant.layout import unit_point
from colbert.qdrant.sparse import SPARSE_NAME
from colbert.quantize import Codec, needs_codebook
from colbert.store import CollectionConfig, NewDocument, UnitRecord

__all__ = ["main"]

HNSW_M = 16  # Qdrant's default m for the dense vector's graph


@dataclass(frozen=True)
class Row:
    codec: str
    pages: int
    embedded: float  # bytes per page, measured
    embedded_mv: float  # of which the multi-vector table
    local_mode: float | None  # Qdrant local mode, measured (None: refused)
    server_disk: float | None  # Qdrant server, computed
    server_ram: float | None  # of which the quantized copy kept in RAM
    edge: EdgeRun | None = None  # Qdrant's engine in-process (qdrant-edge-py), measured; None: not run


def _edge_queries(args: argparse.Namespace, n: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query tokens, a random unit dense query) drawn from the corpus's pages (the dense vectors are random)."""
    corpus = Corpus(seed=args.seed, dim=args.dim, vectors=args.tokens)
    centroids, rng = corpus.centroids(), np.random.default_rng((args.seed, 0xE1))
    out = []
    for _ in range(n):
        q, _ = corpus.query(corpus.page(int(rng.integers(args.pages)), centroids), rng)
        dense = rng.standard_normal(args.dense_dim).astype(np.float32)
        out.append((q, dense / np.linalg.norm(dense)))
    return out


def _edge(args: argparse.Namespace, config: CollectionConfig, root: Path) -> EdgeRun:
    points = (unit_point(config, d, "0" * 32, {}, u) for d, units in _documents(args) for u in units)
    dims = (config.multivector_dim, config.dense_dim)
    return edge_run(root / f"edge-{config.codec}", storage_of(config.codec), dims, points, _edge_queries(args))


def _documents(args: argparse.Namespace) -> Iterator[tuple[str, list[UnitRecord]]]:
    corpus = Corpus(seed=args.seed, dim=args.dim, vectors=args.tokens)
    texts = TextCorpus(args.seed, words=args.words)
    centroids = corpus.centroids()
    rng = np.random.default_rng((args.seed, 0xD3))
    for d in range(0, args.pages, args.pages_per_doc):
        units = []
        for i in range(d, min(d + args.pages_per_doc, args.pages)):
            dense = rng.standard_normal(args.dense_dim).astype(np.float32)  # (dense_dim,)
            page = corpus.page(i, centroids)
            text = texts.page(i) if args.words else None
            units.append(UnitRecord(i - d + 1, dense / np.linalg.norm(dense), page.tokens, text=text))
        yield f"doc{d}", units


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _embedded(args: argparse.Namespace, config: CollectionConfig, root: Path) -> tuple[float, float]:
    directory = root / f"embedded-{config.codec}"
    with LocalStore.create(directory, config, LocalOptions(dense_codec=args.dense_codec)) as store:
        for doc_id, units in _documents(args):
            store.add_document(doc_id, units)
    with sqlite3.connect(next(directory.glob("*.sqlite"))) as conn:
        tables = table_bytes(conn)
    mv = sum(size for name, size in tables.items() if name.startswith("multivectors"))
    return _dir_bytes(directory) / args.pages, mv / args.pages


def _local_mode(args: argparse.Namespace, config: CollectionConfig, root: Path) -> float:
    path = root / f"qdrant-{config.codec}"
    client = QdrantClient(path=str(path))
    try:
        store = QdrantStore.create(client, "pages", config)
        for doc_id, units in _documents(args):
            store.add_document(doc_id, units)
    finally:
        client.close()
    pages: int = args.pages
    return _dir_bytes(path) / pages


def _server(args: argparse.Namespace, config: CollectionConfig) -> tuple[float, float]:
    """(bytes per page on a Qdrant server's disk, of which in RAM) computed as the module docstring says."""
    storage = storage_of(config.codec)
    disk = ram = 0
    for doc_id, units in _documents(args):
        record = {"doc_id": doc_id, "version": "0" * 32, "num_units": len(units), "metadata": {}, "file": None}
        disk += len(json.dumps(record | {"created_at": 0.0, "content_hash": None, "warnings": []}))
        for unit in units:
            point = unit_point(config, doc_id, "0" * 32, {}, unit)
            vectors = point.vector
            assert isinstance(vectors, dict)
            mv = vectors["mv"]
            assert isinstance(mv, list)
            tokens = len(mv)
            quantized = tokens * storage.quantized_bytes(config.multivector_dim)
            disk += tokens * storage.original_bytes(config.multivector_dim) + quantized
            ram += quantized
            disk += 4 * config.dense_dim + 2 * HNSW_M * 4
            sparse = vectors.get(SPARSE_NAME)
            disk += 8 * len(sparse.indices) if sparse is not None else 0  # type: ignore[union-attr]
            disk += len(json.dumps(point.payload))
    return disk / args.pages, ram / args.pages


@dataclass(frozen=True)
class LayoutRow:
    codec: str
    layout: str  # "SKETCH:DENSE[:PAGE_SIZE]"
    pages: int
    files: float  # bytes per page: the collection's files after a WAL checkpoint
    tables: dict[str, float]  # bytes per page by table / index (dbstat), the small ones summed as "other"


_MAIN_TABLES = ("multivectors", "sketches", "pages", "unit_fts* (full-text index)", "unit_text")


def _build(
    args: argparse.Namespace, config: CollectionConfig, directory: Path, sketch: str, dense: str, page_size: int
) -> None:
    """The synthetic pages in a new embedded collection whose sketches are stored as ``sketch`` (float16: exactly
    as indexes were written before the ``sketch_codec`` meta key, create_schema's default patched for the build),
    in a file of SQLite pages of ``page_size`` bytes (set before the file becomes WAL: a WAL file keeps its size)."""
    real_connect = _schema.connect

    def connect(path: Path, **kwargs: Any) -> sqlite3.Connection:
        if not path.exists():  # the file being created
            conn = sqlite3.connect(path)
            conn.execute(f"PRAGMA page_size={int(page_size)}")
            conn.execute("PRAGMA journal_mode=WAL")  # writes the header: the page size is fixed from here on
            conn.close()
        return real_connect(path, **kwargs)

    with (
        mock.patch.dict(_schema.create_schema.__kwdefaults__, {"sketch_codec": sketch}),
        mock.patch.object(_schema, "connect", connect),
    ):
        store = LocalStore.create(directory, config, LocalOptions(dense_codec=dense))
    with store:
        batch: list[NewDocument] = []  # generated a batch at a time (20k pages of float32 tokens would be 8 GB)
        for doc_id, units in _documents(args):
            batch.append(NewDocument(doc_id, units))
            if len(batch) == args.batch_docs:
                add_documents(store, batch)
                batch = []
        add_documents(store, batch)
        store.stats()  # checkpoints the WAL into the file


def measure_layout(args: argparse.Namespace, codec: str, layout: str, root: Path) -> LayoutRow:
    sketch, dense, size = (*layout.split(":"), "4096")[:3]
    config = CollectionConfig(dense_dim=args.dense_dim, multivector_dim=args.dim, codec=Codec(codec))
    directory = root / f"layout-{codec}-{sketch}-{dense}-{size}"
    _build(args, config, directory, sketch, dense, int(size))
    with sqlite3.connect(directory / _schema.DB_FILE) as conn:
        assert int(conn.execute("PRAGMA page_size").fetchone()[0]) == int(size), "the page size did not take"
    with sqlite3.connect(directory / _schema.DB_FILE) as conn:
        tables = table_bytes(conn)
    files = _dir_bytes(directory)
    shutil.rmtree(directory)  # int8 at 20k pages is 2 GB: one layout on disk at a time
    per = {name: tables.get(name, 0) / args.pages for name in _MAIN_TABLES}
    per["other"] = sum(v for name, v in tables.items() if name not in _MAIN_TABLES) / args.pages
    return LayoutRow(codec, layout, args.pages, files / args.pages, per)


def layout_table(rows: list[LayoutRow]) -> str:
    names = [*_MAIN_TABLES, "other"]
    shown = [n for n in names if any(r.tables[n] for r in rows)]
    lines = [
        "| codec | sketch:dense | files B/page | " + " | ".join(shown) + " |",
        "|---|---|---:|" + "---:|" * len(shown),
    ]
    for r in rows:
        cells = [f"{r.tables[n]:,.0f}" for n in shown]
        lines.append(f"| {r.codec} | {r.layout} | {r.files:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, codec: str, root: Path) -> Row:
    config = CollectionConfig(dense_dim=args.dense_dim, multivector_dim=args.dim, codec=Codec(codec))
    embedded, embedded_mv = _embedded(args, config, root)
    if needs_codebook(codec):
        return Row(codec, args.pages, embedded, embedded_mv, None, None, None)
    server_disk, server_ram = _server(args, config)
    edge = _edge(args, config, root) if args.edge and edge_available() else None
    return Row(codec, args.pages, embedded, embedded_mv, _local_mode(args, config, root), server_disk, server_ram, edge)


def _kb(value: float | None) -> str:
    return "refused" if value is None else f"{value / 1024:.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| codec | embedded, measured: all | of which multi-vectors | Qdrant server, computed: disk | "
        "of which in RAM (quantized copy) | Qdrant local mode, measured |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = (_kb(r.embedded), _kb(r.embedded_mv), _kb(r.server_disk), _kb(r.server_ram), _kb(r.local_mode))
        lines.append(f"| {r.codec} | " + " | ".join(cells) + " |")
    edged = [r for r in rows if r.edge is not None]
    if edged:
        lines += [
            "",
            "Qdrant's engine in-process (qdrant-edge-py), measured: segments on disk after optimize(), the quantized "
            "copy among them, and the visual rerank (100 dense candidates, k = 10) with the parameters sent to a "
            "server vs told to ignore the copy:",
            "",
            "| codec | disk | of which quantized copy | top-10 agreement | max score difference |",
            "|---|---|---|---|---|",
        ]
        for r in edged:
            e = r.edge
            assert e is not None
            pages = r.pages
            lines.append(
                f"| {r.codec} | {_kb(e.disk / pages)} | {_kb(e.quantized / pages)} | {e.agreement:.3f} | "
                f"{e.max_score_diff:.2g} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--pages-per-doc", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=768, help="multi-vector rows per page (±10 %%)")
    parser.add_argument("--dim", type=int, default=128, help="multi-vector width")
    parser.add_argument("--dense-dim", type=int, default=2048)
    parser.add_argument("--words", type=int, default=300, help="words of text per page (±20 %%)")
    parser.add_argument("--dense-codec", default="int8", help="embedded dense vector codec (the service's default)")
    parser.add_argument("--codecs", nargs="+", default=[c.value for c in Codec], choices=[c.value for c in Codec])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-edge", dest="edge", action="store_false", help="skip Qdrant Edge (run when qdrant-edge-py is installed)"
    )
    parser.add_argument("--layouts", nargs="*", default=[], help="embedded SKETCH:DENSE[:PAGE_SIZE] to compare")
    parser.add_argument("--embedded-only", action="store_true", help="skip Qdrant (the layouts table only)")
    parser.add_argument("--batch-docs", type=int, default=1, help="documents per add_documents transaction")
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the temporary folder")
    args = parser.parse_args(argv)
    if args.embedded_only and not args.layouts:
        parser.error("--embedded-only prints only the --layouts table: give --layouts SKETCH:DENSE (e.g. int8:int8)")
    for layout in args.layouts:
        sketch, dense, size = (*layout.split(":"), "4096", "")[:3]
        sizes = {str(1 << b) for b in range(9, 17)}
        if sketch not in ("float16", "int8") or dense not in ("float32", "int8", "binary") or size not in sizes:
            parser.error(
                f"--layouts: {layout!r} is not SKETCH:DENSE[:PAGE_SIZE] (float16|int8 : float32|int8|binary : "
                "a power of two from 512 to 65536, default 4096)"
            )
    head = (
        f"{args.pages} synthetic pages of ~{args.tokens} tokens × {args.dim} (dense {args.dense_dim}, "
        f"~{args.words} words each, no images)"
    )
    with tempfile.TemporaryDirectory(prefix="qdrant-bytes-", dir=args.work_dir) as tmp:
        if not args.embedded_only:
            rows = [measure(args, codec, Path(tmp)) for codec in args.codecs]
            print(f"{head}; KB per page (1 KB = 1024 B)")
            print(table(rows))
        if args.layouts:
            laid = []
            for codec in args.codecs:
                for layout in args.layouts:
                    laid.append(measure_layout(args, codec, layout, Path(tmp)))
                    print(f"# {codec} {layout}: {laid[-1].files:,.0f} B/page", flush=True)
            print(f"{head}; embedded layouts, bytes per page by table (dbstat)")
            print(layout_table(laid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
