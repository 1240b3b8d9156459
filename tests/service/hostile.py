"""Generators of hostile inputs for ``test_hostile_corpus.py``: PDF bombs, image bombs in every accepted format,
malformed base64 / data URIs, deep or huge JSON, huge numbers, Unicode edge cases, path-like document ids, big
metadata, filters with thousands of keys. Every case is built here, in memory, on the fly (no fixtures on disk).

A :class:`Case` is one HTTP request and what may come back: ``refuse=True`` means it MUST be a typed 4xx (with the
error ``code`` when one is given); else a 2xx is also fine (e.g. a Unicode edge case that is valid text) — never
a 5xx either way.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

COLLECTION = "hostile"


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    refuse: bool = True
    code: str | None = None  # the error code the refusal must carry, where one is specific to the case
    method: str = "POST"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- PDFs ------------------------------------------------------------------------------------------------


def pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A syntactically valid PDF (correct xref offsets, so MuPDF need not repair it) from object bodies."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _page_pdf(
    resources: bytes,
    content: bytes,
    extra: list[bytes] | None = None,
    count: int = 1,
    mediabox: bytes = b"[0 0 200 200]",
    content_filter: bytes = b"",
) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox " + mediabox + b" /Resources " + resources + b" /Contents 4 0 R >>",
        _stream(content_filter, content),
        *(extra or []),
    ]
    return pdf(objects)


def _image_xobject(width: int, height: int, filt: bytes, data: bytes) -> bytes:
    head = b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8" % (
        width,
        height,
    )
    return _stream(head + b" /Filter " + filt, data)


def pdf_cases() -> Iterator[tuple[str, bytes]]:
    draw = b"q 200 0 0 200 0 0 cm /Im0 Do Q"
    img_res = b"<< /XObject << /Im0 5 0 R >> >>"
    yield (
        "giant_image_flate",
        _page_pdf(img_res, draw, [_image_xobject(60000, 60000, b"/FlateDecode", zlib.compress(b"\0" * 100000))]),
    )
    yield (
        "giant_image_dct_garbage",
        _page_pdf(img_res, draw, [_image_xobject(30000, 30000, b"/DCTDecode", b"\xff\xd8garbage")]),
    )
    yield (
        "jbig2_garbage",
        _page_pdf(img_res, draw, [_image_xobject(1000, 1000, b"/JBIG2Decode", b"\x97JB2\r\n\x1a\n" + b"\x00" * 64)]),
    )
    yield (
        "jpx_garbage",
        _page_pdf(
            img_res, draw, [_image_xobject(4000, 4000, b"/JPXDecode", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x01" * 64)]
        ),
    )
    font_res = b"<< /Font << /F1 5 0 R >> >>"
    text = b"BT /F1 24 Tf 10 100 Td (Hello) Tj ET"
    font = b"<< /Type /Font /Subtype /TrueType /BaseFont /Bogus /FontDescriptor 6 0 R >>"
    descriptor = b"<< /Type /FontDescriptor /FontName /Bogus /Flags 32 /FontFile2 7 0 R >>"
    yield (
        "broken_truetype_font",
        _page_pdf(font_res, text, [font, descriptor, _stream(b"", b"\x00\x01\x00\x00" + b"\xff" * 500)]),
    )
    yield (
        "type3_font_recursion",
        _page_pdf(
            b"<< /Font << /F1 5 0 R >> >>",
            text,
            [
                b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 1 1] /FontMatrix [1 0 0 1 0 0] /CharProcs << /H 6 0 R >> "
                b"/Encoding << /Differences [72 /H] >> /FirstChar 72 /LastChar 72 /Widths [1] /Resources << /Font << /F1 5 0 R >> >> >>",
                _stream(b"", b"BT /F1 1 Tf (H) Tj ET"),
            ],
        ),
    )
    yield "deep_nesting_array", _page_pdf(b"<< >>", b"", [b"[" * 20000 + b"]" * 20000])
    yield "deep_nesting_dict", _page_pdf(b"<< >>", b"", [b"<< /A " * 5000 + b"1" + b" >>" * 5000])
    yield "page_count_millions", _page_pdf(b"<< >>", b"", count=5_000_000)
    kids = b" ".join(b"3 0 R" for _ in range(50000))
    yield (
        "kids_array_50k_same_page",
        pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [" + kids + b"] /Count 50000 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            ]
        ),
    )
    yield (
        "pages_cycle",
        pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
            ]
        ),
    )
    yield "huge_mediabox", _page_pdf(b"<< >>", b"0 0 m 1 1 l S", mediabox=b"[0 0 14400 14400000]")
    yield "zero_mediabox", _page_pdf(b"<< >>", b"", mediabox=b"[0 0 0 0]")
    yield "negative_mediabox", _page_pdf(b"<< >>", b"", mediabox=b"[0 0 -1e30 1e30]")
    yield "content_operator_flood", _page_pdf(b"<< >>", b"0 0 m 200 200 l S\n" * 5000)
    bomb = zlib.compress(b"q Q " * 5_000_000, 9)  # 20 MB of no-ops in ~20 KB
    yield "flate_bomb_content", _page_pdf(b"<< >>", bomb, content_filter=b"/Filter /FlateDecode")
    yield "no_pages", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    yield "not_pdf", b"hello, I am not a PDF at all"
    yield "empty", b""
    yield "header_only", b"%PDF-1.7\n"
    yield "truncated", _page_pdf(b"<< >>", b"")[:100]
    yield "encrypted", _encrypted()


def _encrypted() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page()
    data: bytes = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    doc.close()
    return data


# --- images ----------------------------------------------------------------------------------------------


def _save(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.new("L", (8, 8)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.new("P", (8, 8)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    at = data.index(b",")  # image descriptor
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.new("1", (8, 8)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.new("RGB", (8, 8)), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def image_cases() -> Iterator[tuple[str, bytes]]:
    """Decompression bombs (the test server caps decoded pixels at 4 MP) in each format PIL reads, plus corrupt
    and truncated files."""
    big = Image.new("RGB", (2100, 2100), (200, 30, 30))  # 4.4 MP, compresses to almost nothing
    for fmt, kwargs in (
        ("PNG", {}),
        ("GIF", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {"compression": "tiff_deflate"}),
        ("JPEG", {}),
        ("BMP", {}),
        ("ICO", {"sizes": [(256, 256)]}),
        ("PPM", {}),
        ("TGA", {"compression": "tga_rle"}),
        ("PCX", {}),
        ("JPEG2000", {}),
    ):
        image = big.convert("1") if fmt in ("BMP", "PCX") else big
        yield f"bomb_{fmt.lower()}_4.4MP", _save(image, fmt, **kwargs)
    for w, h in ((65535, 65535), (1, 100_000_000), (2_000_000_000, 2)):
        yield f"png_header_{w}x{h}", _png_with_size(w, h)
    for w, h in ((65535, 65535), (1, 65535)):
        yield f"gif_header_{w}x{h}", _gif_with_size(w, h)
        yield f"jpeg_header_{w}x{h}", _jpeg_with_size(w, h)
    yield "bmp_header_huge", _bmp_with_size(100000, 100000)
    yield "bmp_header_negative", _bmp_with_size(-5, -2_000_000_000)
    yield (
        "animated_gif_many_frames",
        _save(Image.new("P", (64, 64)), "GIF", save_all=True, append_images=[Image.new("P", (64, 64))] * 300),
    )
    png = _save(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    yield "png_truncated", png[: len(png) // 2]
    yield "png_bad_crc", png[:30] + b"\x00" + png[31:]
    yield "png_signature_only", png[:8]
    yield "svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>'
    yield "random_bytes", bytes(range(256)) * 16
    yield "zero_by_zero_png", _png_with_size(0, 0)
    yield "aspect_1x5000", _save(Image.new("L", (1, 5000)), "PNG")


# --- malformed URLs (issue 25) ---------------------------------------------------------------------------

MALFORMED_URLS = {
    "ipv6_unclosed": "http://[::1/x.png",
    "port_above_65535": "http://127.0.0.1:99999/x.png",
    "port_not_a_number": "http://a:b:c/x.png",
    "port_zero": "http://localhost:0/x.png",
    "host_5000_chars": "http://" + "a" * 5000 + "/x.png",
    "host_label_64_chars": "http://" + "a" * 64 + ".example/x.png",
    "host_300_labels": "http://" + "a." * 300 + "example/x.png",
    "no_host": "http:///x.png",
    "space_in_host": "http://exa mple.com/x.png",
    "control_char": "http://local\x01host/x.png",
    "url_20k_chars": "http://localhost/" + "x" * 20_000,
}
