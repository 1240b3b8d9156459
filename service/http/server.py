"""How ``serve`` runs the app: uvicorn with connection-level limits, so idle or slow clients cannot starve others.

uvicorn alone accepts connections until the process runs out of file descriptors and never times out a
connection that has not sent a request (nor one that sends its headers a byte at a time). Here:

- the soft ``RLIMIT_NOFILE`` is raised to the hard limit at start (:func:`raise_open_files_limit`);
- at most :func:`connection_cap` connections are open (``JEV4_MAX_CONNECTIONS``, kept 256 descriptors below the
  open-files limit for the model, SQLite and logs). A connection over the cap closes the one that has waited
  longest for a request (idle keep-alive, or still sending its headers); when every connection is busy with a
  request, the new one gets a ``503`` and is closed. So a flood of idle connections cannot keep ``/health`` or a
  real client out: each new connection pushes the oldest idle one out;
- a request's headers must be complete within ``JEV4_HEADER_TIMEOUT_S`` of the connection opening (or of the
  first byte of the next request on a keep-alive connection): else ``408`` (or a silent close when nothing was
  sent); headers larger than :data:`MAX_HEADER_BYTES` get ``431``;
- a request's body must keep coming: at least :data:`MIN_BODY_BYTES` (or its end) in every ``JEV4_BODY_TIMEOUT_S``
  window after the headers, else ``408`` (or, once the answer has started, a close). So a client that sends its
  headers and then trickles its body, or stops, frees its connection; a slow but steady upload is not cut (the
  bound is on stalls, not on the whole upload's time). Windows in which the server itself holds off reading (the
  app has not taken what arrived; or an ``Expect: 100-continue`` not answered yet) do not count;
- an idle keep-alive connection is closed after ``JEV4_KEEP_ALIVE_TIMEOUT_S`` (uvicorn's ``timeout_keep_alive``).

The limits live in a subclass of uvicorn's httptools protocol (:func:`guarded_protocol`); uvicorn's
``limit_concurrency`` is not used because it counts idle connections too and would answer ``/health`` with 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from litestar import Litestar

    from service.serving import ServingOptions

__all__ = [
    "MAX_HEADER_BYTES",
    "MIN_BODY_BYTES",
    "ConnectionLimits",
    "GuardedProtocol",
    "connection_cap",
    "guarded_protocol",
    "raise_open_files_limit",
    "run_server",
    "uvicorn_options",
]

_LOG = logging.getLogger("jev4.server")
MAX_HEADER_BYTES = 64 * 1024  # request line + headers; real clients send < 8 KiB (nginx's default buffer is 8 KiB)
MIN_BODY_BYTES = 1024  # per body window: any real client sends far more in seconds; a trickle of bytes does not
RESERVED_FILES = 256  # descriptors kept for the model's files, SQLite, logs and thread pools


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float = 30.0
    max_header_bytes: int = MAX_HEADER_BYTES


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one where the OS allows; the soft limit now in force (0 where
    the platform has no ``resource`` module)."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            _LOG.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
    return int(soft)


def connection_cap(max_connections: int, open_files: int) -> int:
    """The number of connections allowed open: the setting, but :data:`RESERVED_FILES` below the open-files
    limit (``open_files`` 0 = unknown: the setting alone)."""
    if open_files <= 0:
        return max_connections
    return max(16, min(max_connections, open_files - RESERVED_FILES))


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "server_error", "code": code}, "detail": message})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n" + ("retry-after: 1\r\n" if status == 503 else "") + "\r\n"
    )
    return head.encode("ascii") + body.encode()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module doc; :func:`guarded_protocol` makes one
    subclass per server with its limits and its own registry of waiting connections."""

    config_limits: ClassVar[ConnectionLimits]
    # connections waiting for a request (idle keep-alive or headers still arriving), longest-waiting first
    waiting: ClassVar[OrderedDict[Any, None]]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_window = 0  # body bytes received in the current window
        super().connection_made(transport)
        if len(self.connections) > self.config_limits.max_connections and not self._make_room():
            message = "the server has too many open connections; retry shortly"
            transport.write(_raw_response(503, "Service Unavailable", "too_many_connections", message))
            transport.close()
            return
        self._start_header_timer()

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request; False when none is waiting."""
        while self.waiting:
            oldest, _ = self.waiting.popitem(last=False)
            if not oldest.transport.is_closing():
                oldest.transport.close()
                return True
        return False

    def _start_header_timer(self) -> None:
        self.waiting[self] = None
        if self._header_timer is None:
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(self.config_limits.header_timeout_s, self._header_timeout)

    def _stop_header_timer(self) -> None:
        self.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self.waiting.pop(self, None)
        if self.transport.is_closing():
            return
        if self._header_bytes:  # a request was started: say why it ends
            message = f"request headers not complete within {self.config_limits.header_timeout_s} s"
            self.transport.write(_raw_response(408, "Request Timeout", "header_timeout", message))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        reading_headers = self._header_timer is not None
        super().data_received(data)
        if reading_headers and self._header_timer is not None:  # still no complete headers after this chunk
            self._header_bytes += len(data)
            if self._header_bytes > self.config_limits.max_header_bytes and not self.transport.is_closing():
                message = f"request headers larger than {self.config_limits.max_header_bytes} bytes"
                self.transport.write(
                    _raw_response(431, "Request Header Fields Too Large", "headers_too_large", message)
                )
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()
        self._start_body_timer()  # stopped at once by on_message_complete when there is no body

    def _start_body_timer(self) -> None:
        self._stop_body_timer()
        self._body_window = 0
        self._body_timer = self.loop.call_later(self.config_limits.body_timeout_s, self._body_timeout)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        held_by_us = self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)
        if held_by_us or self._body_window >= MIN_BODY_BYTES:
            self._start_body_timer()  # the next window
            return
        if cycle is not None and not cycle.response_started:
            message = f"request body stalled: less than {MIN_BODY_BYTES} bytes in {self.config_limits.body_timeout_s} s"
            self.transport.write(_raw_response(408, "Request Timeout", "body_timeout", message))
        self.transport.close()

    def on_body(self, body: bytes) -> None:
        self._body_window += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self.waiting[self] = None  # idle keep-alive: the first to go when the server is full

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        super().connection_lost(exc)


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A :class:`GuardedProtocol` class for one server: its limits, and a registry of its own."""
    return type("GuardedProtocol", (GuardedProtocol,), {"config_limits": limits, "waiting": OrderedDict()})


def uvicorn_options(serving: ServingOptions) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for ``serving`` (limits included); raises
    the open-files limit as a side effect."""
    open_files = raise_open_files_limit()
    cap = connection_cap(serving.max_connections, open_files)
    _LOG.info(
        "connections: at most %d open (open-files limit %d), header timeout %s s, body timeout %s s",
        cap,
        open_files,
        serving.header_timeout_s,
        serving.body_timeout_s,
    )
    return {
        "host": serving.host,
        "port": serving.port,
        "http": guarded_protocol(ConnectionLimits(cap, serving.header_timeout_s, serving.body_timeout_s)),
        "timeout_keep_alive": serving.keep_alive_timeout_s,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
    }


def run_server(app: Litestar, serving: ServingOptions) -> None:
    """Run ``app`` under uvicorn with the options of :func:`uvicorn_options` (blocking)."""
    import uvicorn

    uvicorn.run(app, **uvicorn_options(serving))
