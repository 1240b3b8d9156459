"""The MCP ``search`` tool passes ``candidates`` and ``first_stage`` to the collections service as the HTTP route's
request (:class:`SearchRequest`): checked there, once, with the route's ranges and names; a refused value is a tool
error naming the field, and the service is not called. Driven through the server's own ``call_tool`` over a
recording stand-in for :class:`~service.collections.manager.Collections` (no model, no index)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from service.collections.search_schemas import MAX_CANDIDATES, SearchRequest, SearchResponse
from service.embeddings.schemas import Usage
from service.mcp.server import build_server
from service.mcp.writes import WriteOptions


class _Recorder:
    """What the tool asked of the service."""

    def __init__(self) -> None:
        self.asked: list[SearchRequest] = []

    async def search(self, name: str, request: SearchRequest) -> SearchResponse:
        self.asked.append(request)
        usage = Usage(total_tokens=0, prompt_tokens=0)
        return SearchResponse(model="m", collection=name, usage=usage, results=[])


def _call(recorder: _Recorder, **arguments: Any) -> Any:
    server = build_server(lambda: recorder, WriteOptions(enabled=False, root=None))  # type: ignore[arg-type,return-value]
    return asyncio.run(server.call_tool("search", {"collection": "c", "query": "q", **arguments}))


def _refused(recorder: _Recorder, **arguments: Any) -> str:
    """The tool error's text (raised, or answered as an error result, whichever the SDK does)."""
    try:
        result = _call(recorder, **arguments)
    except ToolError as exc:
        return str(exc)
    assert result.is_error, result
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def test_candidates_and_first_stage_reach_the_service() -> None:
    recorder = _Recorder()
    _call(recorder, candidates=800, first_stage="pooled_ivf")
    _call(recorder)
    asked, plain = recorder.asked
    assert (asked.candidates, asked.first_stage) == (800, "pooled_ivf")
    assert (plain.candidates, plain.first_stage) == (None, None)  # the server's defaults


@pytest.mark.parametrize("candidates", [0, MAX_CANDIDATES + 1])
def test_candidates_out_of_the_routes_range_are_refused_before_the_service(candidates: int) -> None:
    recorder = _Recorder()
    text = _refused(recorder, candidates=candidates)
    assert "validation_error" in text
    assert "candidates" in text
    assert not recorder.asked
    _call(recorder, candidates=MAX_CANDIDATES)
    assert recorder.asked[-1].candidates == MAX_CANDIDATES


def test_an_unknown_first_stage_is_refused() -> None:
    recorder = _Recorder()
    assert "first_stage" in _refused(recorder, first_stage="plaid")
    assert not recorder.asked
