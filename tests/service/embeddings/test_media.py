"""Media decoding and the guarded URL fetch (against a real local HTTP server)."""

from __future__ import annotations

import asyncio
import base64
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from service.embeddings.media import (
    MediaLimits,
    check_address,
    decode_base64_or_data_uri,
    fetch_bytes,
    host_allowed,
    load_source,
)
from service.errors import (
    DownloadError,
    PayloadTooLargeError,
    RemoteURLDisabledError,
    UnprocessableError,
    URLNotAllowedError,
)

PAYLOAD = bytes(range(256)) * 4


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/data")
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def limits(**kw: object) -> MediaLimits:
    base: dict[str, object] = {
        "max_bytes": 10_000,
        "allow_remote_urls": True,
        "allow_private_addresses": True,
    }
    base.update(kw)
    return MediaLimits(**base)  # type: ignore[arg-type]


def test_base64_and_data_uri() -> None:
    raw = b"\x89PNG\r\n\x1a\nhello"
    b64 = base64.b64encode(raw).decode()
    assert decode_base64_or_data_uri(b64, max_bytes=100) == raw
    assert decode_base64_or_data_uri(f"data:image/png;base64,{b64}", max_bytes=100) == raw
    assert decode_base64_or_data_uri(b64.rstrip("="), max_bytes=100) == raw  # padding optional
    assert (
        decode_base64_or_data_uri(base64.urlsafe_b64encode(b"\xfb\xff" * 5).decode(), max_bytes=100) == b"\xfb\xff" * 5
    )
    with pytest.raises(UnprocessableError, match="not valid base64"):
        decode_base64_or_data_uri("not base64 at all!", max_bytes=100)
    with pytest.raises(UnprocessableError, match="data URI"):
        decode_base64_or_data_uri("data:image/png,rawtext", max_bytes=100)
    with pytest.raises(PayloadTooLargeError, match="limit of 4"):
        decode_base64_or_data_uri(b64, max_bytes=4)


def test_host_allowlist() -> None:
    assert host_allowed("example.com", ("example.com",))
    assert not host_allowed("evil-example.com", ("example.com",))
    assert host_allowed("img.example.com", (".example.com",))
    assert host_allowed("example.com", (".example.com",))
    assert not host_allowed("example.com.evil.org", (".example.com",))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "0.0.0.0",
        "::ffff:10.0.0.1",
        "100.64.0.1",
    ],
)
def test_private_addresses_refused(address: str) -> None:
    with pytest.raises(URLNotAllowedError, match="refused"):
        check_address(address)


def test_public_address_accepted() -> None:
    check_address("93.184.216.34")
    check_address("2606:4700::1111")


def test_fetch_ok_and_redirect(server: str) -> None:
    assert asyncio.run(fetch_bytes(f"{server}/data", limits())) == PAYLOAD
    assert asyncio.run(fetch_bytes(f"{server}/redirect", limits())) == PAYLOAD
    assert asyncio.run(load_source(f"{server}/data", limits())) == PAYLOAD


def test_fetch_refuses_loopback_after_dns_resolution(server: str) -> None:
    # "localhost" passes the host allow-list; its resolved address (loopback) is what gets refused
    port = server.rsplit(":", 1)[1]
    strict = limits(allow_private_addresses=False, allowed_hosts=("localhost",))
    with pytest.raises(URLNotAllowedError, match="loopback"):
        asyncio.run(fetch_bytes(f"http://localhost:{port}/data", strict))


def test_fetch_limits_and_errors(server: str) -> None:
    with pytest.raises(PayloadTooLargeError, match="limit of 100"):
        asyncio.run(fetch_bytes(f"{server}/data", limits(max_bytes=100)))
    with pytest.raises(DownloadError, match="redirects"):
        asyncio.run(fetch_bytes(f"{server}/loop", limits(max_redirects=2)))
    with pytest.raises(DownloadError, match="HTTP 404"):
        asyncio.run(fetch_bytes(f"{server}/missing", limits()))
    with pytest.raises(RemoteURLDisabledError):
        asyncio.run(fetch_bytes(f"{server}/data", limits(allow_remote_urls=False)))
    with pytest.raises(URLNotAllowedError, match="not in the server's allowed"):
        asyncio.run(fetch_bytes(f"{server}/data", limits(allowed_hosts=("example.com",))))
    with pytest.raises(URLNotAllowedError, match="scheme 'file'"):
        asyncio.run(load_source("file:///etc/passwd", limits()))
    with pytest.raises(URLNotAllowedError, match="scheme 'ftp'"):
        asyncio.run(load_source("ftp://example.com/x", limits()))


def test_fetch_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never answers
    port = listener.getsockname()[1]
    try:
        with pytest.raises(DownloadError, match=r"longer than 0\.3"):
            asyncio.run(fetch_bytes(f"http://127.0.0.1:{port}/slow", limits(timeout_s=0.3)))
    finally:
        listener.close()
