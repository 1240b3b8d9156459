"""OCR of a page image into a :class:`~model.types.TextLayer` (words, their boxes in the image's pixels, the
text they spell), the same structure a PDF's text layer has, so text search, highlights and the search page work
on it unchanged; the layer records ``source="ocr"`` and the mean recognition confidence.

Engine: RapidOCR (PaddleOCR's detection + recognition models run by ONNX Runtime on CPU; the models ship inside
the ``rapidocr-onnxruntime`` wheel, nothing is downloaded). One engine per process, created on first use and
called under a lock (one page at a time per process; the caller's pool gives the parallelism). Its recogniser
returns a box per character; words are the runs between spaces, their box the union of their characters'.

:func:`needs_ocr` is the ``auto`` rule: a page is OCRed when its own text layer is missing or sparse (fewer
characters than :data:`SPARSE_CHARS_PER_MEGAPIXEL` per million pixels of the rendered page: a scan with a stray
page number, a photo with a caption), and OCR's words then replace the layer only when there are more of them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from model.types import TextLayer, Word

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DETECTOR",
    "MAX_ASPECT",
    "MIN_SIDE",
    "OCR_MODES",
    "SPARSE_CHARS_PER_MEGAPIXEL",
    "apply_ocr",
    "make_engine",
    "needs_ocr",
    "ocr_layer",
]

OCR_MODES: Final = ("auto", "always", "never")
SPARSE_CHARS_PER_MEGAPIXEL: Final = 40.0
MIN_SIDE: Final = 8  # pixels: a thinner image holds no readable line (a 1 x 5000 strip)
MAX_ASPECT: Final = 20  # longer side over 20 x the shorter: OCR fails to resize it, or upscales it to tens of MP
# The detector's input: RapidOCR's default ("min", 736) scales the SHORTER side up to 736 px, so a 16 x 320 image
# became a 736 x 14,720 detector input (36 s on a loaded CPU for a blank strip); "max" never upscales and caps the
# longer side at 960/1500/2000 px by the image's size (a 150-DPI page, ~1250 x 1700 px, is read as it is: the same
# input as before). bench/ocr.py measures both settings on the same pages.
DETECTOR: Final = {"det_limit_type": "max"}
_LOCK = threading.Lock()
_ENGINE: list[Any] = []  # the process's RapidOCR engine, once created


def make_engine(**settings: Any) -> Any:
    """A RapidOCR engine with ``settings`` (its keyword names, e.g. ``det_limit_type``): ~1.5 s, ~100 MB."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(**settings)


def _engine() -> Any:
    """The process's engine (caller holds ``_LOCK``)."""
    if not _ENGINE:
        _ENGINE.append(make_engine(**DETECTOR))
    return _ENGINE[0]


def ocr_layer(image: Image.Image, engine: Any = None) -> TextLayer | None:
    """The words OCR reads on ``image`` (RGB) with their boxes in its pixels; None when it finds none, or when the
    image is thinner than :data:`MIN_SIDE` pixels or more elongated than :data:`MAX_ASPECT` (a strip, not a page:
    RapidOCR's resizing fails on those). ``engine``: one of :func:`make_engine` instead of the process's (for
    bench/ocr.py's comparison of settings)."""
    if min(image.size) < MIN_SIDE or max(image.size) > MAX_ASPECT * min(image.size):
        return None
    pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR takes OpenCV's BGR order
    with _LOCK:
        # use_cls=False: the 0/180-degree line classifier flipped upright lines of real pages into garbage
        # (samples/report.pdf p1 at 150 DPI: 2 of 11 lines lost, word recall 0.74 -> see bench/ocr.py)
        result, _elapsed = (engine or _engine())(pixels, use_cls=False, return_word_box=True)
    lines: list[list[Word]] = []
    scores: list[float] = []
    for entry in result or []:
        words = _words(entry)
        if words:
            lines.append(words)
            scores.append(float(entry[2]))
    if not lines:
        return None
    text = "\n".join(" ".join(w.text for w in line) for line in lines)
    every = tuple(w for line in lines for w in line)
    return TextLayer(text, every, source="ocr", confidence=round(float(np.mean(scores)), 4))


def _words(entry: Any) -> list[Word]:
    """One recognised line -> its words: runs of characters between spaces, each boxed by its characters (the
    line's box split by character count when the engine gave no per-character boxes)."""
    quad, text = entry[0], str(entry[1])
    chars = list(entry[4]) if len(entry) > 4 and entry[4] is not None else []
    boxes = [np.asarray(b, dtype=np.float64) for b in entry[3]] if len(entry) > 3 and entry[3] is not None else []
    if len(chars) != len(boxes) or not chars:
        chars, boxes = _split_line(np.asarray(quad, dtype=np.float64), text)
    words: list[Word] = []
    run: list[int] = []
    for i, char in enumerate([*chars, " "]):
        if char.strip():
            run.append(i)
            continue
        if run:
            corners = np.concatenate([boxes[j] for j in run])
            x0, y0 = corners.min(axis=0)
            x1, y1 = corners.max(axis=0)
            words.append(Word("".join(chars[j] for j in run), float(x0), float(y0), float(x1), float(y1)))
            run = []
    return words


def _split_line(quad: np.ndarray[Any, Any], text: str) -> tuple[list[str], list[np.ndarray[Any, Any]]]:
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    step = (x1 - x0) / max(len(text), 1)
    boxes = [np.array([[x0 + i * step, y0], [x0 + (i + 1) * step, y1]]) for i in range(len(text))]
    return list(text), boxes


def needs_ocr(layer: TextLayer | None, size: tuple[int, int]) -> bool:
    """The ``auto`` rule: no text layer, or fewer than :data:`SPARSE_CHARS_PER_MEGAPIXEL` characters per million
    pixels of a page of ``size``."""
    if layer is None:
        return True
    megapixels = max(size[0] * size[1], 1) / 1e6
    return len(layer.text.replace(" ", "").replace("\n", "")) < SPARSE_CHARS_PER_MEGAPIXEL * megapixels


def apply_ocr(image: Image.Image, layer: TextLayer | None, mode: str) -> TextLayer | None:
    """The text layer a page keeps under ``mode`` (:data:`OCR_MODES`): its own (``never``; ``auto`` when it is
    dense enough), OCR's (``always``, when OCR finds words), or under ``auto`` whichever has more words."""
    if mode not in OCR_MODES:
        raise ValueError(f"ocr must be one of {', '.join(OCR_MODES)}, got {mode!r}")
    if mode == "never" or (mode == "auto" and not needs_ocr(layer, image.size)):
        return layer
    read = ocr_layer(image)
    if read is None:
        return layer
    if mode == "always" or layer is None or len(read.words) > len(layer.words):
        return read
    return layer
