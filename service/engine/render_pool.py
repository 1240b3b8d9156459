"""PDF pages are opened and rendered in worker processes, with a time budget per page.

Why processes: MuPDF renders while holding the GIL, so a page that draws 50,000 lines (a 9 KiB file) kept a
thread busy for 77 s and the whole server — ``/health`` included — with it. In a worker process it blocks only
that worker, and a worker over budget can be killed, which a thread cannot.

- :func:`render_pages` and :func:`count_pages` are THE calls the server's code uses (:mod:`model.pdf`'s
  signatures plus ``pool``). The :class:`~service.engine.runtime.Runtime` owns one :class:`RenderPool` (made in
  ``start``, closed at exit) and passes it down as a value: to the embeddings preparer
  (:class:`~service.embeddings.prepare.Preparer`) and, through the indexer's page limits, to the PDF converter.
  Given ``pool=None`` (the library, unit tests) they run in the calling process.
- Budget: ``JEV4_RENDER_PAGE_TIMEOUT_S`` seconds for opening the document and for each page. A worker over it
  is killed and replaced, and the call raises :class:`RenderTimeoutError` (422 ``render_timeout``) naming the
  page and the setting; the caller stores nothing of the document (its pages are stored in one write).
- Workers: as many as the preprocessing threads that call them (``JEV4_PREPROCESS_THREADS``), started on first
  use (each a fresh interpreter: not a fork of the threaded server), each handling one call at a time. Model
  errors (``PdfError`` …) come back as raised in the worker.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from model import pdf as pdf_mod
from model.errors import PdfError
from model.types import PageImage
from service.errors import UnprocessableError

__all__ = ["RenderPool", "RenderTimeoutError", "count_pages", "render_pages", "serve_fd"]

_LOG = logging.getLogger(__name__)
_START_TIMEOUT_S = 120.0  # a fresh worker imports PyMuPDF; not part of any page's budget


class RenderTimeoutError(UnprocessableError):
    code = "render_timeout"


def count_pages(pdf: pdf_mod.PdfSource, *, pool: RenderPool | None, max_bytes: int = pdf_mod.DEFAULT_MAX_BYTES) -> int:
    """:func:`model.pdf.count_pages`, in ``pool``'s workers (None: in the calling process)."""
    if pool is None:
        return pdf_mod.count_pages(pdf, max_bytes=max_bytes)
    return int(pool.call("count", pdf, {"max_bytes": max_bytes}))


def render_pages(pdf: pdf_mod.PdfSource, *, pool: RenderPool | None, **options: Any) -> list[PageImage]:
    """:func:`model.pdf.render_pages` (same keyword options), in ``pool``'s workers (None: in the calling
    process)."""
    if pool is None:
        return pdf_mod.render_pages(pdf, **options)
    pages: list[PageImage] = pool.call("render", pdf, options)
    return pages


class _Worker:
    """One render process: a fresh interpreter (not a fork of the threaded server, not a re-run of its main
    module) that talks pickled messages over a socket pair."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # the tree this module was imported from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        code = f"from service.engine.render_pool import serve_fd; serve_fd({theirs.fileno()})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> None:
        if not self.ready:
            if not self.conn.poll(_START_TIMEOUT_S):
                raise RuntimeError(f"a PDF render worker did not start within {_START_TIMEOUT_S:.0f} s")
            self.conn.recv()
            self.ready = True

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        self.conn.close()


class RenderPool:
    """``workers`` render processes, each call on one of them, ``page_timeout_s`` per page (see the module doc)."""

    def __init__(self, workers: int, page_timeout_s: float) -> None:
        if workers < 1 or page_timeout_s <= 0:
            raise ValueError(f"workers must be ≥ 1 and page_timeout_s > 0, got {workers}, {page_timeout_s}")
        self.page_timeout_s = page_timeout_s
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()  # a started worker first
        for _ in range(workers):
            self._idle.put(None)  # a slot: its worker starts on first use
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    def call(self, op: str, pdf: pdf_mod.PdfSource, options: dict[str, Any]) -> Any:
        """Run ``op`` ("count" or "render") on one worker; its result, or its error raised here."""
        data = pdf if isinstance(pdf, str | os.PathLike) else bytes(pdf)  # a path is read by the worker
        worker = self._checkout()
        try:
            worker.conn.send((op, data, options))
            result = self._receive(worker, op)
        except BaseException:
            self._replace(worker)
            raise
        self._idle.put(worker)
        return result

    def _receive(self, worker: _Worker, op: str) -> Any:
        pages: list[PageImage] = []
        selected: Sequence[int] = ()
        while True:
            if not worker.conn.poll(self.page_timeout_s):
                raise self._timeout(op, selected, len(pages))
            try:
                kind, value = worker.conn.recv()
            except (EOFError, OSError):  # the worker died (MuPDF crashed on this document): the server did not
                where = f"page {selected[len(pages)]}" if len(pages) < len(selected) else "the document"
                raise PdfError(f"the PDF renderer crashed on {where}; the document was not indexed") from None
            if kind == "error":
                raise value
            if kind == "pages":
                selected = value
            elif kind == "page":
                pages.append(value)
            else:  # "done"
                return pages if op == "render" else value

    def _timeout(self, op: str, selected: Sequence[int], done: int) -> RenderTimeoutError:
        budget = f"{self.page_timeout_s:g} s"
        if op == "render" and done < len(selected):
            what = f"page {selected[done]} did not render within {budget}"
        else:
            what = f"the PDF did not open within {budget}"
        return RenderTimeoutError(
            f"{what} (JEV4_RENDER_PAGE_TIMEOUT_S), so the document was not indexed: simplify or rasterise that "
            "page (print it to an image PDF), leave it out with pages, or raise the setting",
        )

    def _checkout(self) -> _Worker:
        worker = self._idle.get()
        if worker is None or not worker.alive():
            if worker is not None:
                self._forget(worker)
            try:
                worker = self._start()
                worker.wait_ready()
            except BaseException:
                if worker is not None:
                    self._forget(worker)
                self._idle.put(None)
                raise
        return worker

    def _start(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the render pool is closed")
            worker = _Worker()
            self._workers.add(worker)
            return worker

    def _forget(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        """A call failed in the middle (a timeout, a broken pipe): its worker may be busy or dead, so it goes."""
        self._forget(worker)
        self._idle.put(None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.kill()


def serve_fd(fd: int) -> None:
    """A worker process's entry point: serve the parent on the socket ``fd``."""
    _serve(Connection(fd))


def _serve(conn: Connection) -> None:
    """A worker's loop: (op, pdf bytes, options) in; ("pages", numbers), ("page", PageImage)…, ("done", value)
    or ("error", exception) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops its workers
    import pymupdf  # noqa: F401 - imported before "ready": seconds that are no page's budget

    conn.send(("ready", None))
    while True:
        try:
            op, data, options = conn.recv()
        except EOFError:
            return
        try:
            if op == "count":
                conn.send(("done", pdf_mod.count_pages(data, **options)))
                continue
            pages = pdf_mod.iter_pages(data, **options)  # opens and checks (its errors are raised here)
            total = pdf_mod.count_pages(data, max_bytes=options.get("max_bytes", pdf_mod.DEFAULT_MAX_BYTES))
            conn.send(("pages", pdf_mod.parse_page_selection(options.get("pages"), total)))
            for page in pages:
                conn.send(("page", page))
            conn.send(("done", None))
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller, raised there
            conn.send(("error", _portable(exc)))


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a PdfError with its message (the worker's own errors do)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to pickle means "send the message only"
        return PdfError(f"{type(exc).__name__}: {exc}")
    return exc
