"""The benchmark's inputs, generated deterministically so that every contestant sees the same texts and pages.

- ``queries``: 64 short queries (10–30 tokens with the prefix), task retrieval, prompt query.
- ``passages``: 16 passages of ≈300–2000 tokens (mixed lengths, shuffled), task retrieval, prompt passage.
- ``pages``: 8 synthetic page images (A4 / letter / landscape at 150 dpi: text lines, headings, figures),
  larger than the default ``max_pixels``, so each is resized to ≈768 visual tokens.
- ``mixed``: the 64 queries with tasks cycling retrieval.query / text-matching / code.query, against
  ``single``: the same 64 queries, all retrieval.query.

``write_workloads`` stores them in a directory (``texts.json`` + ``pages/*.png``) read back by each
contestant's process with ``load_workloads``; token counts are measured there by each contestant's processor.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TextRow", "Workloads", "load_workloads", "make_workloads", "write_workloads"]

_VOCABULARY = (
    "the of and to in is that for it as with was on be by this are from or at an which have not has but "
    "their more can all were been one its also into other than only these two such when some first new "
    "model data time used between system each results method number both based may high different well "
    "however these using order level through information energy value large analysis during process "
    "structure function form research development study water within several surface state power total "
    "experiment measured temperature network layer image retrieval document page vector search index query "
    "embedding token language vision encoder matrix attention memory throughput latency batch kernel cache "
    "report table figure section appendix revenue quarter customer product market growth policy protocol"
)
_WORDS = tuple(_VOCABULARY.split())

TASK_CYCLE = (("retrieval", "query"), ("text-matching", "query"), ("code", "query"))


@dataclass(frozen=True)
class TextRow:
    """One text input and its task (``retrieval`` | ``text-matching`` | ``code``) and prompt type."""

    text: str
    task: str
    prompt: str


@dataclass(frozen=True)
class Workloads:
    """Every workload; pages are PNG paths once written (``load_workloads``)."""

    queries: list[TextRow]
    passages: list[TextRow]
    mixed: list[TextRow]
    single: list[TextRow]
    pages: list[Path]


def _sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    words[0] = words[0].capitalize()
    return " ".join(words)


def _passage(rng: random.Random, n_words: int) -> str:
    parts, left = [], n_words
    while left > 0:
        n = min(left, rng.randint(8, 24))
        parts.append(_sentence(rng, n) + ".")
        left -= n
    return " ".join(parts)


def make_workloads(seed: int = 0) -> tuple[list[TextRow], list[TextRow], list[TextRow], list[TextRow]]:
    """The text workloads (queries, passages, mixed, single); one word ≈ one token, +1 per sentence's "."."""
    rng = random.Random(seed)
    queries = [TextRow(_sentence(rng, rng.randint(7, 25)) + "?", "retrieval", "query") for _ in range(64)]
    targets = [300 + round(i * (2000 - 300) / 15) for i in range(16)]  # 300 … 2000 tokens
    rng.shuffle(targets)
    passages = [TextRow(_passage(rng, round(t * 0.93)), "retrieval", "passage") for t in targets]
    mixed = [TextRow(q.text, *TASK_CYCLE[i % len(TASK_CYCLE)]) for i, q in enumerate(queries)]
    single = [TextRow(q.text, "retrieval", "query") for q in queries]
    return queries, passages, mixed, single


_PAGE_SIZES = [
    (1240, 1754),
    (1275, 1650),
    (1240, 1754),
    (1754, 1240),
]  # A4, letter, A4, A4 landscape @150 dpi


def _draw_page(rng: random.Random, size: tuple[int, int]) -> object:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=22)
    title = ImageFont.load_default(size=40)
    w, h = size
    y = 80
    draw.text((90, y), _sentence(rng, 6), fill="black", font=title)
    y += 90
    while y < h - 120:
        if rng.random() < 0.12:  # a figure or a table block
            fh = rng.randint(150, 350)
            color = tuple(rng.randint(40, 220) for _ in range(3))
            draw.rectangle((90, y, w - 90, min(y + fh, h - 100)), fill=color, outline="black", width=3)
            y += fh + 30
            continue
        draw.text((90, y), _sentence(rng, rng.randint(9, 12)), fill=(20, 20, 20), font=font)
        y += 34
    return image


def write_workloads(directory: Path, seed: int = 0, n_pages: int = 8) -> Path:
    """Write ``texts.json`` and ``pages/page-N.png`` under ``directory`` (idempotent for one seed)."""
    queries, passages, mixed, single = make_workloads(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rows = {name: [r.__dict__ for r in v] for name, v in [("queries", queries), ("passages", passages)]}
    rows |= {"mixed": [r.__dict__ for r in mixed], "single": [r.__dict__ for r in single]}
    (directory / "texts.json").write_text(json.dumps(rows))
    pages = directory / "pages"
    pages.mkdir(exist_ok=True)
    rng = random.Random(seed + 1)
    for i in range(n_pages):
        path = pages / f"page-{i}.png"
        image = _draw_page(rng, _PAGE_SIZES[i % len(_PAGE_SIZES)])
        if not path.exists():
            image.save(path)  # type: ignore[attr-defined]
    return directory


def load_workloads(directory: Path) -> Workloads:
    """Read back what ``write_workloads`` wrote."""
    rows = json.loads((directory / "texts.json").read_text())

    def _rows(name: str) -> list[TextRow]:
        return [TextRow(**r) for r in rows[name]]

    pages = sorted((directory / "pages").glob("page-*.png"), key=lambda p: int(p.stem.split("-")[1]))
    return Workloads(_rows("queries"), _rows("passages"), _rows("mixed"), _rows("single"), pages)
