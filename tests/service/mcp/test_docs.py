"""``docs/agents.md`` as a user reads it: its tool table names exactly the server's tools, its configuration
blocks are valid JSON naming the real command and route, and its Python example runs against the live server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from service.mcp.server import build_server
from service.mcp.writes import WriteOptions
from tests.service.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "agents.md").read_text()


def _blocks(kind: str, lang: str) -> list[str]:
    pattern = rf"<!-- doc-test: {kind} -->\n```{lang}\n(?P<code>.*?)```"
    return [m["code"] for m in re.finditer(pattern, PAGE, re.S)]


def _unreachable() -> object:
    raise AssertionError("no tool runs here")


def test_the_tool_table_names_the_server_tools() -> None:
    server = build_server(_unreachable, WriteOptions(enabled=False, root=None))  # type: ignore[arg-type]
    names = {t.name for t in asyncio.run(server.list_tools())}
    in_table = set(re.findall(r"^\| `(\w+)` \|", PAGE, re.M))
    assert in_table == names


def test_config_blocks_are_valid_and_name_the_real_doors() -> None:
    (stdio,) = _blocks("json stdio", "json")
    (http,) = _blocks("json http", "json")
    server = json.loads(stdio)["mcpServers"]["jev4"]
    assert server["args"] == ["-m", "service", "mcp"]
    from service.__main__ import build_parser

    assert build_parser().parse_args(["mcp"]).command == "mcp"
    assert json.loads(http)["mcpServers"]["jev4"]["url"].endswith("/mcp")


def test_python_example_runs(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JEV4_URL", live_server.url)
    monkeypatch.setenv("JEV4_API_KEY", live_server.api_key)
    (code,) = _blocks("python", "python")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/agents.md", "exec"), {"__name__": "agents_md"})
    printed = out.getvalue()
    assert "'search'" in printed
    assert "True Error executing tool search: collection_not_found: no collection named 'no-such'" in printed
