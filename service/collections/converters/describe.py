"""What an unsupported upload looks like, and what a collection takes instead: the words of the 415 an upload gets
when no converter claims it (a Word file, a ZIP, a program), so the answer says what to do rather than "not an
image".

The formats listed come from the registry (:data:`service.collections.converters.FORMATS`) and the text
converter's extensions, so a new converter shows up here without an edit."""

from __future__ import annotations

import io
import zipfile

__all__ = ["looks_like", "supported_formats", "unsupported_message"]

# Members that tell a ZIP-based format apart (checked in order; the first one present wins).
_ZIP_MEMBERS = (
    ("word/document.xml", "a DOCX document (Word)"),
    ("xl/workbook.xml", "an XLSX workbook (Excel)"),
    ("ppt/presentation.xml", "a PPTX presentation (PowerPoint)"),
    ("AndroidManifest.xml", "an Android app (APK)"),
    ("META-INF/MANIFEST.MF", "a Java archive (JAR)"),
)
_ODF = {
    b"application/vnd.oasis.opendocument.text": "an ODT document (OpenDocument text)",
    b"application/vnd.oasis.opendocument.spreadsheet": "an ODS spreadsheet (OpenDocument)",
    b"application/vnd.oasis.opendocument.presentation": "an ODP presentation (OpenDocument)",
}
_MAGIC = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable (ELF)"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable (Mach-O)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document (DOC, XLS or PPT)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio/video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
)


def looks_like(data: bytes) -> str | None:
    """A phrase naming the known format ``data`` is in ("a DOCX document (Word)", "a ZIP archive", ...), or None
    when it is none of those (then :func:`model.images.describe_bytes` says what it can)."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypisom", b"ftypmp42", b"ftypqt  ", b"ftypM4A "):
        return "an MP4/QuickTime video or audio file"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    return None


def _zip_kind(data: bytes) -> str:
    if data[30:38] == b"mimetype":
        for mime, name in _ODF.items():
            if data[38:].startswith(mime):
                return name
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "a ZIP archive (damaged or cut off)"
    return next((name for member, name in _ZIP_MEMBERS if member in names), "a ZIP archive")


def supported_formats() -> str:
    """What each kind of collection takes, for an error message."""
    from service.collections.converters import FORMATS

    pages = ", ".join(c.description.removeprefix("an ").removeprefix("a ") for c in FORMATS)
    return (
        f"a page collection takes {pages}; a text/code collection takes text and code files by extension "
        '(.py, .js, .ts, .go, .rs, .java, .c, .cpp, .sh, .md, .txt, …) or with a "language" field'
    )


def unsupported_message(what: str, data: bytes) -> str | None:
    """The message for an upload no converter takes whose format is known (None when it is not)."""
    name = looks_like(data)
    if name is None:
        return None
    advice = "convert it to PDF and send that" if _is_office(name) else "send one of the formats below"
    return f"{what}: {name} is not a format a collection indexes; {advice}: {supported_formats()}"


def _is_office(name: str) -> bool:
    return any(word in name for word in ("Word", "Excel", "PowerPoint", "OpenDocument", "Office", "RTF"))
