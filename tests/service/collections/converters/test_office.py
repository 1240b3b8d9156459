"""Office documents -> PDF by LibreOffice -> pages: a DOCX (python-docx), PPTX (python-pptx) and XLSX (openpyxl), and
the ODF, RTF and legacy files LibreOffice saves them as,
each indexed with a word found first on its page; without LibreOffice a 415 naming the setup flag; a DOCX with an
external link converts without fetching it. The conversion tests skip (with the reason) where soffice is absent."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.collections.converters import detect_kind, office
from service.collections.converters.base import PageLimits
from service.errors import UnsupportedMediaTypeError
from tests.service.collections.converters.files import assert_found
from tests.service.helpers import module_collection

NAME = "office-docs"
needs_soffice = pytest.mark.skipif(
    office.soffice() is None, reason="LibreOffice absent: bash scripts/setup.sh --office"
)


def _docx(text: str, link: str | None = None) -> bytes:
    docx = pytest.importorskip("docx", reason="python-docx (a dev dependency) builds the DOCX")
    document = docx.Document()
    paragraph = document.add_paragraph(text)
    if link is not None:  # an external hyperlink relationship (TargetMode="External")
        part = document.part
        rel = part.relate_to(link, docx.opc.constants.RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
        paragraph.add_run(f" see {rel}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pptx(text: str) -> bytes:
    pptx = pytest.importorskip("pptx", reason="python-pptx (a dev dependency) builds the PPTX")
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = "Opening slide"
    deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _xlsx(text: str) -> bytes:
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl (a dev dependency) builds the XLSX")
    book = openpyxl.Workbook()
    book.active["A1"] = text
    book.active["B2"] = 42
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def docs_collection(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def test_office_formats_are_sniffed() -> None:
    assert detect_kind(_docx("x")) == "docx"
    assert detect_kind(b"{\\rtf1 hello}") == "rtf"


def test_without_libreoffice_the_answer_names_the_setup_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "soffice", lambda: None)
    with pytest.raises(UnsupportedMediaTypeError, match=r"setup\.sh --office") as caught:
        office.CONVERTERS[0].to_pdf(_docx("x"), PageLimits())
    assert caught.value.code == "office_unavailable"
    assert "DOCX" in str(caught.value)


@needs_soffice
@pytest.mark.parametrize(
    ("filename", "make", "word", "page"),
    [("memo.docx", _docx, "Pomegranate", 1), ("deck.pptx", _pptx, "Tangerine", 2), ("sheet.xlsx", _xlsx, "Kumquat", 1)],
)
def test_office_document_is_indexed_and_found(
    client: httpx.Client, docs_collection: str, filename: str, make: Any, word: str, page: int
) -> None:
    doc_id = filename.replace(".", "_")
    files = {"file": (filename, make(f"{word} ledger"), "application/octet-stream")}
    response = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": doc_id})
    assert response.status_code == 201, response.text
    assert_found(client, docs_collection, word, doc_id, page)


@needs_soffice
def test_docx_with_an_external_link_fetches_nothing(
    client: httpx.Client, docs_collection: str, recorder: tuple[str, list[str]]
) -> None:
    base, requests = recorder
    link = f"{base}/tracker.png"
    files = {"file": ("linked.docx", _docx("Linked memo", link=link), "application/octet-stream")}
    response = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": "linked"})
    assert response.status_code == 201, response.text
    assert requests == []


def _saved_as(data: bytes, source: str, target: str, tmp: Path) -> bytes:
    """``data`` (a ``source`` file) saved by LibreOffice itself as ``target`` (an ODF or legacy format)."""
    program = office.soffice()
    assert program is not None
    (tmp / f"in.{source}").write_bytes(data)
    profile = f"-env:UserInstallation={(tmp / 'profile').as_uri()}"
    command = [program, profile, "--headless", "--convert-to", target, "--outdir", str(tmp / "out"), f"in.{source}"]
    subprocess.run(command, cwd=tmp, capture_output=True, timeout=300, check=True)
    return (tmp / "out" / f"in.{target}").read_bytes()


@needs_soffice
@pytest.mark.parametrize(
    ("target", "source", "make", "word", "page"),
    [
        ("odt", "docx", _docx, "Apricot", 1),
        ("rtf", "docx", _docx, "Quince", 1),
        ("doc", "docx", _docx, "Persimmon", 1),
        ("ods", "xlsx", _xlsx, "Loquat", 1),
        ("xls", "xlsx", _xlsx, "Medlar", 1),
        ("odp", "pptx", _pptx, "Rambutan", 2),
        ("ppt", "pptx", _pptx, "Durian", 2),
    ],
)
def test_odf_rtf_and_legacy_office_files_are_indexed_and_found(
    client: httpx.Client,
    docs_collection: str,
    tmp_path: Path,
    target: str,
    source: str,
    make: Any,
    word: str,
    page: int,
) -> None:
    """The ODF, RTF and legacy formats, made by LibreOffice from the OOXML files above (legacy ones are known by
    their file name: an OLE2 container does not say which program wrote it)."""
    data = _saved_as(make(f"{word} ledger"), source, target, tmp_path)
    doc_id = f"saved_{target}"
    files = {"file": (f"saved.{target}", data, "application/octet-stream")}
    response = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": doc_id})
    assert response.status_code == 201, response.text
    assert_found(client, docs_collection, word, doc_id, page)
