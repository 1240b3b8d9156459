"""Service errors and the ONE table mapping every known error to an HTTP status and a JSON body.

Body of every error response (OpenAI-shaped, Jina's ``error.message`` included)::

    {"error": {"message": "input 2 has 40000 tokens, more than the limit of 32768; ...",
               "type": "invalid_request_error", "code": "input_too_long"}}

::

    ServiceError                         status  type
    ├── BadRequestError                  400     invalid_request_error  (the body cannot be read)
    ├── UnauthorizedError                401     authentication_error
    ├── NotFoundError                    404     not_found_error
    ├── ConflictError                    409     conflict_error
    ├── PayloadTooLargeError             413     request_too_large
    ├── UnsupportedMediaTypeError        415     invalid_request_error
    ├── UnprocessableError               422     invalid_request_error  (readable, but a value is invalid)
    │   ├── DownloadError                422     (code download_failed)
    │   ├── RemoteURLDisabledError       422     (code remote_urls_disabled)
    │   └── URLNotAllowedError           422     (code url_not_allowed: scheme, host, or a private address)
    ├── QueueFullError                   429     rate_limit_error  (+ Retry-After)
    ├── NotReadyError                    503     service_unavailable
    ├── (disk full: ENOSPC / SQLITE_FULL) 507    insufficient_storage
    ├── ClientDisconnectedError          499     (logged only: the client is gone)
    └── ModelFailureError                500     server_error  (the model failed on a batch, not the caller)

The status policy (``docs/errors.md``): 400 only when the body cannot be read (malformed JSON or multipart);
413 when something is over a configured limit (the message names the ``JEV4_*`` setting where there is one);
415 when the Content-Type, or the bytes given for a field, are not of a kind it accepts (a PDF sent as an
image); 422 when the body was read but a value is invalid (schema, task, dimensions, pages, URL refused, ...).

The CLI prints the same message (``error: <message>``) and exits with :func:`cli_exit_status` of the same
mapping, so one mistake reads the same over HTTP and on the command line.

Errors of ``model`` (and ``colbert``) are mapped by :data:`ERROR_TABLE`; Litestar's own exceptions (unknown
route, malformed JSON, schema validation, body too large) by ``service.http.exception_handlers``. Anything else is
a 500 whose body says only "internal server error" (the traceback goes to the log with the request id).
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from colbert import errors as ce
from model import errors as me
from service.settings_rules import env_name

__all__ = [
    "ERROR_TABLE",
    "BadRequestError",
    "ClientDisconnectedError",
    "ConflictError",
    "DownloadError",
    "DuplicateDocumentError",
    "ErrorInfo",
    "ModelFailureError",
    "NotFoundError",
    "NotReadyError",
    "PayloadTooLargeError",
    "QueueFullError",
    "RemoteURLDisabledError",
    "ServiceError",
    "URLNotAllowedError",
    "UnauthorizedError",
    "UnprocessableError",
    "UnsupportedMediaTypeError",
    "cli_exit_status",
    "error_info",
    "name_setting",
    "naming",
]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What the HTTP edge sends for one error."""

    status: int
    type: str
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}``, plus ``detail`` (the message again): Jina's API answers errors with ``detail``
        and its published clients (LangChain, LlamaIndex, Haystack) raise ``resp["detail"]``."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code}, "detail": self.message}


class ServiceError(Exception):
    """Base of the service's own errors; ``status``/``type``/``code`` are the HTTP mapping."""

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def headers(self) -> tuple[tuple[str, str], ...]:
        return ()


class BadRequestError(ServiceError):
    """The body cannot be read (malformed JSON or multipart); an invalid VALUE is an UnprocessableError."""

    status, type, code = 400, "invalid_request_error", "invalid_request"


class UnauthorizedError(ServiceError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class NotFoundError(ServiceError):
    status, type, code = 404, "not_found_error", "not_found"


class ConflictError(ServiceError):
    """The request does not fit the resource's state (e.g. a text document for a collection of pages)."""

    status, type, code = 409, "conflict_error", "conflict"


class PayloadTooLargeError(ServiceError):
    status, type, code = 413, "request_too_large", "request_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class UnprocessableError(ServiceError):
    status, type, code = 422, "invalid_request_error", "unprocessable_input"


class DownloadError(UnprocessableError):
    code = "download_failed"


class RemoteURLDisabledError(UnprocessableError):
    code = "remote_urls_disabled"


class URLNotAllowedError(UnprocessableError):
    code = "url_not_allowed"


class DuplicateDocumentError(ServiceError):
    """An upload's bytes are already stored as another document and the duplicate policy refuses copies."""

    status, type, code = 409, "conflict_error", "duplicate_document"

    def __init__(self, message: str, *, existing_id: str) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class QueueFullError(ServiceError):
    """The batcher's queue is full; the client should retry after ``retry_after`` seconds."""

    status, type, code = 429, "rate_limit_error", "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Retry-After", str(self.retry_after)),)


class NotReadyError(ServiceError):
    status, type, code = 503, "service_unavailable", "model_not_ready"


class ClientDisconnectedError(ServiceError):
    """The client went away before the answer was ready (logged as 499; nothing can be sent)."""

    status, type, code = 499, "client_closed_request", "client_disconnected"


class ModelFailureError(ServiceError):
    """The model raised on a batch for a reason that is not the caller's input (e.g. out of memory)."""

    status, type, code = 500, "server_error", "model_failure"


# (exception class, status, type, code); the first matching row (in order) wins, so subclasses come first.
ERROR_TABLE: list[tuple[type[BaseException], int, str, str]] = [
    (me.InvalidTaskError, 422, "invalid_request_error", "invalid_task"),
    (me.InvalidDimensionError, 422, "invalid_request_error", "invalid_dimensions"),
    (me.InputTooLongError, 413, "request_too_large", "input_too_long"),
    (me.EmptyInputError, 422, "invalid_request_error", "empty_input"),
    (me.ImageTooLargeError, 413, "request_too_large", "image_too_large"),
    (me.ImageAspectRatioError, 422, "invalid_request_error", "invalid_image_shape"),
    (me.ImageModeError, 422, "invalid_request_error", "unsupported_image_mode"),
    (me.ImageError, 415, "invalid_request_error", "invalid_image"),
    (me.TooManyPagesError, 413, "request_too_large", "too_many_pages"),
    (me.PageSelectionError, 422, "invalid_request_error", "invalid_pages"),
    (me.PdfTooLargeError, 413, "request_too_large", "pdf_too_large"),
    (me.PdfEncryptedError, 422, "invalid_request_error", "pdf_encrypted"),
    (me.PdfRepairedError, 422, "invalid_request_error", "pdf_damaged"),
    (me.PdfError, 415, "invalid_request_error", "invalid_pdf"),
    (me.InputError, 422, "invalid_request_error", "invalid_input"),
    (me.CheckpointError, 503, "service_unavailable", "model_unavailable"),
    (ce.CollectionNotFoundError, 404, "not_found_error", "collection_not_found"),
    (ce.DocumentNotFoundError, 404, "not_found_error", "document_not_found"),
    (ce.CollectionExistsError, 409, "conflict_error", "collection_exists"),
    (ce.CollectionBusyError, 409, "conflict_error", "collection_busy"),
    (ce.DocumentExistsError, 409, "conflict_error", "document_exists"),
    (ce.InvalidCollectionNameError, 422, "invalid_request_error", "invalid_collection_name"),
    (ce.InvalidFilterError, 422, "invalid_request_error", "invalid_filter"),
    (ce.DimensionMismatchError, 422, "invalid_request_error", "dimension_mismatch"),
    (ce.FirstStageUnavailableError, 422, "invalid_request_error", "first_stage_unavailable"),
    (ce.InvalidQueryError, 422, "invalid_request_error", "invalid_query"),
    (ce.InvalidDocumentError, 422, "invalid_request_error", "invalid_document"),
    (ce.CodecError, 422, "invalid_request_error", "invalid_codec"),
    (ce.IndexFormatError, 503, "service_unavailable", "index_unavailable"),
    (ce.StoreClosedError, 503, "service_unavailable", "index_closed"),
    (ce.StoreBusyError, 503, "service_unavailable", "index_busy"),
]


def cli_exit_status(info: ErrorInfo) -> int:
    """The CLI's exit status for an error the API would answer with ``info`` (printed as ``error: <message>``,
    the API's message): 2 when the command as given cannot run (a value refused: 400, 413, 415, 422; nothing
    could start: 503), 1 when it ran and was refused (the thing named does not exist: 404, a conflict: 409,
    busy: 429, disk full: 507, a failure: 500).

    >>> [cli_exit_status(ErrorInfo(s, "t", "c", "m")) for s in (422, 413, 503, 404, 409, 500)]
    [2, 2, 2, 1, 1, 1]
    """
    return 2 if info.status in (400, 413, 415, 422, 503) else 1


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT anywhere in the exception chain, or SQLite's SQLITE_FULL ("database or disk is full")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(current)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def error_info(exc: BaseException) -> ErrorInfo | None:
    """The HTTP mapping of a known error, or None for an unexpected one (a real 500). A full disk is a 507
    (``insufficient_storage``): nothing was stored, what was there is intact, retry once space is freed."""
    if _disk_full(exc):
        return ErrorInfo(
            507,
            "insufficient_storage",
            "insufficient_storage",
            "the server's disk is full: nothing was stored (existing documents are intact); retry once space is freed",
        )
    if isinstance(exc, ServiceError):
        return ErrorInfo(exc.status, exc.type, exc.code, exc.message, exc.headers())
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):  # msgspec on JSON nested too deeply
        return ErrorInfo(
            400,
            "invalid_request_error",
            "invalid_json",
            "request body is nested too deeply to decode; send flat JSON (objects and lists a few levels deep)",
        )
    for exc_type, status, type_, code in ERROR_TABLE:
        if isinstance(exc, exc_type):
            return ErrorInfo(status, type_, code, _with_setting(exc))
    return None


def _with_setting(exc: BaseException) -> str:
    """The error's message, naming the setting that bounds it where the library cannot (it knows no env vars)."""
    message = str(exc)
    setting = env_name("store_busy_timeout_s")
    if isinstance(exc, ce.StoreBusyError) and setting not in message:
        message += f" (the wait is {setting})"
    return message


# ---- limit errors name the setting that raises them ------------------------------------------------------
# ``model`` knows nothing of settings, so its limit errors (too many pages, bytes, pixels, tokens) are named where
# the service passes it a setting's value: :func:`naming` wraps that call, e.g.
# ``9 pages selected, more than the limit of 8 (JEV4_MAX_PDF_PAGES)``. Errors the service raises itself put
# :func:`env_name` in their message directly.


def name_setting(exc: BaseException, field: str) -> BaseException:
    """Append the setting's variable to the error's message (once); returns the same error."""
    var = env_name(field)
    message = str(exc)
    if var not in message:
        exc.args = (f"{message} ({var})",)
        if isinstance(getattr(exc, "message", None), str):
            exc.message = exc.args[0]  # type: ignore[attr-defined]
    return exc


@contextlib.contextmanager
def naming(*rules: tuple[type[BaseException], str]) -> Iterator[None]:
    """Within the block, an error of a rule's class (first match) gets that rule's setting named."""
    try:
        yield
    except BaseException as exc:
        for cls, field in rules:
            if isinstance(exc, cls):
                name_setting(exc, field)
                break
        raise
