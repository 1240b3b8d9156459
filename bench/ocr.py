"""OCR quality and cost: word recall of OCR (model.ocr) against a PDF's own text layer, on its pages rasterised at
``--dpi`` (a scan without text), and seconds per page on this machine.

Recall: of the page's PDF words (lower-cased, punctuation stripped, counted with multiplicity), the share OCR also
read on the rasterised page. Seconds: wall time of ``ocr_layer`` per page (the engine is created before timing).
Each page goes through RapidOCR's stock detector setting and ours (:data:`model.ocr.DETECTOR`) in the same run,
then a blank 16 x 320 strip and a one-line 600 x 40 label (where the stock setting upscales the detector input).

    .venv/bin/python -m bench.ocr samples/report.pdf /usr/share/doc/libtasn1-doc/libtasn1.pdf --pages 3 --dpi 150
"""

from __future__ import annotations

import argparse
import collections
import re
import time
from pathlib import Path

import pymupdf
from PIL import Image

from model.ocr import DETECTOR, make_engine, ocr_layer

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _bag(text: str) -> collections.Counter[str]:
    return collections.Counter(t.lower() for t in _TOKEN.findall(text))


def _page_image(page: pymupdf.Page, dpi: int) -> Image.Image:
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def _strips() -> list[tuple[str, Image.Image]]:
    """Small and elongated images (a blank strip, a one-line label) where the detector's input size dominates."""
    from PIL import ImageDraw

    label = Image.new("RGB", (600, 40), "white")
    ImageDraw.Draw(label).text((6, 8), "Invoice 4711 settled in full", fill="black", font_size=22)
    return [("blank 16x320", Image.new("RGB", (320, 16), "white")), ("label 600x40", label)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--pages", type=int, default=3, help="pages per PDF (the first ones that have text)")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()
    engines = {"stock (min, 736)": make_engine(), f"ours {DETECTOR}": make_engine(**DETECTOR)}
    pages: list[tuple[str, Image.Image, collections.Counter[str]]] = []
    for path in args.pdfs:
        document = pymupdf.open(path)
        for page in document:
            truth = _bag(page.get_text("text"))
            if sum(truth.values()) >= 20 and sum(1 for p in pages if p[0].startswith(path.name)) < args.pages:
                pages.append((f"{path.name} p{page.number + 1}", _page_image(page, args.dpi), truth))
    for name, engine in engines.items():  # the same pages through each setting, one after the other
        ocr_layer(Image.new("RGB", (64, 64), "white"), engine)  # warm up outside the timing
        found = total = 0
        seconds: list[float] = []
        for label, image, truth in pages:
            start = time.perf_counter()
            layer = ocr_layer(image, engine)
            seconds.append(time.perf_counter() - start)
            read = _bag(layer.text if layer else "")
            hits = sum(min(n, read[w]) for w, n in truth.items())
            found, total = found + hits, total + sum(truth.values())
            print(
                f"{name}: {label}: {image.size[0]}x{image.size[1]} px, recall {hits / sum(truth.values()):.3f}, "
                f"{seconds[-1]:.2f} s"
            )
        print(
            f"{name}: pages {len(seconds)}, word recall {found / max(total, 1):.3f} ({found}/{total}), "
            f"{sum(seconds) / max(len(seconds), 1):.2f} s/page at {args.dpi} DPI"
        )
        for label, image in _strips():
            start = time.perf_counter()
            layer = ocr_layer(image, engine)
            print(f"{name}: {label}: {time.perf_counter() - start:.2f} s, read {layer.text if layer else ''!r}")


if __name__ == "__main__":
    main()
