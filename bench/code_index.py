"""Text/code indexing throughput on a real corpus: chunking alone, then chunking + late-chunked embedding +
storing, at the real hidden width.

    .venv/bin/python bench/code_index.py --config real-width --source .venv/lib/python3.11/site-packages/litestar \\
        --source . --max-files 40

Prints, per source folder: files and bytes found by the repository walker, then

* chunking alone (decode + one tokenization + tree-sitter/Markdown + late-chunking plan) over EVERY file:
  files/s, chunks/s, chunks, text bytes per chunk, tokens per chunk;
* full indexing (the above + the encoder with late chunking + the embedded store) of the first ``--max-files``
  files (a random-weight checkpoint of ``bench/encoder.py``'s ``real-width`` config: the real hidden sizes, 4 text
  layers; the real model has 36, so its time per token is ≈ 9× this one's): files/s, chunks/s, tokens/s, and
  stored bytes per chunk (the collection's folder size / chunks; float16 multi-vectors, full-size dense vector).

On a machine shared with other work the times are noisy: the script prints the machine's load average at the
start and the end of each measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def _encoder(config: str) -> Any:
    from bench.encoder import build_checkpoint
    from model.encoder import Encoder

    return Encoder.from_pretrained(build_checkpoint(config), dtype="float32" if config == "tiny" else "bfloat16")


def chunk_only(files: list[Any], indexer: Any, spec: Any) -> dict[str, float]:
    from service.collections.texts import TextSource

    start, chunks, tokens, text_bytes, failed = time.perf_counter(), 0, 0, 0, 0
    load = _load()
    for file in files:
        try:
            planned = indexer.prepare(TextSource(file.absolute.read_bytes(), file.path), spec)
        except Exception:  # noqa: BLE001 - a bench counts failures instead of stopping
            failed += 1
            continue
        chunks += len(planned.chunks)
        text_bytes += sum(len(c.text_of(planned.text).encode()) for c in planned.chunks)
        counts = indexer.chunker.processor.tokenizer.encode_batch(planned.pieces, add_special_tokens=False)
        tokens += sum(len(e.ids) for e in counts)
    seconds = time.perf_counter() - start
    print(f"  chunking alone: {len(files)} files in {seconds:.1f} s ({load} -> {_load()}), {failed} refused (empty)")
    return {
        "files/s": len(files) / seconds,
        "chunks/s": chunks / seconds,
        "chunks": chunks,
        "text B/chunk": text_bytes / max(chunks, 1),
        "tokens/chunk": tokens / max(chunks, 1),
    }


async def index_all(files: list[Any], indexer: Any, spec: Any, folder: Path) -> dict[str, float]:
    from colbert.local import LocalStore
    from colbert.store import CollectionConfig
    from service.collections.texts import TextSource
    from service.collections.writing import write_text
    from service.errors import ServiceError

    store = LocalStore.create(folder / "bench", CollectionConfig(dense_dim=indexer.hidden_size))
    start, chunks, tokens, refused = time.perf_counter(), 0, 0, 0
    load = _load()
    for file in files:
        source = TextSource(file.absolute.read_bytes(), file.path)
        doc_id = file.path.replace("/", ":")
        try:
            planned = await indexer.prepared(source, spec)
        except ServiceError:  # an empty __init__.py (the CLI counts it as "empty"), a binary
            refused += 1
            continue
        result = await write_text(indexer, store, doc_id, planned, spec)
        chunks += len(planned.chunks)
        tokens += result.tokens
    seconds = time.perf_counter() - start
    store.close()
    print(f"  indexing: {len(files)} files in {seconds:.1f} s ({load} -> {_load()}), {refused} refused (empty)")
    return {
        "files/s": len(files) / seconds,
        "chunks/s": chunks / seconds,
        "tokens/s": tokens / seconds,
        "stored B/chunk": _dir_bytes(folder / "bench") / max(chunks, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="real-width", choices=["tiny", "real-width"])
    p.add_argument("--source", type=Path, action="append", required=True, help="a folder to index (repeatable)")
    p.add_argument("--max-files", type=int, default=40, help="files embedded per source (chunking runs on all)")
    p.add_argument("--task", default="code", choices=["code", "retrieval"])
    args = p.parse_args(argv)
    print("# " + " ".join([sys.executable, "bench/code_index.py", *(argv or sys.argv[1:])]), flush=True)
    from concurrent.futures import ThreadPoolExecutor

    from model.types import PromptType, Task, TaskSpec
    from service.collections.late import LateChunker
    from service.collections.texts import TextIndexer, TextOptions
    from service.collections.walk import WalkReport, walk_repository

    encoder = _encoder(args.config)
    spec = TaskSpec(Task(args.task), PromptType.PASSAGE)
    options = TextOptions()

    async def embed_late(late: Any) -> Any:
        return await asyncio.to_thread(encoder.embed_late_chunks, late, return_multivector=True)

    chunker = LateChunker(encoder.processor, embed_late, window=options.window, overlap=options.overlap)
    with ThreadPoolExecutor(2) as pool:
        indexer = TextIndexer(
            chunker, pool, options, hidden_size=encoder.info.hidden_size, matryoshka_dims=encoder.info.matryoshka_dims
        )
        for source in args.source:
            report = WalkReport()
            files = list(walk_repository(source, max_bytes=options.max_bytes, report=report))
            size = sum(f.size for f in files)
            print(f"{source}: {len(files)} files, {size / 1e6:.2f} MB; skipped {dict(report.skipped)}")
            alone = chunk_only(files, indexer, spec)
            print("  " + ", ".join(f"{k} {v:.1f}" for k, v in alone.items()))
            with tempfile.TemporaryDirectory() as folder:
                full = asyncio.run(index_all(files[: args.max_files], indexer, spec, Path(folder)))
            print("  " + ", ".join(f"{k} {v:.2f}" for k, v in full.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
