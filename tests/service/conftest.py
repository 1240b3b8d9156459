"""Service test fixtures: ONE real server process per test session, on a free loopback port, serving the tiny
checkpoint — shared by every service test module (embeddings, rerank, collections, ...).

``live_server`` starts ``python -m service serve`` with the settings in :data:`SERVER_ENV` (API key required,
small limits so limit errors are cheap to provoke, remote URLs allowed only for ``localhost`` so that the
after-DNS loopback refusal can be shown) and waits for ``/ready``. ``client`` is an ``httpx.Client`` with the
base URL and the API key; ``tiny_encoder`` is the same checkpoint loaded in-process (for parity checks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

API_KEY = "test-key-0123"

SERVER_ENV = {
    "JEV4_HOST": "127.0.0.1",
    "JEV4_API_KEYS": API_KEY,
    "JEV4_MAX_ITEMS_PER_REQUEST": "64",
    "JEV4_MAX_TEXT_TOKENS": "256",
    "JEV4_MAX_QUEUE_ROWS": "64",
    "JEV4_MAX_BATCH_TOKENS": "4096",
    "JEV4_MAX_PDF_PAGES": "8",
    "JEV4_MAX_JOB_PDF_PAGES": "12",
    "JEV4_MAX_PAGES_PER_REQUEST": "16",
    "JEV4_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    "JEV4_MAX_DECODED_PIXELS": "4000000",
    "JEV4_IMAGE_MAX_PIXELS": str(64 * 28 * 28),
    "JEV4_PDF_DPI": "36",
    "JEV4_RENDER_PAGE_TIMEOUT_S": "5",
    "JEV4_OCR": "never",  # seconds per page on CPU: the OCR tests ask for it per upload (ocr=auto/always)
    "JEV4_ALLOW_REMOTE_URLS": "1",
    "JEV4_ALLOWED_URL_HOSTS": "localhost",
    "JEV4_PREPROCESS_THREADS": "2",
    "JEV4_TORCH_THREADS": "1",
    "JEV4_LOG_LEVEL": "info",
}


@dataclass
class LiveServer:
    url: str
    api_key: str
    checkpoint: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 120), **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def service_checkpoint(tiny_checkpoint: Path) -> Path:
    """The tiny random checkpoint the server and the in-process parity encoder both load (the session's one)."""
    return tiny_checkpoint


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, service_checkpoint: Path) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("service")
    server = start_server(service_checkpoint, base / "data", base / "server.log")
    try:
        yield server
    finally:
        stop_process(server.process)


def start_server(
    checkpoint: Path, data_dir: Path, log_path: Path, *, env: Mapping[str, str] | None = None, timeout: float = 600
) -> LiveServer:
    """A ``python -m service serve`` process on a free loopback port with :data:`SERVER_ENV` (then ``env``: more
    ``JEV4_*`` settings), once it answers ``/ready``: the session's server, and the ones tests start of their own
    (restarts, a second process on one data directory, faults). Its output is appended to ``log_path`` (a
    restart on the same log keeps the first run's). ``timeout``: a loaded shared machine can take minutes to load
    even the tiny checkpoint; a server that is not ready in time is stopped and its log's end raised."""
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    full_env.update(SERVER_ENV)
    full_env.update(JEV4_MODEL=str(checkpoint), JEV4_PORT=str(port), JEV4_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    full_env.update(env or {})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", API_KEY, checkpoint, data_dir, log_path, process)
    try:
        _wait_ready(server, timeout=timeout)
    except BaseException:
        stop_process(process)
        raise
    return server


def stop_process(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (a server that does not stop must not hang the suite)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _wait_ready(server: LiveServer, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout} s:\n{server.log()[-4000:]}")


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def tiny_encoder(service_checkpoint: Path) -> Any:
    """The server's checkpoint loaded in-process (float32, CPU) for parity checks."""
    from model.encoder import Encoder

    return Encoder.from_pretrained(service_checkpoint, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def docs(client: httpx.Client) -> str:
    """A float32 collection (exact scores) on the session server holding a 2-page PDF (multipart) and an image
    (JSON); made afresh for each test module that asks for it."""
    from tests.service.helpers import add_pdf, b64, create_collection, png_bytes

    name = "docs"
    create_collection(client, name, codec="float32")
    add_pdf(client, name, 2, metadata='{"kind": "report", "year": 2024}', document_id="report")
    image = client.post(
        f"/v1/collections/{name}/documents",
        json={
            "image": b64(png_bytes(120, 80, seed=3)),
            "document_id": "photo",
            "metadata": {"kind": "photo"},
        },
    )
    assert image.status_code == 201, image.text
    return name


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from tests.service.browser import ARTIFACTS, browser_or_skip, chrome

    browser_or_skip()  # a browser test's session (module scope): skipped with the reason where none runs
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = chrome()
    try:
        yield d
    finally:
        d.quit()
