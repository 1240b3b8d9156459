"""``python -m service mcp`` over stdio, driven by the SDK's own client, on the live server's data directory
while that server runs (the embedded index is shared by processes): it sees the server's collections, searches
them, and with ``JEV4_MCP_WRITE=true`` adds a local file under ``JEV4_MCP_ROOT`` (and refuses one outside)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client as McpClient
from mcp import StdioServerParameters

from service.client import Client
from tests.service.conftest import SERVER_ENV, LiveServer
from tests.service.helpers import pdf_bytes

ROOT = Path(__file__).resolve().parents[3]


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def _search_when_ready(m: McpClient, args: dict[str, Any], timeout: float = 300) -> Any:
    """The stdio server loads the model in the background: search answers model_not_ready until then."""
    deadline = time.monotonic() + timeout
    while True:
        result = await m.call_tool("search", args)
        if not (result.is_error and "model_not_ready" in _text(result)) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(1)


def test_stdio_server_beside_a_running_server(live_server: LiveServer, tmp_path: Path) -> None:
    with Client(live_server.url, live_server.api_key) as api:
        api.create_collection("stdio-docs")
        api.upload("stdio-docs", pdf_bytes(1), filename="shared.pdf")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "local.pdf").write_bytes(pdf_bytes(2))
    (tmp_path / "outside.pdf").write_bytes(pdf_bytes(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update({k: v for k, v in SERVER_ENV.items() if k != "JEV4_API_KEYS"})
    env.update(
        JEV4_MODEL=str(live_server.checkpoint),
        JEV4_DATA_DIR=str(live_server.data_dir),
        JEV4_MCP_WRITE="true",
        JEV4_MCP_ROOT=str(allowed),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "service", "mcp"], env=env, cwd=str(ROOT))

    async def work() -> dict[str, Any]:
        async with McpClient(params, read_timeout_seconds=300) as m:
            return {
                "tools": await m.list_tools(),
                "collections": await m.call_tool("list_collections", {}),
                "search": await _search_when_ready(m, {"collection": "stdio-docs", "query": "quarterly", "top_k": 3}),
                "added": await m.call_tool(
                    "add_document", {"collection": "stdio-docs", "path": str(allowed / "local.pdf")}
                ),
                "outside": await m.call_tool(
                    "add_document", {"collection": "stdio-docs", "path": str(tmp_path / "outside.pdf")}
                ),
                "escape": await m.call_tool(
                    "add_document", {"collection": "stdio-docs", "path": str(allowed / ".." / "outside.pdf")}
                ),
            }

    out = asyncio.run(work())
    assert len(out["tools"].tools) == 6
    assert "stdio-docs" in {c["name"] for c in out["collections"].structured_content["collections"]}
    assert not out["search"].is_error, _text(out["search"])
    assert [h["document_id"] for h in out["search"].structured_content["hits"]] == ["shared.pdf"]
    assert not out["added"].is_error, _text(out["added"])
    assert out["added"].structured_content["units"] == 2
    assert "path_not_allowed: " in _text(out["outside"])
    assert "path_not_allowed: " in _text(out["escape"])
    with Client(live_server.url, live_server.api_key) as api:  # the running server sees the stdio server's write
        assert api.get_document("stdio-docs", "local.pdf").pages == 2
        api.delete_collection("stdio-docs")
