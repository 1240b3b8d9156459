"""Make the example documents and requests of ``samples/`` (deterministic: same bytes on every run).

    .venv/bin/python samples/make_samples.py            # rewrite samples/ in place
    .venv/bin/python samples/make_samples.py --out DIR  # write elsewhere (the tests compare the two)

Documents (made here, for this project; no third-party content):

- ``report.pdf``: a 3-page annual report of a fictional company: a summary page, a table of quarterly
  revenue by region, a bar chart of revenue by quarter (vector drawing with pymupdf);
- ``dashboard.png``: a screenshot-like picture of a support dashboard (KPI cards, a line chart, a table);
- ``code/maxsim.py``: a small code file (late-interaction scoring in numpy), for ``code.*`` embeddings.

Requests (``requests/*.json``) are the bodies sent by ``index.sh``, ``search.sh``, ``embed.sh`` and ``code.sh``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
REGIONS = ["North", "South", "East", "West"]
REVENUE = {  # EUR thousands, Q1..Q4
    "North": [412, 436, 451, 498],
    "South": [298, 305, 322, 341],
    "East": [377, 369, 402, 455],
    "West": [501, 523, 517, 562],
}
_BLUE = (0.16, 0.35, 0.63)
_GREY = (0.35, 0.35, 0.35)

CODE = '''"""Late-interaction (MaxSim) scoring of a query against document pages."""

import numpy as np


def maxsim(query: np.ndarray, page: np.ndarray) -> float:
    """Sum over query tokens of the best cosine with any page token.

    query: (Lq, d) and page: (Ld, d), rows L2-normalised.
    """
    similarities = query @ page.T  # (Lq, Ld)
    return float(similarities.max(axis=1).sum())


def rank_pages(query: np.ndarray, pages: list[np.ndarray], top_k: int = 3) -> list[tuple[int, float]]:
    """The top_k pages by MaxSim, best first, as (page index, score)."""
    scores = [maxsim(query, page) for page in pages]
    order = np.argsort(scores)[::-1][:top_k]
    return [(int(i), scores[i]) for i in order]
'''


# -- report.pdf ------------------------------------------------------------------------------------------


def _text(page: pymupdf.Page, x: float, y: float, text: str, size: float = 11, **kw: object) -> None:
    page.insert_text((x, y), text, fontsize=size, fontname="helv", **kw)


def _summary_page(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=595, height=842)
    page.draw_rect(pymupdf.Rect(0, 0, 595, 90), color=_BLUE, fill=_BLUE)
    _text(page, 50, 55, "Northwind Trading - Annual Report 2024", 22, color=(1, 1, 1))
    _text(page, 50, 130, "Executive summary", 16, color=_BLUE)
    paragraphs = [
        "Revenue grew 9.8% to EUR 6.77 million, driven by the West and East regions.",
        "The West region remained the largest market with EUR 2.10 million in sales.",
        "The East region recovered in the second half after a weak second quarter.",
        "Operating margin improved from 11.2% to 12.9% as logistics costs fell.",
        "Customer support answered 96% of tickets within one working day.",
        "We opened a new warehouse in Rotterdam and hired 42 people.",
    ]
    y = 165.0
    for line in paragraphs:
        _text(page, 60, y, "-  " + line, 11)
        y += 24
    _text(page, 50, y + 30, "Outlook", 16, color=_BLUE)
    _text(page, 60, y + 62, "For 2025 we expect revenue growth of 6-8% and a stable operating margin.", 11)
    _text(page, 50, 800, "Northwind Trading B.V.  |  page 1 of 3", 9, color=_GREY)


def _table_page(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=595, height=842)
    _text(page, 50, 70, "Quarterly revenue by region (EUR thousands)", 16, color=_BLUE)
    columns = ["Region", "Q1", "Q2", "Q3", "Q4", "Total"]
    x0, y0, widths, height = 50.0, 100.0, [130, 70, 70, 70, 70, 85], 28.0
    rows = [columns]
    for region in REGIONS:
        values = REVENUE[region]
        rows.append([region, *map(str, values), str(sum(values))])
    totals = [sum(REVENUE[r][q] for r in REGIONS) for q in range(4)]
    rows.append(["Total", *map(str, totals), str(sum(totals))])
    for r, row in enumerate(rows):
        y = y0 + r * height
        if r == 0 or r == len(rows) - 1:
            fill = (0.85, 0.9, 0.97) if r == 0 else (0.93, 0.93, 0.93)
            page.draw_rect(pymupdf.Rect(x0, y, x0 + sum(widths), y + height), color=None, fill=fill)
        x = x0
        for c, cell in enumerate(row):
            page.draw_rect(pymupdf.Rect(x, y, x + widths[c], y + height), color=_GREY, width=0.6)
            _text(page, x + 8, y + 18, cell, 11)
            x += widths[c]
    note_y = y0 + len(rows) * height + 40
    _text(page, 50, note_y, "The West region led every quarter; the South region grew the least (+14%).", 11)
    _text(page, 50, note_y + 20, "Q4 was the strongest quarter in every region.", 11)
    _text(page, 50, 800, "Northwind Trading B.V.  |  page 2 of 3", 9, color=_GREY)


def _chart_page(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=595, height=842)
    _text(page, 50, 70, "Revenue by quarter, all regions (EUR thousands)", 16, color=_BLUE)
    left, bottom, top = 90.0, 460.0, 120.0
    totals = [sum(REVENUE[r][q] for r in REGIONS) for q in range(4)]
    scale = (bottom - top) / 2000.0
    page.draw_line((left, top), (left, bottom), color=(0, 0, 0), width=1)
    page.draw_line((left, bottom), (left + 440, bottom), color=(0, 0, 0), width=1)
    for tick in range(0, 2001, 500):
        y = bottom - tick * scale
        page.draw_line((left - 4, y), (left + 440, y), color=(0.85, 0.85, 0.85), width=0.5)
        _text(page, left - 40, y + 4, str(tick), 9)
    for q, total in enumerate(totals):
        x = left + 30 + q * 105
        page.draw_rect(pymupdf.Rect(x, bottom - total * scale, x + 60, bottom), color=_BLUE, fill=_BLUE)
        _text(page, x + 12, bottom - total * scale - 8, str(total), 10)
        _text(page, x + 22, bottom + 18, f"Q{q + 1}", 11)
    _text(page, 50, 540, "Revenue rose in every quarter of 2024; Q4 reached EUR 1.86 million.", 11)
    _text(page, 50, 560, "Seasonal demand before the holidays explains most of the Q4 increase.", 11)
    _text(page, 50, 800, "Northwind Trading B.V.  |  page 3 of 3", 9, color=_GREY)


def make_report() -> bytes:
    doc = pymupdf.open()
    _summary_page(doc)
    _table_page(doc)
    _chart_page(doc)
    fixed_date = "D:20250101000000Z"
    doc.set_metadata(
        {
            "title": "Northwind Trading - Annual Report 2024",
            "author": "jev4-serve samples",
            "creationDate": fixed_date,
            "modDate": fixed_date,
            "producer": "pymupdf",
            "creator": "samples/make_samples.py",
        }
    )
    data: bytes = doc.tobytes(garbage=4, deflate=True, no_new_id=True)
    doc.close()
    return data


# -- dashboard.png ---------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def make_dashboard() -> bytes:
    width, height = 960, 600
    image = Image.new("RGB", (width, height), (245, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 36), fill=(52, 58, 64))
    for i, colour in enumerate([(237, 94, 86), (245, 191, 79), (98, 197, 84)]):
        draw.ellipse((12 + i * 20, 12, 24 + i * 20, 24), fill=colour)
    draw.text((90, 9), "Support Dashboard - Tickets", fill=(255, 255, 255), font=_font(16))
    draw.rectangle((0, 36, 180, height), fill=(33, 37, 41))
    for i, item in enumerate(["Overview", "Tickets", "Customers", "Reports", "Settings"]):
        fill = (255, 255, 255) if i == 1 else (173, 181, 189)
        draw.text((24, 64 + i * 40), item, fill=fill, font=_font(16))
    cards = [("Open tickets", "128"), ("Median first response", "2h 14m"), ("Solved this week", "342")]
    for i, (label, value) in enumerate(cards):
        x = 205 + i * 250
        draw.rounded_rectangle((x, 56, x + 230, 146), radius=8, fill=(255, 255, 255), outline=(222, 226, 230))
        draw.text((x + 16, 68), label, fill=(108, 117, 125), font=_font(14))
        draw.text((x + 16, 94), value, fill=(33, 37, 41), font=_font(32))
    draw.rounded_rectangle((205, 166, 935, 376), radius=8, fill=(255, 255, 255), outline=(222, 226, 230))
    draw.text((221, 176), "New tickets per day (last 14 days)", fill=(33, 37, 41), font=_font(14))
    counts = [41, 38, 45, 52, 47, 30, 28, 49, 56, 61, 58, 44, 35, 33]
    points = [(240 + i * 48, 356 - c * 2.6) for i, c in enumerate(counts)]
    draw.line(points, fill=(13, 110, 253), width=3)
    for x, y in points:
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(13, 110, 253))
    draw.rounded_rectangle((205, 396, 935, 580), radius=8, fill=(255, 255, 255), outline=(222, 226, 230))
    rows = [
        ("#4821", "Invoice shows wrong VAT rate", "High", "Open"),
        ("#4819", "Cannot reset password", "Medium", "Pending"),
        ("#4816", "Delivery to Rotterdam delayed", "Low", "Solved"),
        ("#4812", "Export of orders to CSV fails", "High", "Open"),
    ]
    for x, header in zip((221, 301, 645, 735), ("Ticket", "Subject", "Priority", "Status"), strict=True):
        draw.text((x, 406), header, fill=(108, 117, 125), font=_font(14))
    for i, (ticket, subject, priority, status) in enumerate(rows):
        y = 438 + i * 34
        draw.line((221, y - 6, 919, y - 6), fill=(233, 236, 239))
        draw.text((221, y), ticket, fill=(33, 37, 41), font=_font(14))
        draw.text((301, y), subject, fill=(33, 37, 41), font=_font(14))
        draw.text((645, y), priority, fill=(220, 53, 69) if priority == "High" else (33, 37, 41), font=_font(14))
        draw.text((735, y), status, fill=(33, 37, 41), font=_font(14))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -- requests --------------------------------------------------------------------------------------------


def make_requests(dashboard_png: bytes) -> dict[str, object]:
    return {
        "create_collection.json": {"name": "samples", "codec": "float16", "pool_factor": 1},
        "add_dashboard.json": {
            "image": "data:image/png;base64," + base64.b64encode(dashboard_png).decode("ascii"),
            "document_id": "dashboard",
            "metadata": {"kind": "screenshot", "title": "Support dashboard"},
        },
        "search_revenue.json": {
            "query": "Which region had the highest revenue in the fourth quarter?",
            "top_k": 3,
        },
        "search_visual.json": {
            "query": "bar chart of revenue by quarter",
            "mode": "visual",
            "top_k": 2,
        },
        "search_text.json": {
            "query": "operating margin",
            "mode": "text",
            "top_k": 2,
            "include_text": True,
            "highlight": True,
        },
        "search_hybrid.json": {
            "query": "Quarterly revenue by region",
            "mode": "hybrid",
            "top_k": 3,
            "filter": {"kind": {"$in": ["report", "screenshot"]}},
        },
        "search_tickets_with_map.json": {
            "query": "How many support tickets are open?",
            "top_k": 1,
            "filter": {"kind": "screenshot"},
            "include_image": True,
            "include_similarity_map": True,
        },
        "embed_code.json": {"model": "jina-embeddings-v4", "task": "code.passage", "input": [CODE]},
        "embed_code_query.json": {
            "model": "jina-embeddings-v4",
            "task": "code.query",
            "input": ["function that ranks pages by late interaction score"],
        },
        # code.sh: a "code" collection (text and code documents), a Markdown document as JSON, a code search
        "create_code_collection.json": {"name": "code", "task": "code"},
        "add_code_readme.json": {
            "text": "# MaxSim sample\n\nScores a query against document pages by late interaction.\n\n"
            "## Ranking pages\n\n`rank_pages` returns the top pages by MaxSim, best first.\n",
            "path": "code/README.md",
            "document_id": "readme",
            "metadata": {"kind": "docs"},
        },
        "search_code.json": {"query": "best cosine of each query token with any page token", "top_k": 3},
    }


def write_all(out: Path) -> list[Path]:
    """Write every sample under ``out``; returns the paths written."""
    (out / "code").mkdir(parents=True, exist_ok=True)
    (out / "requests").mkdir(parents=True, exist_ok=True)
    dashboard = make_dashboard()
    files: dict[Path, bytes] = {
        out / "report.pdf": make_report(),
        out / "dashboard.png": dashboard,
        out / "code" / "maxsim.py": CODE.encode(),
    }
    for name, body in make_requests(dashboard).items():
        files[out / "requests" / name] = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
    for path, data in files.items():
        path.write_bytes(data)
    return sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: samples/)")
    args = parser.parse_args()
    for path in write_all(args.out):
        print(f"{path.stat().st_size:>8}  {path}")


if __name__ == "__main__":
    main()
