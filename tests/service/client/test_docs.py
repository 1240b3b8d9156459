"""``docs/client.md`` as a user reads it: its marked python blocks run in order, in one namespace, against the
live test server (``JEV4_URL`` / ``JEV4_API_KEY`` set as the page says), from the repository root."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "client.md").read_text()
_BLOCK = re.compile(r"<!-- doc-test: python -->\n```python\n(?P<code>.*?)```", re.S)
_BASH = re.compile(r"<!-- doc-test: bash -->\n```bash\n(?P<code>.*?)```", re.S)


def test_the_page_marks_its_examples() -> None:
    assert len(_BLOCK.findall(PAGE)) >= 6


def test_client_page_examples_run(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("JEV4_URL", live_server.url)
    monkeypatch.setenv("JEV4_API_KEY", live_server.api_key)
    namespace: dict[str, object] = {"__name__": "client_md"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in _BLOCK.findall(PAGE):
            exec(compile(code, "docs/client.md", "exec"), namespace)
    printed = out.getvalue()
    assert "succeeded" in printed  # the upload's progress callback saw the job finish
    assert "404 collection_not_found" in printed
    assert "stats/total.py [1, 2]" in printed


def test_command_line_over_a_server_example_runs(live_server: LiveServer) -> None:
    """The page's command-line block, line by line as a shell runs it (``python``: this virtual environment's),
    with ``JEV4_URL`` / ``JEV4_API_KEY`` set and no other ``JEV4_*`` variable."""
    from service.client import Client

    (script,) = _BASH.findall(PAGE)
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env |= {"JEV4_URL": live_server.url, "JEV4_API_KEY": live_server.api_key, "HF_HUB_OFFLINE": "1"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    try:
        done = subprocess.run(
            ["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        with Client(live_server.url, live_server.api_key) as client, contextlib.suppress(Exception):
            client.delete_collection("cli-docs")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "created collection cli-docs" in done.stderr
    assert " report.pdf  page " in done.stdout  # the search's table
    assert "report.pdf  3 pages" in done.stdout  # the documents list
    assert "deleted document report.pdf from cli-docs" in done.stdout
