"""Read the body of ``POST /v1/collections/{name}/documents``: JSON or a multipart upload.

- ``Content-Type: application/json`` (or none): :class:`~service.collections.schemas.AddDocumentRequest`,
  exactly one of ``pdf`` / ``image`` as base64, a data URI or an http(s) URL (guarded like every remote
  input: off unless enabled, allow-listed hosts, no private addresses; see ``service.embeddings.media``), or
  ``text`` (a text or code document as a JSON string, with its ``path`` and/or ``language``), or ``url``: any
  document a collection takes (PDF, office file, e-book, image, web page, text/code) fetched under the same guard
  and then read as a multipart file named by the URL's last path segment
  (:func:`service.collections.upload_files.fetch_document`); the URL becomes the ``source`` metadata key unless
  the metadata sets one, the file name the default document id.
- ``Content-Type: multipart/form-data``: a ``file`` part and optional text parts ``metadata`` (a JSON object),
  ``pages``, ``ocr`` (``auto`` | ``always`` | ``never``: :mod:`model.ocr`), ``document_id``, ``replace``
  (true/false), ``path`` and ``language``. The converter is picked by
  :func:`service.collections.converters.pick`: a text/code document when ``language`` is given or its name
  (``path``, else the part's filename) has a known text/code extension (``.py``, ``.md``, …); else a PDF or an
  image, told apart by the bytes, not by the declared type. The part's file name is kept: it becomes the document
  id when none is given (:func:`document_id_from_name`) and the ``source`` metadata key unless the metadata sets
  one.
- anything else: 415.

With ``JEV4_KEEP_ORIGINALS`` on, :meth:`DocumentUpload.original` is the file kept with the document (bytes, media
type read from the bytes, file name; a JSON upload has no file name).

Sizes: a PDF at most ``max_pdf_bytes``, an image at most ``max_download_bytes`` (413); the whole body is
capped by the app's ``max_body_bytes`` before any of this runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.datastructures import UploadFile
from PIL import Image

from colbert.store import OriginalFile
from model.errors import ImageError
from model.images import identify_image
from model.ocr import OCR_MODES
from service.collections.indexing import DocumentSource
from service.collections.schemas import DOCUMENT_ID_PATTERN, AddDocumentRequest
from service.collections.texts import TextSource
from service.collections.upload_files import check_kind, fetch_document, file_source
from service.embeddings.media import MediaLimits, load_source
from service.errors import (
    BadRequestError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

if TYPE_CHECKING:
    from litestar import Request

    from colbert.store import Store
    from service.settings import Settings

__all__ = ["DocumentUpload", "StoredForm", "read_upload"]

_DOC_ID = re.compile(DOCUMENT_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class DocumentUpload:
    source: DocumentSource | TextSource
    metadata: dict[str, Any] | None
    document_id: str | None
    replace: bool
    filename: str | None = None  # the multipart part's file name (its last path component)
    path: str | None = None  # a text document's path as sent ("path" field, else the part's file name)
    # the CLI: ``document_id`` was derived from the file's path (its folder walk), not chosen by the user, so the
    # duplicate policy applies as to a default id
    id_from_path: bool = False
    # the CLI's incremental re-index: a text document whose content_hash is unchanged is not embedded again
    skip_unchanged: bool = False
    url: str | None = None  # where the document was fetched from ({"url": …}): its ``source`` metadata

    def original(self) -> OriginalFile:
        """The uploaded file as kept with the document when ``JEV4_KEEP_ORIGINALS`` is on: its bytes, the media
        type read from the bytes (not from the client's Content-Type), its file name with control characters
        replaced by ``_`` and at most 1024 characters (what the store accepts: checked here, before embedding)."""
        name = None if self.filename is None else _CONTROL.sub("_", self.filename)[:1024] or None
        kind = "text" if isinstance(self.source, TextSource) else self.source.kind
        return OriginalFile(self.source.data, media_type_of(self.source.data, kind), name)

    async def stored_form(self, store: Store, *, keep_original: bool) -> StoredForm:
        """What this upload is stored as in ``store``, in one call: its document id (``document_id``, else
        :meth:`default_id`, else a random one), the metadata to store (:meth:`_metadata_to_store`) and, when
        ``keep_original`` (``JEV4_KEEP_ORIGINALS``), the file kept with it (:meth:`original`)."""
        document_id = self.document_id or self.default_id() or uuid.uuid4().hex
        metadata = await self._metadata_to_store(store, document_id)
        return StoredForm(document_id, metadata, self.original() if keep_original else None)

    async def _metadata_to_store(self, store: Store, document_id: str) -> dict[str, Any] | None:
        """A replace without metadata keeps the document's; else the metadata given, with the URL it was fetched
        from, else the uploaded file's name, as ``source`` unless it sets one."""
        if self.metadata is None and self.replace:
            existing = await asyncio.to_thread(store.get_document, document_id)
            if existing is not None:
                return existing.metadata
        origin = self.url or self.filename
        if origin is not None and "source" not in (self.metadata or {}):
            return {"source": origin, **(self.metadata or {})}
        return self.metadata

    def default_id(self) -> str | None:
        """The document id when none was given: a text document's whole path (:func:`document_id_from_path`,
        as the CLI names files), else the file name (:func:`document_id_from_name`)."""
        if self.path:
            return document_id_from_path(self.path)
        return None if self.filename is None else document_id_from_name(self.filename)


@dataclass(frozen=True, slots=True)
class StoredForm:
    """An upload as it is stored (:meth:`DocumentUpload.stored_form`): the id, the metadata, the original kept."""

    document_id: str
    metadata: dict[str, Any] | None
    original: OriginalFile | None  # None: originals are not kept (JEV4_KEEP_ORIGINALS off)


def media_type_of(data: bytes, kind: str) -> str:
    """The media type of an uploaded document's bytes: ``application/pdf``, the image format's type (``image/png``,
    ``image/jpeg``, ...) from its header, an e-book's type (``application/epub+zip``, ...) or (text/code
    documents) ``text/plain; charset=utf-8``."""
    if kind == "pdf":
        return "application/pdf"
    if kind == "image":
        try:
            return Image.MIME.get(identify_image(data), "application/octet-stream")
        except ImageError:
            return "application/octet-stream"
    return _MEDIA_TYPES.get(kind, "text/plain; charset=utf-8")


_MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "rtf": "application/rtf",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "epub": "application/epub+zip",
    "xps": "application/oxps",
    "fb2": "application/x-fictionbook+xml",
    "mobi": "application/x-mobipocket-ebook",
    "cbz": "application/vnd.comicbook+zip",
    "svg": "image/svg+xml",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@=+-]")
_FIRST = re.compile(r"[A-Za-z0-9_]")  # what an id may start with (DOCUMENT_ID_PATTERN)


def document_id_from_name(name: str) -> str:
    """A file name as a document id: its last path component, kept as given when it is a valid id
    (``DOCUMENT_ID_PATTERN``: ``A-Za-z0-9._:@=+-``, starting with a letter, digit or ``_``); else each character
    outside that set, and a first character that cannot start an id, is replaced by ``_``. Never longer than 256
    characters; nothing is prefixed.

    >>> document_id_from_name("src/_compat.py"), document_id_from_name("scans/Q3 report (final).pdf")
    ('_compat.py', 'Q3_report__final_.pdf')
    >>> document_id_from_name(".env")
    '_env'
    """
    return _as_id(re.split(r"[/\\]", name)[-1] or "file")[:256]


def document_id_from_path(path: str) -> str:
    """A text document's path as its id (the CLI's rule): ``/`` and the characters outside the id's set -> ``_``,
    a first character that cannot start an id -> ``_`` (as :func:`document_id_from_name`), its last 256
    characters.

    >>> document_id_from_path("src/app/main.py"), document_id_from_path("_compat.py")
    ('src_app_main.py', '_compat.py')
    """
    return _as_id(path.replace("\\", "/").strip("/") or "file")[-256:]


def _as_id(name: str) -> str:
    ident = _UNSAFE.sub("_", name)
    return ident if _FIRST.match(ident) else f"_{ident[1:]}"


async def read_upload(request: Request[Any, Any, Any], settings: Settings) -> DocumentUpload:
    """Parse and load the document of one request (see the module doc)."""
    content_type = request.headers.get("content-type")
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return await _from_form(request, settings)
    if media == "application/json" or media.endswith("+json"):
        return await _from_json(await request.body(), settings)
    raise UnsupportedMediaTypeError(
        f"expected Content-Type application/json or multipart/form-data, got {media!r}",
        code="unsupported_media_type",
    )


async def _from_json(body: bytes, settings: Settings) -> DocumentUpload:
    try:
        data = msgspec.json.decode(body, type=AddDocumentRequest)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(f"invalid request body: {exc}", code="validation_error") from None
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    given = [kind for kind in ("pdf", "image", "text", "url") if getattr(data, kind) is not None]
    if len(given) != 1:
        raise UnprocessableError(
            f'expected exactly one of "pdf", "image", "text" or "url", got {" and ".join(given) or "none"}',
            code="invalid_input",
        )
    kind = given[0]
    if data.url is not None:
        fetched, name = await fetch_document(data.url, settings, language=data.language, pages=data.pages, ocr=data.ocr)
        text_path = name if isinstance(fetched, TextSource) else None
        return DocumentUpload(fetched, data.metadata, data.document_id, data.replace, name, text_path, url=data.url)
    if data.text is not None:
        path = data.path or (f"document.{data.language}" if data.language else "")
        if not path:
            raise UnprocessableError(
                'a "text" document needs "path" (e.g. "src/app.py": its extension names the language) or "language"',
                code="invalid_input",
            )
        text_source = TextSource(data.text.encode("utf-8", errors="surrogatepass"), path, data.language)
        return DocumentUpload(text_source, data.metadata, data.document_id, data.replace, path=data.path)
    value: str = getattr(data, kind)
    setting = "max_pdf_bytes" if kind == "pdf" else "max_download_bytes"
    raw = await load_source(value, MediaLimits.from_settings(settings, setting), what=kind)
    check_kind(raw, "pdf" if kind == "pdf" else "image", f'"{kind}"')
    source = DocumentSource(raw, "pdf" if kind == "pdf" else "image", data.pages, data.ocr)
    return DocumentUpload(source, data.metadata, data.document_id, data.replace)


async def _read_form(request: Request[Any, Any, Any]) -> Any:
    """The parsed form; a part without a file name (``filename=""`` included) is a text field to Litestar, so
    bytes that are not UTF-8 in one are a 400 saying so, not a 500."""
    try:
        return await request.form()
    except UnicodeDecodeError:
        raise BadRequestError(
            'multipart: a part without a file name (or with filename="") is read as a text field, and its bytes '
            'are not UTF-8 text; send the file as a part with a file name, e.g. filename="page.pdf"',
            code="invalid_multipart",
        ) from None


async def _from_form(request: Request[Any, Any, Any], settings: Settings) -> DocumentUpload:
    form = await _read_form(request)
    fields = {"file", "metadata", "pages", "ocr", "document_id", "replace", "path", "language"}
    unknown = sorted(set(form.keys()) - fields)
    if unknown:
        raise UnprocessableError(f"unknown form field(s): {', '.join(unknown)}", code="invalid_input")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise UnprocessableError('the form needs a "file" part holding the PDF or image', code="invalid_input")
    data = await upload.read()
    document_id = _text(form.get("document_id"), "document_id")
    if document_id is not None and not _DOC_ID.match(document_id):
        raise UnprocessableError(
            f"document_id must match {DOCUMENT_ID_PATTERN}, got {document_id[:80]!r}", code="validation_error"
        )
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1] if upload.filename else None
    path = _text(form.get("path"), "path") or upload.filename or ""
    language = _text(form.get("language"), "language") or None
    what = f"file {upload.filename!r}" if upload.filename else "file"
    pages = _text(form.get("pages"), "pages") or None
    source = file_source(
        data, settings, what=what, path=path, language=language, pages=pages, ocr=_ocr_mode(form.get("ocr"))
    )
    text_path = (path or None) if isinstance(source, TextSource) else None
    return DocumentUpload(
        source, _metadata(form.get("metadata")), document_id, _flag(form.get("replace")), filename or None, text_path
    )


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnprocessableError(f"form field {field!r} must be text, not a file", code="invalid_input")
    return value


def _ocr_mode(value: Any) -> str | None:
    """The form's ``ocr`` (None when absent: the server's default, JEV4_OCR)."""
    mode = (_text(value, "ocr") or "").strip().lower()
    if not mode:  # absent or empty, as other optional form fields: the server's default
        return None
    if mode not in OCR_MODES:
        raise UnprocessableError(
            f"form field 'ocr' must be one of {', '.join(OCR_MODES)}, got {mode[:20]!r}", code="invalid_input"
        )
    return mode


def _metadata(value: Any) -> dict[str, Any] | None:
    text = _text(value, "metadata")
    if text is None or not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnprocessableError(f"form field 'metadata' is not valid JSON: {exc}", code="invalid_input") from None
    except RecursionError:  # the parser stops at the interpreter's recursion limit (~1000 levels)
        raise UnprocessableError(
            "form field 'metadata' is nested too deeply; send a flat JSON object of key -> value",
            code="invalid_input",
        ) from None
    if not isinstance(parsed, dict):
        raise UnprocessableError(
            f"form field 'metadata' must be a JSON object, got {type(parsed).__name__}", code="invalid_input"
        )
    return parsed


def _flag(value: Any) -> bool:
    text = (_text(value, "replace") or "false").strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise UnprocessableError(f"form field 'replace' must be true or false, got {text[:20]!r}", code="invalid_input")
