"""Conversions are bounded: a document that lays out to too many pages stops at the cap, a conversion past its
time limit is stopped and leaves no process behind (no server needed)."""

from __future__ import annotations

import io
import subprocess

import pytest

from model.errors import TooManyPagesError
from model.html import html_to_pdf
from model.pdf import document_to_pdf
from service.collections.converters import office
from service.collections.converters.base import PageLimits
from service.errors import UnprocessableError
from tests.service.collections.converters.files import epub_bytes


def test_html_stops_laying_out_at_the_page_cap() -> None:
    with pytest.raises(TooManyPagesError, match="more than 3 pages"):
        html_to_pdf("<p>line</p>" * 100_000, max_pages=3, what="a huge page")


def test_ebook_over_the_page_cap_is_refused_before_conversion() -> None:
    with pytest.raises(TooManyPagesError, match="more than the limit of 2"):
        document_to_pdf(epub_bytes(["one", "two", "three"]), "epub", max_pages=2, what="an EPUB e-book")


def _soffice_processes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if "soffice" in line and "jev4-office-" in line]


@pytest.mark.skipif(office.soffice() is None, reason="LibreOffice absent: bash scripts/setup.sh --office")
def test_a_conversion_past_its_time_limit_is_stopped_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    docx = pytest.importorskip("docx", reason="python-docx (a dev dependency) builds the DOCX")
    document = docx.Document()
    document.add_paragraph("slow")
    out = io.BytesIO()
    document.save(out)
    monkeypatch.setattr(office, "TIME_LIMIT_S", 0.05)  # LibreOffice cannot start that fast
    with pytest.raises(UnprocessableError, match="longer than") as caught:
        office.CONVERTERS[0].to_pdf(out.getvalue(), PageLimits())
    assert caught.value.code == "conversion_failed"
    assert _soffice_processes() == []


def test_ocr_skips_strips_it_cannot_read() -> None:
    from PIL import Image

    from model.ocr import ocr_layer

    # a 1 x 5000 or 12 x 3000 page made RapidOCR's resize raise (a 500 on upload before this check)
    assert ocr_layer(Image.new("RGB", (1, 5000), "white")) is None
    assert ocr_layer(Image.new("RGB", (3000, 12), "white")) is None


def test_a_small_label_is_read_word_by_word() -> None:
    from PIL import Image, ImageDraw

    from model.ocr import ocr_layer

    # RapidOCR's stock detector setting upscaled this 600 x 40 label to a 736-px-high input (11.6 s on a loaded
    # CPU) and read "Invoice4711settledinfull"; model.ocr.DETECTOR reads it as it is (bench/ocr.py)
    label = Image.new("RGB", (600, 40), "white")
    ImageDraw.Draw(label).text((6, 8), "Invoice 4711 settled in full", fill="black", font_size=22)
    layer = ocr_layer(label)
    assert layer is not None
    assert [w.text for w in layer.words] == ["Invoice", "4711", "settled", "in", "full"]
