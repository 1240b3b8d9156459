"""Connection-level limits (issue 25 item 6, ``service.http.server``): thousands of idle or slow connections
neither exhaust descriptors nor keep ``/health`` from answering; idle ones are closed after the header timeout;
over the connection cap the longest-waiting connection makes room.

The server is the real one (``uvicorn_options``, the options ``serve`` uses) on a loopback port in a thread of
this process, with an app whose model never loads (``/health`` needs none). Bounds: 3,000 sockets at most, each
test under ~20 s.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from service.http.app import create_app
from service.http.server import MAX_HEADER_BYTES, connection_cap, uvicorn_options
from service.serving import ServingOptions
from service.settings import Settings

HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 1.5
IDLE_SOCKETS = 3000


def _no_model(_source: Any) -> Any:
    raise RuntimeError("these tests need only /health, which answers without a model")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(tmp_path: Path, **limits: Any) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path,
        port=_free_port(),
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        **limits,
    )
    options = uvicorn_options(ServingOptions.from_settings(settings))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, loader=_no_model), **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("connections"), max_connections=10_000)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("capped"), max_connections=200)


def _open_idle(url: str, count: int) -> list[socket.socket]:
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        sockets.append(s)
    return sockets


def _health_ok(url: str) -> float:
    start = time.monotonic()
    response = httpx.get(f"{url}/health", timeout=5)
    assert response.status_code == 200, response.text
    return time.monotonic() - start


def _closed_by_server(s: socket.socket, wait_s: float) -> bool:
    s.settimeout(wait_s)
    try:
        return s.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_thousands_of_idle_connections_do_not_block_health_and_are_closed(server: str) -> None:
    sockets = _open_idle(server, IDLE_SOCKETS)
    try:
        assert _health_ok(server) < 2.0  # answered while 3,000 connections sit idle
        time.sleep(HEADER_TIMEOUT_S + 0.5)
        # every idle connection that never sent a header is closed by the server after the header timeout
        assert all(_closed_by_server(s, 5) for s in sockets)
        assert _health_ok(server) < 2.0
    finally:
        for s in sockets:
            s.close()


def test_over_the_cap_the_longest_waiting_connection_makes_room(small_server: str) -> None:
    sockets = _open_idle(small_server, 600)  # 3x the cap of 200
    try:
        for _ in range(5):
            assert _health_ok(small_server) < 2.0
        closed = sum(_closed_by_server(s, 0.01) for s in sockets[:300])
        assert closed >= 300 - 200  # the oldest were pushed out to make room
    finally:
        for s in sockets:
            s.close()


def test_slow_headers_get_408_and_huge_headers_431(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        for _ in range(4):  # a byte at a time (slowloris): the timeout counts from the first byte, not the last
            time.sleep(0.5)
            try:
                slow.sendall(b"X")
            except OSError:
                break
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"header_timeout" in answer
        assert time.monotonic() - start < HEADER_TIMEOUT_S + 2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as big:
        big.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 10))
        answer = big.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431"), answer


def _post_head(length: int) -> bytes:
    return (
        f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass)."""
    chunks = []
    while True:
        try:
            chunk = s.recv(4096)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stalled_or_trickled_body_gets_408_and_is_closed(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(_post_head(100_000) + b'{"input": ["')  # the headers, a few body bytes, then nothing
        start = time.monotonic()
        answer = _answer(stalled)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"body_timeout" in answer
        assert BODY_TIMEOUT_S - 0.2 < time.monotonic() - start < BODY_TIMEOUT_S + 3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as trickle:
        trickle.sendall(_post_head(100_000))
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < 4 * BODY_TIMEOUT_S:  # 10 bytes every 0.2 s: never a pause, never 1 KiB
            try:
                trickle.sendall(b"x" * 10)
            except OSError:
                break
            sent += 10
            time.sleep(0.2)
        answer = _answer(trickle)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - start < 2 * BODY_TIMEOUT_S + 3  # cut after one or two windows
        assert sent < 1024


def test_a_slow_steady_body_is_not_cut(server: str) -> None:
    body = b'{"input": ["' + b"a" * 6000 + b'"], "model": "no-such-model"}'
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as steady:
        steady.sendall(_post_head(len(body)))
        start = time.monotonic()
        for i in range(0, len(body), 1500):  # 1.5 KiB per 0.6 s: longer than a window in all, never stalled
            steady.sendall(body[i : i + 1500])
            time.sleep(0.6)
        assert time.monotonic() - start > BODY_TIMEOUT_S
        answer = steady.recv(4096)
        assert answer.startswith(b"HTTP/1.1 "), answer
        assert not answer.startswith(b"HTTP/1.1 408"), answer  # the route's own answer (the model is not loaded)


def test_keep_alive_requests_still_work(server: str) -> None:
    with httpx.Client(base_url=server, timeout=5) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(0.2)


def test_connection_cap_stays_below_the_open_files_limit() -> None:
    assert connection_cap(10_000, 1024) == 1024 - 256
    assert connection_cap(10_000, 1_048_576) == 10_000
    assert connection_cap(10_000, 0) == 10_000
