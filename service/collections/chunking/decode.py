"""Bytes of a text/code file -> text, with the project's rules for what is not text.

- Over ``max_bytes`` (``JEV4_MAX_TEXT_BYTES``) -> 413 naming the setting.
- A NUL byte anywhere (after a UTF-16/32 byte-order mark is handled) -> 415 ``binary_content``: binaries are not
  text, and indexing them as such would only store noise.
- Invalid UTF-8 is DECODED WITH REPLACEMENT (U+FFFD), and said so: :attr:`DecodedText.replaced` counts the
  replaced sequences, and the document's metadata and the API's answer carry it (``encoding_errors``). Source
  trees hold Latin-1 comments often enough that refusing the whole file would lose more than it protects.
- A UTF-8 byte-order mark is dropped; UTF-16/32 with a byte-order mark is decoded as such.

>>> decode_text(b"caf\\xe9 ok", max_bytes=100)
DecodedText(text='caf\ufffd ok', replaced=1)
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from service.errors import PayloadTooLargeError, UnsupportedMediaTypeError

__all__ = ["DecodedText", "decode_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    replaced: int  # invalid byte sequences replaced by U+FFFD


def decode_text(data: bytes, *, max_bytes: int, name: str = "the document") -> DecodedText:
    """See the module doc; ``name`` (a path) goes into the error messages."""
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"{name} has {len(data)} bytes, more than the limit of {max_bytes} for a text document "
            f"(JEV4_MAX_TEXT_BYTES); split the file or raise the setting",
            code="text_too_large",
        )
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedText(data.decode(encoding), 0)
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise UnsupportedMediaTypeError(
            f"{name} looks binary (it holds NUL bytes); send text or source code as UTF-8, or a PDF / image "
            f"as a page document",
            code="binary_content",
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return DecodedText(data.decode("utf-8"), 0)
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        return DecodedText(text, text.count("\ufffd") - data.count("\ufffd".encode()))
