"""``docs/client.md`` as a user reads it: its marked python blocks run in order, in one namespace, against the
live test server (``JEV4_URL`` / ``JEV4_API_KEY`` set as the page says), from the repository root."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.service.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "client.md").read_text()
_BLOCK = re.compile(r"<!-- doc-test: python -->\n```python\n(?P<code>.*?)```", re.S)


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
