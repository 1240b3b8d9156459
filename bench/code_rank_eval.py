"""Code search by exact identifier, before/after the definition rules (:mod:`colbert.definitions`): success@3.

    .venv/bin/python -m bench.code_rank_eval --source .venv/lib/python3.11/site-packages/click --tiny

Every ``.py`` file under ``--source`` is cut into chunks as the server cuts them
(:func:`service.collections.chunking.split_text`), each stored with its unit metadata (``name``, ``chunk_kind``,
``part``) in an embedded collection, embedded with the encoder (``--tiny``: the random-weight test checkpoint,
whose vectors mean nothing, so ``hybrid`` there is BM25 plus noise). Queries: every module-level function name
defined once in the package (``get_app_dir``); relevant: the chunks of that definition. For each mode the store's
top ``4 × 3`` hits (what the service reads for a code search) give two answers on the same hits: *before* — the
store's top 3; *after* — :func:`colbert.definitions.rank_definitions` (definition first, at most
``--max-per-span`` chunks of one definition). Prints success@3 (a relevant chunk in the top 3) of each.
"""

from __future__ import annotations

import argparse
import ast
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from colbert.definitions import rank_definitions
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["main"]


def _chunks(source: Path, tokenizer: Any) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, str]]:
    """(doc id, chunk text, unit metadata) of every chunk, and name -> doc id of the package's module-level
    functions defined once."""
    from service.collections.chunking import ChunkLimits, split_text
    from service.collections.walk import walk_repository

    rows: list[tuple[str, str, dict[str, Any]]] = []
    defined: Counter[str] = Counter()
    where: dict[str, str] = {}
    for file in walk_repository(source, max_bytes=4 << 20):
        if not file.path.endswith(".py"):
            continue
        text = file.absolute.read_text(encoding="utf-8", errors="replace")
        for chunk in split_text(text, file.path, tokenizer.encode(text).offsets, ChunkLimits()).chunks:
            meta = {"name": chunk.name, "chunk_kind": chunk.kind, "part": chunk.part}
            rows.append((file.path, chunk.text_of(text), meta))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("__"):
                defined[node.name] += 1
                where[node.name] = file.path
    return rows, {name: where[name] for name, n in defined.items() if n == 1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, required=True, help="a Python package folder")
    p.add_argument("--tiny", action="store_true", help="the random-weight test checkpoint")
    p.add_argument("--model", default="jinaai/jina-embeddings-v4")
    p.add_argument("--modes", default="text,hybrid")
    p.add_argument("--max-per-span", type=int, default=2)
    args = p.parse_args(argv)

    from model import Encoder
    from model.types import PromptType, Task, TaskSpec

    if args.tiny:
        from model.testing import build_tiny_checkpoint

        encoder = Encoder.from_pretrained(str(build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="jev4-tiny-")))))
    else:
        encoder = Encoder.from_pretrained(args.model)
    proc = encoder.processor
    rows, functions = _chunks(args.source, proc.tokenizer)
    passage, query_spec = TaskSpec(Task("code"), PromptType.PASSAGE), TaskSpec(Task("code"), PromptType.QUERY)
    names = sorted(functions)
    queries = encoder.embed(proc.prepare_texts(names, query_spec, max_length=512), return_multivector=True)
    config = CollectionConfig(dense_dim=queries[0].dense.shape[0], multivector_dim=queries[0].multivector.shape[1])
    with tempfile.TemporaryDirectory() as work:
        store = LocalStore.create(Path(work) / "code", config)
        for start in range(0, len(rows), 16):
            batch = rows[start : start + 16]
            outs = encoder.embed(
                [proc.prepare_text(t, passage, max_length=2048) for _, t, _ in batch], return_multivector=True
            )
            for i, ((doc, text, meta), out) in enumerate(zip(batch, outs, strict=True)):
                unit = UnitRecord(0, out.dense, out.multivector, kind="chunk", text=text, metadata=meta)
                store.add_document(f"{doc}#{start + i}", [unit])
        print(f"{args.source}: {len(rows)} chunks, {len(names)} identifier queries (module-level functions)")
        for mode in args.modes.split(","):
            before = after = 0
            for name, q in zip(names, queries, strict=True):
                options = SearchOptions(k=12, mode=mode, include_unit_metadata=True)
                hits = store.search(Query(q.multivector, q.dense, name), options)

                def relevant(hit: Any, name: str = name) -> bool:
                    meta = hit.unit_metadata or {}
                    return bool(hit.doc_id.split("#")[0] == functions[name] and meta.get("name") == name)

                before += any(relevant(h) for h in hits[:3])
                after += any(relevant(h) for h in rank_definitions(hits, name, 3, args.max_per_span))
            n = len(names)
            print(f"{mode:>6}: success@3 before {before / n:.3f} ({before}/{n})  after {after / n:.3f} ({after}/{n})")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
