"""The MCP server at ``/mcp`` of the live test server, driven by the SDK's own client over Streamable HTTP:
auth, the tool list and schemas, every tool's answer, bad arguments as tool errors (the session goes on), a page
image within the size asked, and the write tool refused while writes are off."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import httpx2
import pytest
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from service.client import Client, ClientError
from tests.service.conftest import LiveServer
from tests.service.helpers import pdf_bytes

T = TypeVar("T")
CODE = "def alpha():\n    return 1\n\n\nclass Beta:\n    def gamma(self):\n        return 'gamma value'\n"


@pytest.fixture(scope="module")
def data(live_server: LiveServer) -> Iterator[None]:
    with Client(live_server.url, live_server.api_key) as api:
        api.create_collection("mcp-pages")
        api.upload("mcp-pages", pdf_bytes(2), filename="report.pdf")
        api.create_collection("mcp-code", task="code")
        api.add_text("mcp-code", CODE, path="pkg/mod.py", document_id="mod.py")
        yield
        api.delete_collection("mcp-pages")
        api.delete_collection("mcp-code")


def _session(server: LiveServer, key: str | None, work: Callable[[McpClient], Awaitable[T]]) -> T:
    async def run() -> T:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            McpClient(streamable_http_client(f"{server.url}/mcp", http_client=http)) as mcp,
        ):
            return await work(mcp)

    return asyncio.run(run())


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def test_mcp_needs_the_api_key(live_server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{live_server.url}/mcp", json=body, headers={**headers, **auth}, timeout=60)
        assert r.status_code == 401
        assert r.json()["error"]["code"] in {"missing_api_key", "invalid_api_key"}
    key = {"Authorization": f"Bearer {live_server.api_key}", "X-Request-ID": "mcp-path-1"}
    r = httpx.post(f"{live_server.url}/mcp", json=body, headers={**headers, **key}, timeout=60)
    assert r.status_code != 401
    # the access log names the path as requested, not as the mounted MCP app sees it ("/"); the line is written
    # once the answer is sent, so it may land a moment after the client has it
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in live_server.log().splitlines() if line.startswith("{")]
        access = [x for x in lines if x.get("request_id") == "mcp-path-1" and x.get("logger") == "jev4.access"]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [x["path"] for x in access] == ["/mcp"]


def test_tools_are_listed_with_schemas(live_server: LiveServer) -> None:
    tools = _session(live_server, live_server.api_key, lambda m: m.list_tools())
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"list_collections", "search", "get_page", "get_document", "read_lines", "add_document"}
    for tool in by_name.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
    assert set(by_name["search"].input_schema["required"]) == {"collection", "query"}
    assert by_name["search"].input_schema["properties"]["top_k"]["maximum"] == 50
    assert {"candidates", "first_stage"} <= set(by_name["search"].input_schema["properties"])


def test_each_tool_answers(live_server: LiveServer, data: None) -> None:
    deeper = {"collection": "mcp-pages", "query": "quarterly report", "top_k": 2}

    async def work(m: McpClient) -> dict[str, Any]:
        return {
            "collections": await m.call_tool("list_collections", {}),
            "pages": await m.call_tool("search", {"collection": "mcp-pages", "query": "quarterly report", "top_k": 2}),
            "deeper": await m.call_tool("search", {**deeper, "candidates": 800, "first_stage": "pooled"}),
            "code": await m.call_tool("search", {"collection": "mcp-code", "query": "gamma", "mode": "text"}),
            "page": await m.call_tool("get_page", {"collection": "mcp-pages", "document_id": "report.pdf", "page": 2}),
            "doc": await m.call_tool("get_document", {"collection": "mcp-code", "document_id": "mod.py"}),
            "lines": await m.call_tool(
                "read_lines", {"collection": "mcp-code", "document_id": "mod.py", "start": 5, "end": 7}
            ),
        }

    out = _session(live_server, live_server.api_key, work)
    assert not any(r.is_error for r in out.values()), {k: _text(r) for k, r in out.items() if r.is_error}
    names = {c["name"]: c for c in out["collections"].structured_content["collections"]}
    assert names["mcp-pages"]["holds"] == "page"
    assert names["mcp-code"]["holds"] == "chunk"
    assert names["mcp-pages"]["cells"] is None  # not trained: pooled_ivf would be refused
    hits = out["pages"].structured_content["hits"]
    assert {(h["document_id"], h["page"]) for h in hits} == {("report.pdf", 1), ("report.pdf", 2)}
    assert any("Quarterly report page" in h["snippet"] for h in hits)
    deeper = out["deeper"].structured_content["hits"]
    assert {(h["document_id"], h["page"]) for h in deeper} == {("report.pdf", 1), ("report.pdf", 2)}
    code_hit = out["code"].structured_content["hits"][0]
    assert code_hit["path"] == "pkg/mod.py"
    assert "gamma" in code_hit["snippet"]
    first, last = map(int, code_hit["lines"].split("-"))
    assert first <= 6 <= last  # the chunk holding `def gamma` (line 6)
    # regions (citations, on by default): the page's line holding the query's words; the chunk's lines naming
    # gamma (its text starts where the chunk does: at `def`, after the indentation)
    cited = [r for h in hits for r in h["regions"] if r["source"] == "text"]
    assert any("Quarterly report page" in r["text"] and len(r["bbox"]) == 4 for r in cited)
    lines = {r["lines"]: r["text"] for r in code_hit["regions"] if r["source"] == "text"}
    assert lines["6-7"] == "def gamma(self):\n        return 'gamma value'"
    image = next(c for c in out["page"].content if c.type == "image")
    assert image.mime_type == "image/png"
    assert "Quarterly report page 2" in _text(out["page"])
    assert out["doc"].structured_content["chunks"]
    assert _text(out["lines"]).splitlines()[1:] == [
        "5| class Beta:",
        "6|     def gamma(self):",
        "7|         return 'gamma value'",
    ]


def test_page_image_within_the_size_asked(live_server: LiveServer, data: None) -> None:
    async def work(m: McpClient) -> tuple[Any, Any]:
        args = {"collection": "mcp-pages", "document_id": "report.pdf", "page": 1}
        return await m.call_tool("get_page", {**args, "max_side": 64}), await m.call_tool(
            "get_page", {**args, "max_side": 5000}
        )

    small, too_big = _session(live_server, live_server.api_key, work)
    with Client(live_server.url, live_server.api_key) as api:
        stored = Image.open(io.BytesIO(api.page_image("mcp-pages", "report.pdf", 1)))
    assert max(stored.size) > 64  # the stored page is larger than what was asked
    image = next(c for c in small.content if c.type == "image")
    sent = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert max(sent.size) == 64
    assert too_big.is_error  # over the cap: refused by the schema, not sent at full size


def test_bad_arguments_are_tool_errors_and_the_session_goes_on(live_server: LiveServer, data: None) -> None:
    async def work(m: McpClient) -> list[Any]:
        return [
            await m.call_tool("search", {"collection": "no-such", "query": "x"}),
            await m.call_tool("search", {"collection": "mcp-pages", "query": "x", "top_k": 0}),
            await m.call_tool("search", {"collection": "mcp-pages"}),
            await m.call_tool("get_page", {"collection": "mcp-pages", "document_id": "report.pdf", "page": 99}),
            await m.call_tool("get_page", {"collection": "mcp-code", "document_id": "mod.py", "page": 1}),
            await m.call_tool("read_lines", {"collection": "mcp-code", "document_id": "mod.py", "start": 500}),
            await m.call_tool("search", {"collection": "mcp-pages", "query": "x", "filter": {"$bad": 1}}),
            await m.call_tool("add_document", {"collection": "mcp-pages", "url": "http://localhost/x.pdf"}),
            await m.call_tool("search", {"collection": "mcp-pages", "query": "x", "first_stage": "pooled_ivf"}),
            await m.call_tool("search", {"collection": "mcp-pages", "query": "x", "candidates": 0}),
            await m.call_tool("list_collections", {}),  # the session still works
        ]

    results = _session(live_server, live_server.api_key, work)
    *errors, last = results
    assert all(r.is_error for r in errors), [_text(r) for r in errors]
    assert not last.is_error
    texts = [_text(r) for r in errors]
    with Client(live_server.url, live_server.api_key) as api, pytest.raises(ClientError) as http:
        api.search("no-such", "x")
    assert f"{http.value.code}: {http.value.message}" in texts[0]  # the HTTP API's code and message
    assert "page_not_found: " in texts[3]
    assert "not_a_page_collection: " in texts[4]
    assert "invalid_lines: " in texts[5]
    assert "invalid_filter: " in texts[6]
    assert "writes_disabled: " in texts[7]
    assert "first_stage_unavailable: " in texts[8]  # no cells: the service's 422, before the query is embedded
    assert "validation_error: " in texts[9]
    assert "candidates" in texts[9]
