"""Retrieval quality per search mode (``visual``, ``text``, ``hybrid``) on a labelled set in the BEIR layout.

One command for any data set laid out as BEIR / ViDoRe's BEIR exports are::

    DATA/corpus.jsonl     one page per line: {"_id", and one of "image": path, "pdf": path + "page": n (1-based),
                          or "text": str; optional "title"} (paths relative to DATA)
    DATA/queries.jsonl    {"_id", "text"}
    DATA/qrels/SPLIT.tsv  query-id <tab> corpus-id <tab> score (graded; > 0 is relevant; a header line is skipped)

Pages are indexed as the server indexes them (PDF pages rendered at ``--dpi`` with their text layer; images have
no text layer; ``text`` rows are text units) into a temporary embedded collection, queries are embedded as
``retrieval.query`` (``--task code``: rows as ``code.passage``, queries as ``code.query``, what a ``code``
collection does), every mode is searched with the same ``--candidates``, and nDCG@5/@10, recall@10/@100, MRR@10
and success@3 (:mod:`bench._metrics`, checked against a hand computation in the tests) are printed per mode.
Each row is embedded on its own (no late chunking across the rows of one file).

    .venv/bin/python -m bench.eval DATA --model /models/jina-embeddings-v4     # real weights
    .venv/bin/python -m bench.eval DATA --tiny                                # random test checkpoint
    .venv/bin/python -m bench.eval_data /tmp/docs-set && .venv/bin/python -m bench.eval /tmp/docs-set --tiny
    .venv/bin/python -m bench.code_eval_data /tmp/code-set --source PACKAGE_DIR    # docstring/name -> function
    .venv/bin/python -m bench.eval /tmp/code-set --tiny --task code

With ``--tiny`` the vectors are random, so ``visual`` is chance level; the text side is real either way.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._metrics import mean_metrics
from bench._report import format_table
from colbert.hybrid import Fusion, SearchMode
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from model.types import PromptType, Task, TaskSpec

__all__ = ["Dataset", "evaluate", "load_dataset", "main"]

PASSAGE = TaskSpec(Task.RETRIEVAL, PromptType.PASSAGE)
QUERY = TaskSpec(Task.RETRIEVAL, PromptType.QUERY)


@dataclass(frozen=True)
class Dataset:
    root: Path
    corpus: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_dataset(root: Path, split: str = "test") -> Dataset:
    """Read the BEIR layout (module docstring); queries without judgements are dropped."""
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate((root / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {str(q["_id"]): str(q["text"]) for q in _jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    corpus = list(_jsonl(root / "corpus.jsonl"))
    return Dataset(root, corpus, queries, {q: qrels[q] for q in queries})


def _pages(data: Dataset, dpi: float) -> Iterator[tuple[str, Any, str | None]]:
    """(corpus id, PIL image or text, text layer) for every corpus row, PDFs opened once each."""
    from model.images import load_image
    from model.pdf import render_pages

    rendered: dict[str, dict[int, Any]] = {}
    for row in data.corpus:
        cid = str(row["_id"])
        if "pdf" in row:
            path = str(row["pdf"])
            if path not in rendered:
                rendered[path] = {p.page_number: p for p in render_pages(data.root / path, dpi=dpi, text_layer=True)}
            page = rendered[path][int(row["page"])]
            yield cid, page.image, None if page.text_layer is None else page.text_layer.text
        elif "image" in row:
            yield cid, load_image(data.root / str(row["image"])), None
        else:
            yield cid, str(row["text"]), str(row["text"])


def _index(
    encoder: Any, data: Dataset, store: LocalStore, dpi: float, batch: int, passage: TaskSpec = PASSAGE
) -> float:
    started = time.perf_counter()
    pending: list[tuple[str, Any, str | None]] = []

    def flush() -> None:
        proc = encoder.processor
        prepared = [
            proc.prepare_text(x, passage, max_length=8192) if isinstance(x, str) else proc.prepare_image(x, passage)
            for _, x, _ in pending
        ]
        outputs = encoder.embed(prepared, return_multivector=True)
        for (cid, _, text), out in zip(pending, outputs, strict=True):
            store.add_document(cid, [UnitRecord(0, out.dense, out.multivector, text=text)])
        pending.clear()

    for item in _pages(data, dpi):
        pending.append(item)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return time.perf_counter() - started


def evaluate(
    encoder: Any,
    data: Dataset,
    work: Path,
    *,
    modes: Sequence[str] = ("visual", "text", "hybrid"),
    candidates: int = 100,
    fusions: Sequence[Fusion] = (Fusion(),),
    dpi: float = 144,
    batch: int = 8,
    task: str = "retrieval",
) -> dict[str, dict[str, float]]:
    """Index ``data`` into a collection under ``work`` and return the metrics of each mode (``hybrid`` once per
    fusion in ``fusions``, named ``hybrid`` for the first and ``hybrid (method, weight)`` for the others);
    ``task``: the adapter and prompts (``retrieval`` or ``code``)."""
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    query_spec = TaskSpec(Task(task), PromptType.QUERY)
    queries = encoder.embed(
        encoder.processor.prepare_texts(texts, query_spec, max_length=8192), return_multivector=True
    )
    config = CollectionConfig(dense_dim=queries[0].dense.shape[0], multivector_dim=queries[0].multivector.shape[1])
    store = LocalStore.create(work / "eval", config)
    try:
        _index(encoder, data, store, dpi, batch, TaskSpec(Task(task), PromptType.PASSAGE))
        k = min(100, max(1, store.count()[1]))
        out: dict[str, dict[str, float]] = {}
        plans = [(m, None) for m in modes if m != "hybrid"]
        plans += [("hybrid", f) for f in fusions] if "hybrid" in modes else []
        for mode, fusion in plans:
            runs = {}
            for qid, text, q in zip(qids, texts, queries, strict=True):
                hits = store.search(
                    Query(q.multivector, q.dense, text),
                    SearchOptions(k=k, candidates=max(candidates, k), mode=SearchMode(mode), fusion=fusion),
                )
                runs[qid] = [h.doc_id for h in hits]
            name = mode if fusion is None or fusion == fusions[0] else f"hybrid ({fusion.method}, {fusion.text_weight})"
            out[name] = mean_metrics(runs, data.qrels)
        return out
    finally:
        store.close()


def _encoder(args: argparse.Namespace) -> Any:
    from model import Encoder

    if args.tiny:
        from model.testing import build_tiny_checkpoint

        path = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="jev4-tiny-")))
        return Encoder.from_pretrained(str(path))
    return Encoder.from_pretrained(args.model)


def _fusion(spec: str) -> Fusion:
    method, _, weight = spec.partition(":")
    return Fusion(method=method, text_weight=float(weight)) if weight else Fusion(method=method)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="folder in the BEIR layout")
    parser.add_argument("--split", default="test")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id or folder of jina-embeddings-v4")
    source.add_argument("--tiny", action="store_true", help="the random test checkpoint (visual = chance)")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument(
        "--fusion",
        action="append",
        default=None,
        help="hybrid fusion as METHOD or METHOD:TEXT_WEIGHT (rrf, weighted:0.3, ...); repeat to compare several "
        "on one index (default: weighted:0.5, the server's default, as row 'hybrid', and rrf)",
    )
    parser.add_argument("--dpi", type=float, default=144)
    parser.add_argument("--task", choices=["retrieval", "code"], default="retrieval", help="adapter and prompts")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    data = load_dataset(args.data, args.split)
    with tempfile.TemporaryDirectory(prefix="jev4-eval-") as work:
        fusions = [_fusion(f) for f in args.fusion or ["weighted:0.5", "rrf"]]
        result = evaluate(
            _encoder(args),
            data,
            Path(work),
            candidates=args.candidates,
            fusions=fusions,
            dpi=args.dpi,
            task=args.task,
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    metrics = list(next(iter(result.values())))
    rows = [[mode, *(f"{result[mode][m]:.4f}" for m in metrics)] for mode in result]
    print(f"{args.data}: {len(data.corpus)} pages, {len(data.queries)} judged queries")
    print(format_table(["mode", *metrics], rows))


if __name__ == "__main__":
    main()
