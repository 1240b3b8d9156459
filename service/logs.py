"""Logging setup: JSON lines carrying the request id of the request being served, or plain lines for a person.

``json_lines=None`` (the default, ``JEV4_LOG_JSON`` unset) picks plain lines when stderr is a terminal and JSON
lines otherwise (a file, a pipe, a log collector).

The request id lives in a context variable set by the request middleware (``service.http.middleware``); every log
record emitted while serving that request (in the handler, in the thread pools: contexts are copied) carries
it. Nothing here runs at import time: call :func:`configure_logging` once at start-up.

A JSON line looks like::

    {"ts": "2026-01-01T12:00:00.123Z", "level": "info", "logger": "jev4.access", "msg": "request",
     "request_id": "5f0c…", "method": "POST", "path": "/v1/embeddings", "status": 200, "duration_ms": 12.3}
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["REQUEST_ID", "JsonFormatter", "configure_logging", "configure_logging_from"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("jev4_request_id", default=None)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra={...}`` fields are merged in; exceptions go to ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in out and not key.startswith("_") and key != "color_message":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging_from(settings: Settings) -> None:
    """Configure logging as ``settings`` say (``log_level``, ``log_json``): what each entry point calls."""
    configure_logging(settings.log_level, json_lines=settings.log_json)


def configure_logging(level: str = "info", *, json_lines: bool | None = None) -> None:
    """Route the root, ``jev4.*`` and uvicorn loggers to stderr in the chosen format (None: see the module doc)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else _TextFormatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # our middleware writes the access line (with request id, status and duration); uvicorn's would repeat it
    logging.getLogger("uvicorn.access").disabled = True
