"""What a stored page image costs, per real PDF page: bytes on disk and milliseconds, for each way of keeping it.

Every page is rendered as indexing does (``--dpi``, then resized to the size the model sees: ``smart_resize`` to
multiples of 28 within ``--max-pixels``, bicubic, as ``service.collections.indexing._as_seen``), then:

- ``png``: lossless PNG (compress level 6): what collections stored before.
- ``webp-qN`` / ``jpeg-qN``: lossy at quality N (encode ms, decode ms).
- ``pdf on demand``: nothing stored beyond the kept PDF (its bytes divided by its pages); per page the time to
  open the PDF from bytes, render the page at the same size and encode it for the response.

Legibility: with ``--ocr-pages N`` (default 3; 0 skips; RapidOCR is slow on a shared CPU) the first N pages of
each PDF are OCRed (:mod:`model.ocr`) as PNG and as each lossy variant, and each row prints the fraction of the
PNG's recognised words (as a multiset) the variant's OCR also finds. Crops for looking at go to ``--crops DIR``.

    .venv/bin/python bench/page_images.py                               # the samples + documentation PDFs found
    .venv/bin/python bench/page_images.py a.pdf b.pdf --ocr-pages 0 --crops /tmp/crops
"""

from __future__ import annotations

import argparse
import collections
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.pdf import count_pages, render_pages
from model.pixels import smart_resize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PDFS = (
    ROOT / "samples" / "report.pdf",
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
)
# (format, quality, WebP method: 0 fastest .. 6 smallest; Pillow's default is 4)
LOSSY = (
    ("webp", 40, 4),
    ("webp", 60, 0),
    ("webp", 60, 2),
    ("webp", 60, 4),
    ("webp", 75, 2),
    ("webp", 75, 4),
    ("webp", 90, 4),
    ("jpeg", 60, 0),
    ("jpeg", 75, 0),
    ("jpeg", 85, 0),
)


@dataclass
class Row:
    bytes: list[int] = field(default_factory=list)
    encode_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)


def as_seen(image: Image.Image, max_pixels: int) -> Image.Image:
    h, w = smart_resize(image.height, image.width, factor=28, min_pixels=3136, max_pixels=max_pixels)
    return image if image.size == (w, h) else image.resize((w, h), Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str, quality: int | None, method: int = 4) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG", compress_level=6)
    elif fmt == "webp":
        image.save(out, format="WEBP", quality=quality, method=method)
    else:
        image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000


def ocr_words(image: Image.Image) -> collections.Counter[str]:
    from model.ocr import ocr_layer

    layer = ocr_layer(image)
    return collections.Counter() if layer is None else collections.Counter(w.text for w in layer.words)


def overlap(found: collections.Counter[str], reference: collections.Counter[str]) -> float:
    total = sum(reference.values())
    return 1.0 if total == 0 else sum((found & reference).values()) / total


def measure(pdf: Path, args: argparse.Namespace, rows: dict[str, Row], demand: Row) -> int:
    data = pdf.read_bytes()
    pages = count_pages(data)
    for number in range(1, pages + 1):
        page = as_seen(render_pages(data, dpi=args.dpi, pages=[number])[0].image, args.max_pixels)
        reference = ocr_words(page) if number <= args.ocr_pages else None
        for fmt, quality, method in (("png", None, 0), *LOSSY):
            name = fmt if quality is None else f"{fmt}-q{quality}" + (f"-m{method}" if fmt == "webp" else "")
            blob, ms = timed(lambda f=fmt, q=quality, m=method, p=page: encode(p, f, q, m))
            assert isinstance(blob, bytes)
            decoded, dms = timed(lambda b=blob: Image.open(io.BytesIO(b)).convert("RGB"))
            assert isinstance(decoded, Image.Image)
            assert decoded.size == page.size
            row = rows.setdefault(name, Row())
            row.bytes.append(len(blob))
            row.encode_ms.append(ms)
            row.decode_ms.append(dms)
            if reference is not None and quality is not None:
                row.recall.append(overlap(ocr_words(decoded), reference))
            if args.crops and number == 1:
                crop = decoded.crop((0, 0, min(480, decoded.width), min(320, decoded.height)))
                crop.save(Path(args.crops) / f"{pdf.stem}-{name}.png")
        demand.bytes.append(len(data) // pages)

        def render(n: int = number) -> Image.Image:  # open the PDF, render the page, resize: as page_images.load
            return as_seen(render_pages(data, dpi=args.dpi, pages=[n])[0].image, args.max_pixels)

        _image, ms = timed(render)
        demand.decode_ms.append(ms)  # render only (open + render + resize)
        _blob, ms = timed(lambda r=render: encode(r(), "png", None))
        demand.encode_ms.append(ms)  # render + PNG for the response
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--dpi", type=int, default=144)
    parser.add_argument("--max-pixels", type=int, default=602112)
    parser.add_argument("--ocr-pages", type=int, default=3)
    parser.add_argument("--crops", default=None)
    args = parser.parse_args()
    pdfs = [p for p in (args.pdfs or DEFAULT_PDFS) if p.is_file()]
    if args.crops:
        Path(args.crops).mkdir(parents=True, exist_ok=True)
    rows: dict[str, Row] = {}
    demand = Row()
    total = sum(measure(pdf, args, rows, demand) for pdf in pdfs)
    print(
        f"{total} pages from {len(pdfs)} PDFs: {', '.join(p.name for p in pdfs)}; dpi {args.dpi}, max_pixels "
        f"{args.max_pixels}"
    )
    print(f"{'choice':<16}{'KB/page':>9}{'vs png':>8}{'encode ms':>11}{'decode ms':>11}{'OCR words':>11}")
    png = statistics.mean(rows["png"].bytes)
    for name, row in rows.items():
        kb = statistics.mean(row.bytes) / 1024
        recall = f"{statistics.mean(row.recall):.3f}" if row.recall else "-"
        print(
            f"{name:<16}{kb:>9.1f}{statistics.mean(row.bytes) / png:>8.3f}{statistics.median(row.encode_ms):>11.1f}"
            f"{statistics.median(row.decode_ms):>11.1f}{recall:>11}"
        )
    kb = statistics.mean(demand.bytes) / 1024
    print(
        f"{'pdf on demand':<16}{kb:>9.1f}{statistics.mean(demand.bytes) / png:>8.3f}"
        f"{'':>11}{statistics.median(demand.decode_ms):>11.1f}{'':>11}  (render ms; render + PNG "
        f"{statistics.median(demand.encode_ms):.1f} ms, p90 {statistics.quantiles(demand.encode_ms, n=10)[-1]:.1f})"
    )


if __name__ == "__main__":
    main()
