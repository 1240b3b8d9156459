"""The packed form of a page's word boxes (the ``words`` a page unit keeps in its metadata for highlights and
regions): ~4.6x smaller than the JSON list it replaces (10.7 -> 2.3 KB per page on real PDFs,
``bench/page_disk.py``) and exactly the same values.

Coordinates are kept to one decimal (as the JSON list held them), so they are whole tenths of a pixel. Packed:
``base64(zlib(n as uint32, then four int32 columns of n, then the words joined by "\\n" in UTF-8))``, the columns
being x0 minus the previous word's x1, y0 minus the previous word's y0, the width and the height (in tenths;
the first word's x0/y0 as they are). Neighbouring words share lines, so the deltas are small and repeat, which is
what zlib compresses. A page whose words cannot be packed exactly (a word holding a newline, a coordinate that
is not finite) keeps the JSON list, which every reader still accepts, as it accepts indexes written before.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_UNPACKED_BYTES", "WordBoxesError", "pack", "unpack"]

MAX_UNPACKED_BYTES = 64 << 20  # a page's words unpack to far less; a forged value stops here, not in memory
_HEADER = np.dtype("<u4")
_COLUMN = np.dtype("<i4")
_LIMIT = 2**31 - 1


class WordBoxesError(ValueError):
    """A packed ``words`` value that does not decode (damaged or forged)."""


def pack(words: Sequence[Sequence[Any]]) -> str | list[list[Any]]:
    """``[[x0, y0, x1, y1, word], ...]`` (one decimal) as the packed string; the list itself when it cannot be
    packed exactly."""
    rows = [list(w) for w in words]
    tenths = [[round(float(v) * 10) if math.isfinite(float(v)) else None for v in w[:4]] for w in rows]
    if any("\n" in str(w[4]) for w in rows) or any(v is None or abs(v) > _LIMIT // 4 for t in tenths for v in t):
        return rows
    box = np.asarray(tenths, dtype=np.int64).reshape(-1, 4)
    cols = box.copy()
    cols[:, 2] = box[:, 2] - box[:, 0]
    cols[:, 3] = box[:, 3] - box[:, 1]
    cols[1:, 0] = box[1:, 0] - box[:-1, 2]
    cols[1:, 1] = box[1:, 1] - box[:-1, 1]
    text = "\n".join(str(w[4]) for w in rows).encode()
    raw = np.array([len(rows)], _HEADER).tobytes() + cols.T.astype(_COLUMN).tobytes() + text
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack(value: str) -> list[tuple[float, float, float, float, str]]:
    """The words of a packed value, as :func:`pack` was given them (coordinates as floats of one decimal)."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(value, validate=True), MAX_UNPACKED_BYTES)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise WordBoxesError(f"packed words do not decode: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof or len(raw) < _HEADER.itemsize:
        raise WordBoxesError("packed words are truncated or larger than allowed")
    n = int(np.frombuffer(raw, _HEADER, count=1)[0])
    end = _HEADER.itemsize + 4 * n * _COLUMN.itemsize
    if end > len(raw):
        raise WordBoxesError(f"packed words hold fewer than the {n} boxes they announce")
    cols = np.frombuffer(raw, _COLUMN, count=4 * n, offset=_HEADER.itemsize).reshape(4, n).astype(np.int64)
    try:
        texts = raw[end:].decode("utf-8").split("\n") if n else []
    except UnicodeDecodeError as exc:
        raise WordBoxesError(f"packed words are not UTF-8: {exc}") from exc
    if len(texts) != n:
        raise WordBoxesError(f"packed words hold {len(texts)} words for {n} boxes")
    # x0 is relative to the previous word's x1 (its x0 + width): the running sum of the x deltas and of the
    # widths before it
    x0 = np.cumsum(cols[0]) + np.concatenate(([0], np.cumsum(cols[2])[:-1]))[:n]
    y0 = np.cumsum(cols[1])
    x1, y1 = x0 + cols[2], y0 + cols[3]
    return [
        (int(a) / 10, int(b) / 10, int(c) / 10, int(d) / 10, t)
        for a, b, c, d, t in zip(x0, y0, x1, y1, texts, strict=True)
    ]
