"""Conformance (issue 25 item 8): schemathesis runs over the server's own OpenAPI (``/docs/openapi.json``) with
**all** its checks (no 5xx, response schemas and content types, documented statuses, ``Allow`` on 405,
schema-valid requests accepted, schema-violating ones rejected, ...); with all phases, stateful included (it
creates collections and documents through the links it infers and reads them back).

It runs the schemathesis CLI against a server of its own (``python -m service serve`` on the tiny checkpoint):
remote URLs off, so media fields are exactly base64 / data URIs as the schema states (with them on, a
schema-valid URL would point at a host that cannot be fetched); originals kept, so a created document's file
can be read back. ``tests/service/http/schemathesis.toml`` says which statuses count as accepting valid data
(415 added: no schema states what the bytes of a PNG are; 422 on delete by filter, whose refusal of a key no
document holds depends on the collection's contents, on training cells, refused for an empty collection, and on
uploads, whose ``ocr`` a collection of chunks refuses). The command is in docs/robustness.md. In the default suite,
all four phases: 0 failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import API_KEY, SERVER_ENV, LiveServer, _free_port, _wait_ready, stop_process

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory: pytest.TempPathFactory, service_checkpoint: Path) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("conformance")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(SERVER_ENV)
    env.update(
        JEV4_MODEL=str(service_checkpoint),
        JEV4_PORT=str(port),
        JEV4_DATA_DIR=str(base / "data"),
        JEV4_ALLOW_REMOTE_URLS="0",
        JEV4_ALLOWED_URL_HOSTS="",
        JEV4_KEEP_ORIGINALS="1",
        HF_HUB_OFFLINE="1",
    )
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log)
    server = LiveServer(f"http://127.0.0.1:{port}", API_KEY, service_checkpoint, base / "data", log_path, process)
    try:
        _wait_ready(server, timeout=600)
        yield server
    finally:
        stop_process(process)


def schemathesis_command(url: str, key: str, max_examples: int) -> list[str]:
    """The run of docs/robustness.md: every check, every phase (examples, coverage, fuzzing, stateful)."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/docs/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        "1",
        "--request-timeout",
        "120",
        "--no-color",
    ]


def _run(server: LiveServer, max_examples: int, timeout_s: int, phases: str) -> None:
    command = [*schemathesis_command(server.url, server.api_key, max_examples), "--phases", phases]
    done = subprocess.run(  # in the server's folder: schemathesis keeps a .schemathesis/ cache where it runs
        command, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=server.data_dir.parent
    )
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)  # the case count and phases, for the notes
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-2000:]


def test_all_checks_all_phases_stateful_included(conformance_server: LiveServer) -> None:
    """Every check in every phase — examples, coverage, fuzzing and stateful: 0 failures."""
    _run(conformance_server, max_examples=5, timeout_s=600, phases="examples,coverage,fuzzing,stateful")
