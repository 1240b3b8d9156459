"""A document's file — uploaded as a multipart part, or fetched from a URL — as the source the write path takes.

:func:`file_source` is the one place an upload's bytes become a :class:`~service.collections.indexing.DocumentSource`
(a page document: PDF, office file, e-book, web page, image) or a :class:`~service.collections.texts.TextSource`
(text and code), with the checks made before any conversion: the converter picked by the declared name and the
bytes (:func:`service.collections.converters.pick`), the size cap of its kind (413 naming the setting), an empty
file (422), bytes that are not the PDF or image they look like (415 naming what they are).

:func:`fetch_document` downloads a URL under the guard every remote input takes (:mod:`service.embeddings.media`:
off unless ``JEV4_ALLOW_REMOTE_URLS``, allowed hosts, no private or loopback address, each redirect checked, the
size cap checked before and while reading, a time limit), then :func:`file_source` with the URL path's last
segment as the declared name. The HTTP route's ``{"url": …}`` body and the MCP tool ``add_document`` both use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from model.errors import NotAnImageError
from model.images import describe_bytes, identify_image
from service.collections.converters import TEXT, pick
from service.collections.converters.describe import unsupported_message
from service.collections.indexing import DocumentSource
from service.collections.texts import TextSource
from service.embeddings.media import MediaLimits, fetch_bytes, is_url, wrong_kind
from service.errors import PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError, naming
from service.settings import env_name

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["check_kind", "fetch_document", "file_source", "url_file_name"]


def file_source(
    data: bytes,
    settings: Settings,
    *,
    what: str,
    path: str | None,
    language: str | None = None,
    pages: str | None = None,
    ocr: str | None = None,
) -> DocumentSource | TextSource:
    """``data`` as the source of one document (module doc); ``path``: its declared name or path (its extension
    names a text/code language; some page formats are told by it), ``what``: how errors name the input."""
    kind = pick(data, path=path, language=language)
    if kind == TEXT:
        return TextSource(data, path or f"document.{language}", language)
    setting = "max_download_bytes" if kind == "image" else "max_pdf_bytes"  # documents (PDF, e-book) share one cap
    max_bytes = getattr(settings, setting)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"{what}: {len(data)} bytes, more than the limit of {max_bytes} for a {kind} ({env_name(setting)})"
        )
    if not data:
        raise UnprocessableError(f"{what}: the file is empty", code="empty_input")
    if kind in ("pdf", "image"):  # the other formats' converters name what is wrong when they convert
        check_kind(data, kind, what)
    return DocumentSource(data, kind, pages, ocr)


def url_file_name(url: str) -> str | None:
    """The file name a URL names: its path's last segment, percent-decoded (None for ``https://host/``).

    >>> url_file_name("https://example.com/files/Q3%20report.pdf?x=1"), url_file_name("https://example.com/")
    ('Q3 report.pdf', None)
    """
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name.replace("\\", "/").rsplit("/", 1)[-1] or None


async def fetch_document(
    url: str,
    settings: Settings,
    *,
    language: str | None = None,
    pages: str | None = None,
    ocr: str | None = None,
) -> tuple[DocumentSource | TextSource, str | None]:
    """The document at ``url`` (fetched under the guard, module doc) and its file name (None when the URL names
    none); errors name the input ``url``."""
    url = url.strip()
    if not is_url(url):
        raise UnprocessableError(f'"url" must be an http(s) URL, got {url[:80]!r}', code="invalid_url")
    limits = MediaLimits.from_settings(settings, "max_pdf_bytes")
    with naming((PayloadTooLargeError, "max_pdf_bytes")):
        data = await fetch_bytes(url, limits, what="url")
    name = url_file_name(url)
    return file_source(
        data, settings, what=f"url {url[:200]!r}", path=name, language=language, pages=pages, ocr=ocr
    ), name


# What to send instead of a file that is neither a PDF nor an image (see ``media.wrong_kind``).
_INSTEAD = {
    "pdf": 'send a PDF as "pdf" (JSON) or as the multipart "file" part',
    "text": "page documents are PDFs and images (PNG, JPEG, WebP, GIF, BMP, TIFF); a text or code document needs "
    'a known extension in its file name or "path" (.py, .js, .ts, .go, .rs, .java, .c, .cpp, .sh, .md, .txt, '
    '…) or a "language" field (e.g. "text")',
}


def check_kind(data: bytes, kind: str, what: str) -> None:
    """415 naming the input when the bytes are not the kind they were given as (a PDF sent as an image, a
    code file uploaded as a page document); reads headers only."""
    if kind == "pdf":
        looks_like, description = describe_bytes(data[:4096])
        if looks_like != "pdf":
            raise UnsupportedMediaTypeError(
                f'{what}: not a PDF: the bytes look like {description}; send images as "image"',
                code="invalid_pdf",
            )
        return
    known = unsupported_message(what, data)  # a Word file, an archive, a program: say what it is and what to send
    if known is not None:
        raise UnsupportedMediaTypeError(known, code="unsupported_format")
    try:
        identify_image(data, what)
    except NotAnImageError as exc:
        raise wrong_kind(what, exc, _INSTEAD) from None
