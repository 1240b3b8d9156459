"""OCR quality and cost: word recall of OCR (model.ocr) against a PDF's own text layer, on its pages rasterised at
``--dpi`` (a scan without text), and seconds per page on this machine.

Recall: of the page's PDF words (lower-cased, punctuation stripped, counted with multiplicity), the share OCR also
read on the rasterised page. Seconds: wall time of ``ocr_layer`` per page (the engine is created before timing).

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

from model.ocr import ocr_layer

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _bag(text: str) -> collections.Counter[str]:
    return collections.Counter(t.lower() for t in _TOKEN.findall(text))


def _page_image(page: pymupdf.Page, dpi: int) -> Image.Image:
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--pages", type=int, default=3, help="pages per PDF (the first ones that have text)")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()
    ocr_layer(Image.new("RGB", (64, 64), "white"))  # create the engine outside the timing
    found = total = 0
    seconds: list[float] = []
    for path in args.pdfs:
        document = pymupdf.open(path)
        done = 0
        for page in document:
            truth = _bag(page.get_text("text"))
            if done >= args.pages or sum(truth.values()) < 20:
                continue
            image = _page_image(page, args.dpi)
            start = time.perf_counter()
            layer = ocr_layer(image)
            seconds.append(time.perf_counter() - start)
            read = _bag(layer.text if layer else "")
            hits = sum(min(n, read[w]) for w, n in truth.items())
            found, total, done = found + hits, total + sum(truth.values()), done + 1
            print(
                f"{path.name} p{page.number + 1}: {image.size[0]}x{image.size[1]} px, recall "
                f"{hits / sum(truth.values()):.3f}, {seconds[-1]:.2f} s"
            )
    print(
        f"pages {len(seconds)}, word recall {found / max(total, 1):.3f} ({found}/{total}), "
        f"{sum(seconds) / max(len(seconds), 1):.2f} s/page at {args.dpi} DPI"
    )


if __name__ == "__main__":
    main()
