"""An upload no converter takes answers 415 ``unsupported_format`` naming what the file is and what each kind of
collection takes (before: "not an image … send a PNG, JPEG…")."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from service.collections.converters.describe import looks_like

NAME = "unsupported-formats"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module", params=["page", "chunk"])
def collection(client: httpx.Client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{NAME}-{request.param}"
    client.delete(f"/v1/collections/{name}")
    assert client.post("/v1/collections", json={"name": name, "unit_kind": request.param}).status_code == 201
    yield name
    client.delete(f"/v1/collections/{name}")


def test_known_formats_are_named() -> None:
    assert looks_like(_zip({"a.txt": b"x"})) == "a ZIP archive"
    assert looks_like(_zip({"xl/workbook.xml": b"<x/>"})) == "an XLSX workbook (Excel)"
    assert looks_like(b"MZ\x90\x00" + bytes(60)) == "a Windows executable"
    assert looks_like(b"\x7fELF\x02\x01") == "a Linux executable (ELF)"
    assert looks_like(b"%PDF-1.7") is None  # a format a collection takes is not "unsupported"


@pytest.mark.parametrize(
    ("filename", "make", "named"),
    [
        (
            "old.bin",
            lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
            "a legacy Office document (DOC, XLS or PPT)",
        ),
        ("backup.7z", lambda: b"7z\xbc\xaf\x27\x1c" + bytes(100), "a 7-Zip archive"),
        ("setup.exe", lambda: b"MZ\x90\x00" + bytes(200), "a Windows executable"),
        ("bundle.zip", lambda: _zip({"notes/a.bin": b"\x00\x01"}), "a ZIP archive"),
    ],
)
def test_unsupported_upload_names_the_format_and_what_to_send(
    client: httpx.Client, collection: str, filename: str, make: object, named: str
) -> None:
    assert callable(make)
    response = client.post(f"/v1/collections/{collection}/documents", files={"file": (filename, make(), "x/y")})
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_format"
    assert f"file {filename!r}: {named} is not a format" in error["message"]
    assert "a page collection takes PDF document" in error["message"]
    assert "EPUB e-book" in error["message"]
    assert "a text/code collection takes text and code files" in error["message"]
    assert "not an image" not in error["message"]
    if filename == "old.bin":  # an office file LibreOffice is not told the type of (no .doc/.xls/.ppt name)
        assert "convert it to PDF" in error["message"]
    assert client.get(f"/v1/collections/{collection}").json()["documents"] == 0
