"""How the embedded index stores each page's pooled sketch (the ``sketches`` table): fixed per index at creation,
moved forward by ``vacuum``.

==========  ======================  ================================================================
codec       bytes per sketch        what a row holds
==========  ======================  ================================================================
float16     k·d·2 (2,048)           the (k, d) centroids as float16 (every index written before the
                                    ``sketch_codec`` meta key; an index without it holds these)
int8        k·d + 4·k (1,056)       the held form (:func:`colbert.local.sketch.quantize_sketches` of the
                                    float16 centroids): k·d int8 codes, then k float32 scales (little-endian)
==========  ======================  ================================================================

(bytes at k = 8, d = 128.) Why int8 is stored: the first stage holds sketches as int8 codes with a scale per
centroid, and storing that form instead of float16 halves the row **and** lets three rows share one 4 KiB
SQLite page, where two float16 rows (2,048 bytes plus the cell header each) do not fit and every sketch took a
page of its own (4,106 B per page at 100k pages, half of it unused). A handle loads int8 rows without a
conversion.

The int8 row is computed from the float16 rounding of the centroids, not from the float32 ones, so what a handle
holds is bit-identical whichever way the index stores it: an old float16 index, the same index after ``vacuum``
converted it, and a new int8 index hold the same codes and scales for the same page, and the pooled first stage
answers the same. Exports keep carrying float16 sketches (:func:`export_rows`): an int8 row widens to float16
and quantizes back to the same codes and scales (|code| ≤ 127 and float16's relative step 2⁻¹¹ move a code by at
most 127/2048 < ½ before rounding), so export → import → export is byte-identical — for every centroid whose
largest component is at least 2⁻¹⁷ ≈ 7.6e-6 (below that float16's subnormal spacing, 2⁻²⁴, is more than half a
code step; such a centroid is a zero vector for any score).

>>> c = np.array([[[0.5, -1.0, 0.25, 0.0]]], dtype=np.float32)  # one page, k = 1, d = 4
>>> row = encode_sketches(c.astype(np.float16), "int8")[0]
>>> len(row), len(encode_sketches(c.astype(np.float16), "float16")[0])
(8, 8)
>>> codes, scales = held_sketches(row, 1, 1, 4, "int8")
>>> codes.tolist(), round(float(scales[0, 0]) * 127, 6)
([[64, -127, 32, 0]], 1.0)
"""

from __future__ import annotations

import sqlite3

import numpy as np
import numpy.typing as npt

from colbert.errors import IndexFormatError
from colbert.local.sketch import quantize_sketches, widen_sketches

__all__ = [
    "NEW_SKETCH_CODEC",
    "SKETCH_CODECS",
    "SKETCH_CODEC_KEY",
    "convert_to_int8",
    "encode_sketches",
    "export_rows",
    "held_sketches",
    "sketch_row_bytes",
]

SKETCH_CODECS = ("float16", "int8")
SKETCH_CODEC_KEY = "sketch_codec"  # meta key (colbert.local.schema); absent: float16
NEW_SKETCH_CODEC = "int8"  # what create_schema writes; "float16" is read (and written into) older indexes
_SCALE = np.dtype("<f4")
_CONVERT_CHUNK = 4096  # rows read, converted and written back at a time


def sketch_row_bytes(codec: str, k: int, d: int) -> int:
    """Bytes of one stored sketch of ``k`` centroids of ``d`` dims.

    >>> [sketch_row_bytes(c, 8, 128) for c in SKETCH_CODECS]
    [2048, 1056]
    """
    return k * d * 2 if codec == "float16" else k * d + 4 * k


def encode_sketches(half: npt.NDArray[np.float16], codec: str) -> list[bytes]:
    """The stored rows of sketches ``half`` (m, k, d) float16 (the export form), one ``bytes`` per page."""
    if codec == "float16":
        return [row.tobytes() for row in half]
    return _int8_rows(*quantize_sketches(half))


def held_sketches(
    data: bytes, m: int, k: int, d: int, codec: str
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """``m`` stored rows (concatenated in ``data``) as a handle holds them: int8 codes (m, k·d) and float32 scales
    (m, k). ``IndexFormatError`` when ``data`` is not ``m`` rows' worth of bytes or a scale is not a finite
    number ≥ 0 (a damaged row: ``vacuum`` cannot mend it; restore the collection or re-add the document)."""
    width = sketch_row_bytes(codec, k, d)
    if len(data) != m * width:
        raise IndexFormatError(
            f"stored {codec} sketches hold {len(data)} bytes, expected {m} × {width} (a damaged sketches row: "
            "restore the collection from an export or re-add the document)"
        )
    if codec == "float16":
        return quantize_sketches(np.frombuffer(data, dtype=np.float16).reshape(m, k, d))
    rows = np.frombuffer(data, dtype=np.uint8).reshape(m, width)
    codes = rows[:, : k * d].view(np.int8).copy()  # (m, k·d)
    scales = rows[:, k * d :].copy().view(_SCALE).astype(np.float32)  # (m, k)
    if not np.all(np.isfinite(scales) & (scales >= 0)):
        raise IndexFormatError(
            "a stored sketch holds a scale that is not a finite number >= 0 (a damaged sketches row: restore the "
            "collection from an export or re-add the document)"
        )
    return codes, scales


def export_rows(data: bytes, m: int, k: int, d: int, codec: str) -> list[bytes]:
    """``m`` stored rows as float16 sketches (k, d), the form exports carry (an int8 row widened: see the module
    docstring for why importing it gives back the same row)."""
    if codec == "float16":
        held_sketches(data, m, k, d, codec)  # the size check
        return [data[i * k * d * 2 : (i + 1) * k * d * 2] for i in range(m)]
    wide = widen_sketches(*held_sketches(data, m, k, d, codec)).astype(np.float16)  # (m, k, d)
    return [row.tobytes() for row in wide]


def convert_to_int8(conn: sqlite3.Connection, k: int, d: int) -> int:
    """Inside a write transaction of an index whose sketches are float16 (the meta key absent): rewrite every row
    as int8 and record the codec; the number of rows rewritten (0: already int8). Handles hold the same values
    before and after (module docstring), so readers go on; a writer reads the codec in its own transaction."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", (SKETCH_CODEC_KEY,)).fetchone() is not None:
        return 0
    done, after = 0, -1
    while rows := conn.execute(
        "SELECT page_id, data FROM sketches WHERE page_id > ? ORDER BY page_id LIMIT ?", (after, _CONVERT_CHUNK)
    ).fetchall():
        new = _int8_rows(*held_sketches(b"".join(r[1] for r in rows), len(rows), k, d, "float16"))
        updates = [(row, page[0]) for row, page in zip(new, rows, strict=True)]
        conn.executemany("UPDATE sketches SET data = ? WHERE page_id = ?", updates)
        done, after = done + len(rows), int(rows[-1][0])
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (SKETCH_CODEC_KEY, "int8"))
    return done


def _int8_rows(codes: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]) -> list[bytes]:
    """Held sketches (m, k·d), (m, k) as stored int8 rows: the codes, then the scales."""
    return [c.tobytes() + s.astype(_SCALE).tobytes() for c, s in zip(codes, scales, strict=True)]
