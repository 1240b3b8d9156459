"""``python -m service index DIR`` into a page collection (issue 27 item 6): every supported format under the
folder is indexed (PDF, image, EPUB, HTML, Markdown), and what is skipped is counted by suffix with a reason that
says what to do (a program: not a document; an office file without LibreOffice: the setup flag; code: --text)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import service.collections.converters.office as office
from service.__main__ import main
from tests.service.collections.converters.files import epub_bytes
from tests.service.helpers import pdf_bytes, png_bytes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    (root / "books").mkdir(parents=True)
    (root / "report.pdf").write_bytes(pdf_bytes(1))
    (root / "chart.png").write_bytes(png_bytes())
    (root / "books" / "tides.epub").write_bytes(epub_bytes(["Spring tides flood the estuary"]))
    (root / "notes.md").write_text("# Minutes\n\nThe quartermaster signed the manifest.\n")
    (root / "page.html").write_text("<html><body><p>Harbour ferry timetable</p></body></html>")
    (root / "setup.exe").write_bytes(b"MZ" + bytes(300))
    (root / "tool.exe").write_bytes(b"MZ" + bytes(200))
    (root / "letter.docx").write_bytes(_docx())
    (root / "script.py").write_text("print('hello')\n")
    return root


def _docx() -> bytes:
    import io

    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Dear committee")
    document.save(buffer)
    return buffer.getvalue()


def test_a_folder_of_every_format(
    folder: Path,
    tmp_path: Path,
    service_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("JEV4_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JEV4_PDF_DPI", "36")
    monkeypatch.setenv("JEV4_IMAGE_MAX_PIXELS", str(64 * 28 * 28))
    monkeypatch.setenv("JEV4_OCR", "never")
    monkeypatch.setattr(office, "soffice", lambda: None)  # as on a machine without LibreOffice
    common = ["--collection", "archive", "--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data")]
    assert main(["index", str(folder), *common, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        "5 indexed, 4 skipped: 2 × .exe (not a document), "
        "1 × .docx (install LibreOffice: bash scripts/setup.sh --office), "
        "1 × .py (code: index it into a text collection with --text) (collection 'archive')"
    ) in err, err
    assert main(["documents", "list", "--collection", "archive", "--json", "--data-dir", str(tmp_path / "data")]) == 0
    listed = {d["id"]: d["metadata"] for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert sorted(listed) == ["books_tides.epub", "chart.png", "notes.md", "page.html", "report.pdf"]
    assert listed["books_tides.epub"] == {"source": "books/tides.epub", "kind": "epub"}
    assert listed["notes.md"]["kind"] == "text"
    for word, document in (("quartermaster", "notes.md"), ("estuary", "books_tides.epub"), ("ferry", "page.html")):
        assert main(["search", word, "--mode", "text", "--json", *common]) == 0
        hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert hits[0]["document_id"] == document, (word, hits)
