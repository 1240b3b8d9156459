"""Hostile office files are bounded (issue 27, "Hostile files"): an XLSX zip bomb and a 10,000-slide deck are
413 before LibreOffice starts; a document that lays out to more pages than the cap is 413 after its conversion;
each time nothing is stored and no LibreOffice process is left behind."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.collections.converters import office
from service.collections.converters.office_checks import MAX_UNPACKED_BYTES, check_before_conversion
from tests.service.helpers import module_collection

NAME = "hostile-office"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/></Types>'
)


@pytest.fixture(scope="module")
def pages(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def _zip_bomb_xlsx(unpacked: int) -> bytes:
    """An XLSX whose one sheet is ``unpacked`` bytes of the same row, deflated (a few hundred KB)."""
    out = io.BytesIO()
    row = b'<row><c t="n"><v>1</v></c><c t="n"><v>2</v></c></row>'
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        z.writestr("xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>')
        member = zipfile.ZipInfo("xl/worksheets/sheet1.xml")
        member.compress_type = zipfile.ZIP_DEFLATED  # a ZipInfo's own default is stored
        with z.open(member, "w", force_zip64=True) as sheet:
            block = row * (1 << 16)
            for _ in range(unpacked // len(block) + 1):
                sheet.write(block)
    return out.getvalue()


def _deck(slides: int) -> bytes:
    """A PPTX container with ``slides`` slide members (enough structure to be sniffed as PowerPoint)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        z.writestr("ppt/presentation.xml", "<p:presentation/>")
        for n in range(1, slides + 1):
            z.writestr(f"ppt/slides/slide{n}.xml", "<p:sld/>")
    return out.getvalue()


def _soffice_processes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if "soffice" in line and "jev4-office-" in line]


def _refused(client: httpx.Client, name: str, data: bytes, document_id: str) -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    response = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": document_id})
    assert client.get(f"/v1/collections/{NAME}/documents/{document_id}").status_code == 404  # nothing stored
    assert _soffice_processes() == []
    return response


def test_an_xlsx_zip_bomb_is_refused_before_conversion(client: httpx.Client, pages: str) -> None:
    bomb = _zip_bomb_xlsx(MAX_UNPACKED_BYTES + 1)
    assert len(bomb) < 4 * 1024 * 1024 < MAX_UNPACKED_BYTES  # the test server's body cap is 4 MiB
    response = _refused(client, "sheet.xlsx", bomb, "bomb")
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert "an XLSX workbook (Excel) unpacks to" in message
    assert "convert it to PDF yourself" in message


def test_a_10000_slide_deck_is_refused_before_conversion(client: httpx.Client, pages: str) -> None:
    response = _refused(client, "deck.pptx", _deck(10_000), "deck")
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_many_pages"
    assert "has 10000 slides, more than the limit of 12 pages" in response.json()["error"]["message"]


def test_a_docx_declaring_too_many_pages_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("docProps/app.xml", "<Properties><Pages>10000</Pages></Properties>")
    from model.errors import TooManyPagesError

    with pytest.raises(TooManyPagesError, match="has 10000 pages"):
        check_before_conversion("docx", out.getvalue(), "a DOCX document (Word)", 2000)
    check_before_conversion("docx", out.getvalue(), "a DOCX document (Word)", 10_000)  # at the cap: converted


@pytest.mark.skipif(office.soffice() is None, reason="LibreOffice absent: bash scripts/setup.sh --office")
def test_a_document_laid_out_past_the_cap_is_refused_after_conversion(client: httpx.Client, pages: str) -> None:
    docx = pytest.importorskip("docx", reason="python-docx (a dev dependency) builds the DOCX")
    document = docx.Document()
    for n in range(30):  # 30 pages; the test server takes 8 per request that waits
        document.add_paragraph(f"page {n}")
        document.add_page_break()
    out = io.BytesIO()
    document.save(out)
    response = _refused(client, "long.docx", out.getvalue(), "long")
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_many_pages"


def _odt_with_load_macro(marker: str, words: str) -> bytes:
    """An ODT holding a Basic module whose ``Main`` writes ``marker``, bound to the document's load event."""
    office_ns = 'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {office_ns} '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.3">'
        '<office:scripts><office:event-listeners><script:event-listener script:language="ooo:script" '
        'script:event-name="dom:load" xlink:type="simple" '
        'xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"/>'
        "</office:event-listeners></office:scripts>"
        f"<office:body><office:text><text:p>{words}</text:p></office:text></office:body></office:document-content>"
    )
    module = (
        '<?xml version="1.0" encoding="UTF-8"?><script:module xmlns:script="http://openoffice.org/2000/script" '
        'script:name="Module1" script:language="StarBasic">Sub Main\n'
        f'Open "{marker}" For Output As #1\nPrint #1, "ran"\nClose #1\nEnd Sub\n</script:module>'
    )
    library = (
        '<?xml version="1.0" encoding="UTF-8"?><library:library xmlns:library="http://openoffice.org/2000/library" '
        'library:name="Standard" library:readonly="false" library:passwordprotected="false">'
        '<library:element library:name="Module1"/></library:library>'
    )
    libraries = (
        '<?xml version="1.0" encoding="UTF-8"?><library:libraries xmlns:library="http://openoffice.org/2000/library" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><library:library library:name="Standard" library:link="false"/>'
        "</library:libraries>"
    )
    entries = ["/", "content.xml", "Basic/", "Basic/script-lc.xml", "Basic/Standard/", "Basic/Standard/script-lb.xml"]
    entries.append("Basic/Standard/Module1.xml")
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        + "".join(
            f'<manifest:file-entry manifest:full-path="{e}" manifest:media-type="'
            + ("application/vnd.oasis.opendocument.text" if e == "/" else "text/xml" if e.endswith(".xml") else "")
            + '"/>'
            for e in entries
        )
        + "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")  # stored, first
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
        z.writestr("Basic/script-lc.xml", libraries)
        z.writestr("Basic/Standard/script-lb.xml", library)
        z.writestr("Basic/Standard/Module1.xml", module)
    return out.getvalue()


def test_the_office_profile_disables_macros() -> None:
    settings = office.PROFILE_SETTINGS
    assert '<prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop>' in settings
    assert '<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop>' in settings


@pytest.mark.skipif(office.soffice() is None, reason="LibreOffice absent: bash scripts/setup.sh --office")
def test_a_document_with_a_load_macro_is_indexed_without_running_it(
    client: httpx.Client, pages: str, tmp_path: Path
) -> None:
    marker = f"{tmp_path}/macro-ran"
    odt = _odt_with_load_macro(marker, "quarterly zeppelin ledger")
    files = {"file": ("macro.odt", odt, "application/vnd.oasis.opendocument.text")}
    response = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": "macro"})
    assert response.status_code == 201, response.text  # a bounded, safe result: its pages, with its text
    hits = client.post(f"/v1/collections/{NAME}/search", json={"query": "zeppelin", "mode": "text"}).json()
    assert [h["document_id"] for h in hits["results"]][:1] == ["macro"]
    assert not os.path.exists(marker)  # the macro did not run
    assert _soffice_processes() == []
