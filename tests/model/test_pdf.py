"""PDF rendering: page selection, caps, encrypted/corrupt/non-PDF input, quiet MuPDF. PDFs are made here."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from model.errors import PageSelectionError, PdfEncryptedError, PdfError, PdfTooLargeError, TooManyPagesError
from model.pdf import count_pages, iter_pages, parse_page_selection, render_pages

COLORS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1)]


def _make_pdf(num_pages: int = 5, width: float = 200, height: float = 100, **save: object) -> bytes:
    """Pages filled with one colour each (page i: COLORS[i % 5]) so their order can be read back."""
    document = pymupdf.open()
    for index in range(num_pages):
        page = document.new_page(width=width, height=height)
        page.draw_rect(page.rect, color=None, fill=COLORS[index % len(COLORS)])
        page.insert_text((10, 20), f"page {index + 1}")
    data = document.tobytes(**save)
    document.close()
    return bytes(data)


def _color(image: Image.Image) -> tuple[int, int, int]:
    r, g, b = image.convert("RGB").getpixel((image.width - 2, image.height - 2))  # type: ignore[misc]
    return (round(r / 255), round(g / 255), round(b / 255))


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return _make_pdf()


# -- selection ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [1, 2, 3, 4, 5]),
        ("", [1, 2, 3, 4, 5]),
        ("1-3,5", [1, 2, 3, 5]),
        (" 4 , 2 ", [4, 2]),
        ("3-", [3, 4, 5]),
        ("2-2", [2]),
        ([5, 1], [5, 1]),
    ],
)
def test_page_selection(spec: str | list[int] | None, expected: list[int]) -> None:
    assert parse_page_selection(spec, 5) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0", r"page 0 is outside the document: expected 1\.\.5"),
        ("6", r"page 6 is outside"),
        ("2-9", r"page 9 is outside"),
        ("7-", r"page 7 is outside"),
        ("3-1", "the end is before the start"),
        ("a", "expected numbers and ranges"),
        ("1,,2", "expected numbers and ranges"),
        ("-2", "expected numbers and ranges"),
        ("1.5", "expected numbers and ranges"),
        ("1-3,2", "page 2 is selected more than once"),
        ([1, 1], "page 1 is selected more than once"),
        ([True], "must be integers"),
        ([], "selection is empty"),
    ],
)
def test_bad_page_selection(spec: str | list[object], message: str) -> None:
    with pytest.raises(PageSelectionError, match=message):
        parse_page_selection(spec, 5)  # type: ignore[arg-type]


# -- rendering ---------------------------------------------------------------------------------------------


def test_render_all_pages(pdf_bytes: bytes) -> None:
    pages = render_pages(pdf_bytes, dpi=72)
    assert [page.page_number for page in pages] == [1, 2, 3, 4, 5]
    for index, page in enumerate(pages):
        assert page.image.mode == "RGB"
        assert page.image.size == (200, 100)
        assert _color(page.image) == COLORS[index]


def test_dpi_scales_the_bitmap(pdf_bytes: bytes) -> None:
    (page,) = render_pages(pdf_bytes, dpi=144, pages="1")
    assert page.image.size == (400, 200)


def test_selection_order_and_path_input(pdf_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf_bytes)
    for source in (path, str(path)):
        pages = render_pages(source, dpi=36, pages="4,2")
        assert [page.page_number for page in pages] == [4, 2]
        assert [_color(page.image) for page in pages] == [COLORS[3], COLORS[1]]
    assert count_pages(path) == 5
    assert count_pages(pdf_bytes) == 5


def test_rotated_page() -> None:
    document = pymupdf.open(stream=_make_pdf(1), filetype="pdf")
    document[0].set_rotation(90)
    (page,) = render_pages(document.tobytes(), dpi=72)
    assert page.image.size == (100, 200)


def test_page_cap(pdf_bytes: bytes) -> None:
    with pytest.raises(TooManyPagesError, match=r"5 pages in the document .* more than the limit of 4"):
        render_pages(pdf_bytes, max_pages=4)
    with pytest.raises(TooManyPagesError, match="3 pages selected, more than the limit of 2"):
        render_pages(pdf_bytes, pages="1-3", max_pages=2)
    assert len(render_pages(pdf_bytes, pages="1-2", max_pages=2, dpi=10)) == 2


def test_errors_are_raised_before_iterating(pdf_bytes: bytes) -> None:
    with pytest.raises(PageSelectionError):
        iter_pages(pdf_bytes, pages="9")
    pages = iter_pages(pdf_bytes, pages="5,1", dpi=10)
    assert [page.page_number for page in pages] == [5, 1]


def test_byte_cap(pdf_bytes: bytes, tmp_path: Path) -> None:
    limit = len(pdf_bytes) - 1
    with pytest.raises(PdfTooLargeError, match=f"{len(pdf_bytes)} bytes, more than the limit of {limit}"):
        render_pages(pdf_bytes, max_bytes=limit)
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf_bytes)
    with pytest.raises(PdfTooLargeError, match="more than the limit"):
        count_pages(path, max_bytes=limit)


def test_huge_page_is_rendered_at_a_lower_scale() -> None:
    data = _make_pdf(1, width=2000, height=1000)  # at 144 DPI: 4000 x 2000 = 8 MP
    (page,) = render_pages(data, dpi=144, max_pixels_per_page=1_000_000)
    width, height = page.image.size
    assert width * height <= 1_000_000
    assert width * height > 900_000  # as large as the cap allows, not needlessly small
    assert abs(width / height - 2) < 0.01
    assert _color(page.image) == COLORS[0]


def test_encrypted() -> None:
    locked = _make_pdf(2, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    with pytest.raises(PdfEncryptedError, match="needs a password"):
        render_pages(locked)
    with pytest.raises(PdfEncryptedError):
        count_pages(locked)
    # encrypted with an empty user password (permissions only): opens like any PDF
    owner_only = _make_pdf(2, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="", owner_pw="owner")
    assert len(render_pages(owner_only, dpi=10)) == 2


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is not a PDF", "not a PDF"),
        (_png(), "not a PDF"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 20, "corrupt PDF"),
    ],
)
def test_not_a_pdf_or_corrupt(data: bytes, message: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PdfError, match=message):
        render_pages(data)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""  # MuPDF stays quiet


def test_truncated_pdf_is_an_error_or_repaired_quietly(pdf_bytes: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    """A PDF cut in half is either refused (PdfError) or repaired by MuPDF; it never crashes or prints."""
    try:
        pages = render_pages(pdf_bytes[: len(pdf_bytes) // 2], dpi=10)
    except PdfError:
        pass
    else:
        assert all(page.image.mode == "RGB" for page in pages)
    assert capfd.readouterr().err == ""


def test_bad_arguments(pdf_bytes: bytes, tmp_path: Path) -> None:
    with pytest.raises(PdfError, match="PDF file not found"):
        render_pages(tmp_path / "missing.pdf")
    with pytest.raises(PdfError, match="expected PDF bytes or a path, got int"):
        render_pages(3)  # type: ignore[arg-type]
    with pytest.raises(PdfError, match=r"dpi must be within 1\.\.1200, got 0"):
        render_pages(pdf_bytes, dpi=0)
    with pytest.raises(PdfError, match="must be positive"):
        render_pages(pdf_bytes, max_pages=0)
