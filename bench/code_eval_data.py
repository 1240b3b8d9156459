"""A labelled code-search set from a Python package no one here wrote: docstring -> function, identifier -> function.

    .venv/bin/python -m bench.code_eval_data /tmp/code-set --source .venv/lib/python3.11/site-packages/pathspec
    .venv/bin/python -m bench.eval /tmp/code-set --tiny

Writes the BEIR layout ``bench/eval.py`` reads (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``):

* corpus: every chunk of every ``.py`` file under ``--source`` as the server cuts it
  (:func:`service.collections.chunking.split_text`, default limits), ``_id`` = ``path#chunk``, ``title`` =
  ``path`` and the chunk's name, ``text`` = the chunk's text;
* queries: for each function or method with a docstring (read with :mod:`ast`, matched to its chunk by the
  qualified name ``Class.method``), its docstring's first sentence (``doc:`` queries) and its bare name
  (``name:`` queries); up to ``--max-queries`` of each kind, picked in a seeded order;
* qrels: the function's chunk(s) (a long function cut into parts: every part).

Left out, since they name no single function: a docstring sentence shorter than 4 words (``"Return the
value."``), and a sentence or a bare name that more than one function of the package has (``__init__``,
``match_file`` of five backends, ``"Check the file against the patterns."`` copied into each): which of them is
"the right function" is not in the query. The counts are printed.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["build", "main"]


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """(qualified name, docstring) of every function and method (nested classes included)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", ast.get_docstring(node)


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.strip().split("\n\n", 1)[0].split())
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]


def build(source: Path, tokenizer: Any, *, max_queries: int = 40, seed: int = 0) -> dict[str, Any]:
    """Corpus rows, queries and qrels (see the module doc)."""
    from service.collections.chunking import ChunkLimits, split_text
    from service.collections.walk import walk_repository

    corpus: list[dict[str, str]] = []
    docs: list[tuple[str, list[str]]] = []
    names: list[tuple[str, list[str]]] = []
    seen: Counter[str] = Counter()  # docstring sentences and bare names over every function of the package
    for file in walk_repository(source, max_bytes=4 << 20):
        if not file.path.endswith(".py"):
            continue
        text = file.absolute.read_text(encoding="utf-8", errors="replace")
        chunks = split_text(text, file.path, tokenizer.encode(text).offsets, ChunkLimits()).chunks
        by_name: dict[str, list[str]] = {}
        for k, chunk in enumerate(chunks):
            row_id = f"{file.path}#{k}"
            corpus.append(
                {"_id": row_id, "title": f"{file.path} {chunk.name or ''}".strip(), "text": chunk.text_of(text)}
            )
            if chunk.name is not None and chunk.kind in ("function", "method"):
                by_name.setdefault(chunk.name, []).append(row_id)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for name, doc in _functions(tree):
            if doc is not None:
                sentence = _first_sentence(doc)
                seen[sentence] += 1
                if name in by_name and len(sentence.split()) >= 4:
                    docs.append((sentence, by_name[name]))
            bare = name.rsplit(".", 1)[-1]
            seen[bare] += 1
            if name in by_name:
                names.append((bare, by_name[name]))
    ambiguous = sum(1 for text, _ in docs + names if seen[text] > 1)
    docs = [(text, rows) for text, rows in docs if seen[text] == 1]
    names = [(text, rows) for text, rows in names if seen[text] == 1]
    rng = random.Random(seed)
    rng.shuffle(docs)
    rng.shuffle(names)
    queries: dict[str, str] = {}
    qrels: dict[str, list[str]] = {}
    for kind, rows in (("doc", docs), ("name", names)):
        for i, (text, relevant) in enumerate(rows[:max_queries]):
            queries[f"{kind}:{i}"] = text
            qrels[f"{kind}:{i}"] = relevant
    return {"corpus": corpus, "queries": queries, "qrels": qrels, "ambiguous": ambiguous}


def write(data: dict[str, Any], out: Path) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for row in data["corpus"]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in data["queries"].items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, relevant in data["qrels"].items():
            for row_id in relevant:
                f.write(f"{qid}\t{row_id}\t1\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--source", type=Path, required=True, help="a Python package folder (e.g. in site-packages)")
    p.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer.json (default: the tiny checkpoint's)")
    p.add_argument("--max-queries", type=int, default=40)
    args = p.parse_args(argv)
    import tempfile

    import tokenizers

    path = args.tokenizer
    if path is None:
        from model.testing_tokenizer import write_qwen2_tokenizer

        folder = Path(tempfile.mkdtemp())
        write_qwen2_tokenizer(folder)
        path = folder / "tokenizer.json"
    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    data = build(args.source, tokenizer, max_queries=args.max_queries)
    write(data, args.out)
    print(
        f"{args.out}: {len(data['corpus'])} chunks, {len(data['queries'])} queries "
        f"({data['ambiguous']} ambiguous candidates left out)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
