"""Regions on real PDFs (issue 28): for a query made of a phrase from a known line of a page, how often is that
line's box inside one of the regions the search returns for that page?

Method. The PDFs (``samples/report.pdf`` and the documentation PDFs named with ``--pdf``; the first ``--pages``
pages of each) are indexed through the service in-process (the HTTP app on a Litestar test client: the same
render, resize, text layer and stored words as a server). The known lines are MuPDF's own lines (its ``(block,
line)`` numbers, not the region code's grouping); per PDF ``--lines`` of them are drawn at random (seeded) among
the lines with at least 3 words, and the query is a run of up to 5 consecutive words of the line holding a letter
(dot leaders alone name nothing). Each query is searched with ``regions: true`` in ``text`` and ``hybrid`` mode
(top 10). Reported per PDF and mode: the share of queries whose page is among the hits (search's job, for
context), and among those the share where the line's box (MuPDF's word boxes, as fractions of the page) lies
inside a region of that hit, within ``--slack`` of the page on each side (the stored boxes are rounded to 0.1 px
of the resized page image), and inside the first one.

With ``--tiny`` (the random-weight test checkpoint, CPU) only the text half means anything: BM25 and the text
layer are real, while the visual regions that hybrid adds after the text ones come from random vectors.

    .venv/bin/python -m bench.regions --tiny --pdf /usr/share/doc/libtasn1-doc/libtasn1.pdf
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Probe:
    page: int  # 1-based
    phrase: str
    box: Box  # the line's box, fractions of the page


def probes(pdf: bytes, pages: int, count: int, seed: int) -> list[Probe]:
    """Up to ``count`` lines of the first ``pages`` pages (MuPDF's lines of 3+ words), each with a phrase of up
    to 5 consecutive words of it."""
    import pymupdf

    found = []
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        for number in range(min(pages, doc.page_count)):
            page = doc[number]
            if page.rotation:
                continue
            lines: dict[tuple[int, int], list[Any]] = {}
            for x0, y0, x1, y1, word, block, line, _ in page.get_text("words", sort=True):
                lines.setdefault((block, line), []).append((x0, y0, x1, y1, word))
            w, h = page.rect.width, page.rect.height
            for words in lines.values():
                if len(words) < 3 or not any(ch.isalpha() for _, _, _, _, t in words for ch in t):
                    continue
                box = (min(x[0] for x in words) / w, min(x[1] for x in words) / h,
                       max(x[2] for x in words) / w, max(x[3] for x in words) / h)  # fmt: skip
                found.append((number + 1, [x[4] for x in words], box))
    rng = random.Random(seed)
    chosen = rng.sample(found, min(count, len(found)))
    out = []
    for page, words, box in chosen:
        # a window holding a word with a letter (a table of contents' dot leaders alone name nothing)
        starts = [i for i in range(max(1, len(words) - 4)) if any(c.isalpha() for w in words[i : i + 5] for c in w)]
        start = rng.choice(starts)
        out.append(Probe(page, " ".join(words[start : start + 5]), box))
    return out


def inside(line: Box, region: list[float], slack: float) -> bool:
    return (
        line[0] >= region[0] - slack
        and line[1] >= region[1] - slack
        and line[2] <= region[2] + slack
        and line[3] <= region[3] + slack
    )


@contextmanager
def service(model: str | None, work: Path) -> Iterator[Any]:
    from litestar.testing import TestClient

    from model.encoder import Encoder
    from service.http.app import create_app
    from service.settings import Settings

    if model is None:
        from model.testing import build_tiny_checkpoint

        model = str(build_tiny_checkpoint(work / "tiny"))
    encoder = Encoder.from_pretrained(model)
    settings = Settings(data_dir=work / "data", ui=False)
    with TestClient(create_app(settings, encoder=encoder), timeout=600) as client:
        while client.get("/ready").status_code != 200:
            time.sleep(0.1)
        yield client


def first_pages(data: bytes, pages: int) -> bytes:
    import pymupdf

    with pymupdf.open(stream=data, filetype="pdf") as doc:
        doc.select(list(range(min(pages, doc.page_count))))
        out: bytes = doc.tobytes()
    return out


def measure(client: Any, name: str, pdf: Path, args: argparse.Namespace) -> None:
    data = first_pages(pdf.read_bytes(), args.pages)
    files = {"file": (pdf.name, data, "application/pdf")}
    up = client.post(f"/v1/collections/{name}/documents", files=files, data={"document_id": pdf.stem})
    if up.status_code != 201:
        raise SystemExit(f"{pdf}: indexing failed: {up.text}")
    checks = probes(data, args.pages, args.lines, args.seed)
    for mode in ("text", "hybrid"):
        found = within = first = 0
        for probe in checks:
            body = {"query": probe.phrase, "mode": mode, "regions": True, "top_k": 10}
            hits = client.post(f"/v1/collections/{name}/search", json=body).json()["results"]
            hit = next((h for h in hits if h["document_id"] == pdf.stem and h.get("page") == probe.page), None)
            if hit is None:
                continue
            found += 1
            boxes = [r["bbox"] for r in hit["regions"]]
            within += any(inside(probe.box, b, args.slack) for b in boxes)
            first += bool(boxes) and inside(probe.box, boxes[0], args.slack)
        n = len(checks)
        share = within / found if found else 0.0
        print(
            f"{pdf.name:<32} {mode:>6}: {n} queries, page in the top 10 {found}/{n}; line inside a region "
            f"{within}/{found} = {100 * share:.1f} %, inside the first region {first}/{found}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pdf", type=Path, action="append", default=[], help="more PDFs with a text layer")
    p.add_argument("--tiny", action="store_true", help="the random-weight test checkpoint (text half only)")
    p.add_argument("--model", default="jinaai/jina-embeddings-v4")
    p.add_argument("--pages", type=int, default=20, help="first pages of each PDF to index")
    p.add_argument("--lines", type=int, default=60, help="lines (queries) drawn per PDF")
    p.add_argument("--slack", type=float, default=0.005, help="tolerance, a fraction of the page per side")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    with (
        tempfile.TemporaryDirectory(prefix="jev4-regions-") as work,
        service(None if args.tiny else args.model, Path(work)) as client,
    ):
        created = client.post("/v1/collections", json={"name": "regions", "codec": "float32"})
        if created.status_code != 201:
            raise SystemExit(created.text)
        for pdf in [ROOT / "samples" / "report.pdf", *args.pdf]:
            measure(client, "regions", pdf, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
