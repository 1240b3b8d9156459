"""A small labelled page-retrieval set made from real documents with text layers (for :mod:`bench.eval`).

Documents: the reference documentation of installed Python standard-library modules (each module's
docstring and its public functions' and classes' docstrings, as ``pydoc`` shows them), typeset into one PDF per
module by MuPDF's HTML story (A5 pages, real fonts, a real text layer). Queries: for a random sample of pages,
a window of 4–8 consecutive words of one sentence of that page, kept only when the window occurs on no other
page (so the page that holds it is the one relevant answer, judgement 1), or a module's name heading for its
first page. The set is rebuilt deterministically from ``--seed`` (its text follows the installed Python).

Written in the BEIR layout :mod:`bench.eval` reads::

    OUT/corpus.jsonl      {"_id": "json-p2", "pdf": "docs/json.pdf", "page": 2, "title": "json"}
    OUT/queries.jsonl     {"_id": "q7", "text": "..."}
    OUT/qrels/test.tsv    query-id  corpus-id  score   (tab-separated, with a header)
    OUT/docs/*.pdf

``python -m bench.eval_data OUT [--modules 12] [--queries 40] [--seed 0]``
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import io
import json
import random
import re
from pathlib import Path

import pymupdf

__all__ = ["MODULES", "build", "main"]

MODULES = (
    "json", "csv", "argparse", "logging", "difflib", "heapq", "bisect", "textwrap", "shlex", "statistics",
    "fractions", "decimal", "zipfile", "tarfile", "pickle", "subprocess", "doctest", "string", "functools",
    "urllib.parse", "gzip", "calendar", "sched", "queue",
)  # fmt: skip
_SENTENCE = re.compile(r"[^.!?\n]{30,}[.!?]")


def _module_html(name: str) -> str:
    module = importlib.import_module(name)
    parts = [f"<h1>{html.escape(name)}</h1>", f"<p>{html.escape(inspect.getdoc(module) or '')}</p>"]
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        doc = inspect.getdoc(obj)
        if doc and (inspect.isfunction(obj) or inspect.isclass(obj)):
            parts.append(f"<h3>{html.escape(attr)}</h3><p>{html.escape(doc)}</p>")
    return "\n".join(parts).replace("\n\n", "</p><p>")


def _pdf(markup: str) -> bytes:
    story = pymupdf.Story(html=markup, user_css="body {font-family: sans-serif; font-size: 10pt;}")
    out = io.BytesIO()
    writer = pymupdf.DocumentWriter(out)
    mediabox = pymupdf.paper_rect("a5")
    where = pymupdf.Rect(mediabox.x0 + 36, mediabox.y0 + 36, mediabox.x1 - 36, mediabox.y1 - 36)
    more = True
    while more:
        device = writer.begin_page(mediabox)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
    writer.close()
    return out.getvalue()


def _windows(text: str, rng: random.Random) -> list[str]:
    found = []
    for sentence in _SENTENCE.findall(" ".join(text.split())):
        words = sentence.split()
        if len(words) >= 6:
            n = rng.randint(4, min(8, len(words)))
            start = rng.randint(0, len(words) - n)
            found.append(" ".join(words[start : start + n]))
    return found


def build(out: Path, *, modules: int = 12, queries: int = 40, seed: int = 0) -> dict[str, int]:
    """Write the set into ``out``; returns its sizes."""
    rng = random.Random(seed)
    (out / "docs").mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    pages: dict[str, str] = {}  # corpus id -> page text
    corpus = []
    for name in MODULES[:modules]:
        data = _pdf(_module_html(name))
        (out / "docs" / f"{name}.pdf").write_bytes(data)
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            for i, page in enumerate(doc):
                cid = f"{name}-p{i + 1}"
                pages[cid] = " ".join(page.get_text().split())
                corpus.append({"_id": cid, "pdf": f"docs/{name}.pdf", "page": i + 1, "title": name})
    flat = {cid: text.casefold() for cid, text in pages.items()}
    qrels: list[tuple[str, str]] = []
    qtexts: list[dict[str, str]] = []
    for cid in rng.sample(sorted(pages), len(pages)):
        if len(qrels) >= queries:
            break
        for window in _windows(pages[cid], rng):
            holders = [c for c, t in flat.items() if window.casefold() in t]
            if holders == [cid]:
                qtexts.append({"_id": f"q{len(qtexts)}", "text": window})
                qrels.append((f"q{len(qrels)}", cid))
                break
    (out / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qtexts))
    (out / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t1\n" for q, c in qrels)
    )
    return {"documents": modules, "pages": len(corpus), "queries": len(qrels)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--modules", type=int, default=12)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(build(args.out, modules=args.modules, queries=args.queries, seed=args.seed)))


if __name__ == "__main__":
    main()
