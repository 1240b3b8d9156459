"""The MCP server (official SDK, ``mcp``): tools over the collections service, for agents.

Every tool calls :class:`service.collections.manager.Collections` (the service the HTTP routes call), so the
rules, limits and error messages are the API's: a refused call is an MCP *tool error* whose text is the HTTP
error's ``code: message`` (never a crash of the session). Tools: ``list_collections``, ``search``, ``get_page``
(the page image, scaled to the size asked within :data:`MAX_IMAGE_SIDE`, plus its text), ``get_document``,
``read_lines`` (text/code documents) and ``add_document`` (only with ``JEV4_MCP_WRITE=true``, see
:mod:`service.mcp.writes`). Two doors: stdio (``python -m service mcp``, :mod:`service.mcp.stdio`) and Streamable
HTTP at ``/mcp`` of ``serve`` (:mod:`service.mcp.http`), behind the API keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import Field

from service.collections.pages import ImageSize, page_image
from service.collections.search_schemas import MAX_CANDIDATES, ChunkInfo, FirstStageName, RegionObject, SearchRequest
from service.errors import error_info
from service.mcp.reading import MAX_LINES, line_window, scaled_png, snippet, text_from_chunks
from service.mcp.writes import WriteOptions, add_document

if TYPE_CHECKING:
    from service.collections.manager import Collections

__all__ = ["MAX_IMAGE_SIDE", "build_server"]

_LOG = logging.getLogger("jev4.mcp")
MAX_IMAGE_SIDE = 2048  # get_page never sends a larger image, whatever max_side asks (tokens of the client's model)
MAX_CHUNKS_LISTED = 200
MAX_REGION_TEXT = 400  # characters of a region's text in a search answer (an area may hold a whole paragraph)
_REGIONS_ARG = (
    "Add each hit's regions (citations): page boxes as fractions [x0, y0, x1, y1] with the text inside, or line "
    "ranges of code/text (default true)"
)
_CANDIDATES_ARG = (
    f"Pages the first stage finds for the exact rerank, 1..{MAX_CANDIDATES} (default: 200, growing with the "
    "collection past 100,000 pages to ~800 at 1M, which keeps recall 0.99 there); more is slower and finds more"
)
_FIRST_STAGE_ARG = (
    "How candidates are found (default: the server's): dense, pooled, ivf (residual codecs) or pooled_ivf "
    "(collections whose cells were trained; sublinear)"
)
T = TypeVar("T")

INSTRUCTIONS = """\
Search the user's document collections (PDF pages, images, text and code) served by jev4-serve.
Start with list_collections, then search; open a page hit with get_page (image + text) or a code/text hit with
read_lines; get_document shows a document's metadata and parts."""


async def _answer(work: Awaitable[T]) -> T:
    """``work``'s result, or a ToolError with the HTTP API's ``code: message`` for a refused request."""
    try:
        return await work
    except ToolError:
        raise
    except msgspec.ValidationError as exc:
        raise ToolError(f"validation_error: invalid arguments: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the tool boundary: known errors answer, others are logged
        info = error_info(exc)
        if info is None:
            _LOG.error("MCP tool failed", exc_info=exc)
            raise ToolError("internal_error: internal server error") from None
        raise ToolError(f"{info.code}: {info.message}") from None


ToolSpec = tuple[Callable[..., Awaitable[Any]], str, str]  # (function, name, description for the model)
Getter = Callable[[], "Collections"]
UNSTRUCTURED = {"get_page", "read_lines"}  # answered as content blocks (an image, numbered lines), not JSON


def build_server(get: Getter, writes: WriteOptions) -> MCPServer:
    """The MCP server; ``get`` returns the app's :class:`Collections` when a tool runs (made in a lifespan)."""
    server: MCPServer = MCPServer("jev4-serve", instructions=INSTRUCTIONS)
    for fn, name, description in [*_browse_tools(get), *_find_tools(get), *_write_tools(get, writes)]:
        server.add_tool(fn, name=name, description=description, structured_output=name not in UNSTRUCTURED)
    return server


def _browse_tools(get: Getter) -> list[ToolSpec]:
    async def list_collections() -> dict[str, Any]:
        listing = await _answer(get().list_collections())
        return {
            "collections": [
                {"name": c.name, "holds": c.unit_kind, "task": c.task, "documents": c.documents, "units": c.pages}
                | {"cells": c.cells}  # not null: search may ask first_stage pooled_ivf
                for c in listing.data
            ]
        }

    async def get_document(
        collection: Annotated[str, Field(description="Collection name")],
        document_id: Annotated[str, Field(description="Document id")],
    ) -> dict[str, Any]:
        return await _answer(_get_document(get(), collection, document_id))

    async def read_lines(
        collection: Annotated[str, Field(description="Collection name (one holding text/code chunks)")],
        document_id: Annotated[str, Field(description="Document id (a code/text hit's document_id)")],
        start: Annotated[int, Field(ge=1, description="First line, 1-based")] = 1,
        end: Annotated[int | None, Field(ge=1, description=f"Last line, inclusive (at most {MAX_LINES} lines)")] = None,
    ) -> str:
        return await _answer(_read_lines(get(), collection, document_id, start, end))

    return [
        (list_collections, "list_collections", "The collections: name, what they hold (pages or chunks), counts."),
        (get_document, "get_document", "A document's metadata and its pages, or its chunks (path, lines, kind)."),
        (read_lines, "read_lines", "Lines of a text/code document, numbered, as `N| text`."),
    ]


def _find_tools(get: Getter) -> list[ToolSpec]:
    async def search(
        collection: Annotated[str, Field(description="Collection name (from list_collections)")],
        query: Annotated[str, Field(description="What to look for, in words")],
        mode: Annotated[
            Literal["hybrid", "text", "visual"] | None,
            Field(description="hybrid (default): words + meaning; text: exact words (BM25); visual: page images"),
        ] = None,
        top_k: Annotated[int, Field(ge=1, le=50, description="How many hits")] = 5,
        filter: Annotated[
            dict[str, Any] | None,
            Field(description='Metadata conditions, ANDed: {"year": {"$gte": 2020}, "lang": "en"}'),
        ] = None,
        regions: Annotated[bool, Field(description=_REGIONS_ARG)] = True,
        candidates: Annotated[int | None, Field(description=_CANDIDATES_ARG)] = None,
        first_stage: Annotated[FirstStageName | None, Field(description=_FIRST_STAGE_ARG)] = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"mode": mode, "top_k": top_k, "filter": filter, "regions": regions}
        options |= {"candidates": candidates, "first_stage": first_stage}
        return await _answer(_search(get(), collection, query, options))

    async def get_page(
        collection: Annotated[str, Field(description="Collection name")],
        document_id: Annotated[str, Field(description="Document id (from a search hit)")],
        page: Annotated[int, Field(ge=1, description="Page number (a hit's page)")],
        max_side: Annotated[
            int, Field(ge=64, le=MAX_IMAGE_SIDE, description="Longest side of the image sent, in pixels")
        ] = 1024,
    ) -> list[Any]:
        return await _answer(_get_page(get(), collection, document_id, page, max_side))

    search_doc = (
        "Search one collection. Each hit: document_id, page (PDFs/images) or path + lines (code/text), score, a "
        "text snippet and its regions: where the evidence is, best first (a box on the page as fractions "
        "[x0, y0, x1, y1] with the text inside, or a line range of the code/text) — cite these. Open a page with "
        "get_page, code with read_lines."
    )
    return [
        (search, "search", search_doc),
        (get_page, "get_page", "One stored page: its image (scaled to max_side) and its text layer."),
    ]


def _write_tools(get: Getter, writes: WriteOptions) -> list[ToolSpec]:
    async def add_document_tool(
        collection: Annotated[str, Field(description="Collection name")],
        url: Annotated[
            str | None,
            Field(
                description="http(s) URL of a PDF, office file, e-book, image, web page, text or code file (kept as "
                "the document's metadata 'source')"
            ),
        ] = None,
        path: Annotated[
            str | None, Field(description="Local file path (stdio server only, under its allowed root)")
        ] = None,
        document_id: Annotated[str | None, Field(description="Id to give it (default: the file name)")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Metadata to store (a JSON object)")] = None,
        replace: Annotated[bool, Field(description="Replace a document with the same id")] = False,
    ) -> dict[str, Any]:
        work = add_document(get(), writes, collection, url, path, document_id, metadata, replace)
        return await _answer(work)

    description = (
        "Add a document from a URL (or a local path on a stdio server). Works only when the server's operator "
        "enabled writes (JEV4_MCP_WRITE=true); waits until the document is indexed."
    )
    return [(add_document_tool, "add_document", description)]


async def _search(collections: Collections, name: str, query: str, options: dict[str, Any]) -> dict[str, Any]:
    """The tool's answer; ``options`` are the tool's other arguments, checked as the HTTP route checks its body
    (:class:`SearchRequest`: the ranges of ``candidates``, the names of ``first_stage``, ...)."""
    body = {"query": query, "include_text": True, **options}
    request = msgspec.convert({k: v for k, v in body.items() if v is not None}, SearchRequest)
    found = await collections.search(name, request)
    hits: list[dict[str, Any]] = []
    for h in found.results:
        hit: dict[str, Any] = {"document_id": h.document_id, "score": round(h.score, 4)}
        if isinstance(h.chunk, ChunkInfo):
            first, last = ([*h.chunk.lines, 0, 0])[:2]
            hit.update(path=h.chunk.path, lines=f"{first}-{last}", name=h.chunk.name)
            hit["snippet"] = snippet(h.chunk.text, query)
        else:
            hit["page"] = h.page
            hit["snippet"] = snippet(h.text if isinstance(h.text, str) else None, query)
        if h.metadata:
            hit["metadata"] = h.metadata
        if isinstance(h.regions, list):
            hit["regions"] = [_region(r) for r in h.regions]
        hits.append(hit)
    answer: dict[str, Any] = {"collection": name, "hits": hits}
    if found.warnings:  # what did not apply (a filter key no document has, a signal that found nothing)
        answer["warnings"] = list(found.warnings)
    return answer


def _region(region: RegionObject) -> dict[str, Any]:
    """A region as an agent reads it: where (a page box or a line range), what it says, how and how well."""
    out: dict[str, Any] = {}
    if isinstance(region.bbox, list):
        out["bbox"] = [round(v, 4) for v in region.bbox]
    if isinstance(region.lines, list):
        out["lines"] = f"{region.lines[0]}-{region.lines[1]}"
    text = region.text if len(region.text) <= MAX_REGION_TEXT else region.text[:MAX_REGION_TEXT] + "…"
    return {**out, "text": text, "source": region.source, "score": round(region.score, 4)}


async def _get_page(collections: Collections, name: str, document_id: str, page: int, max_side: int) -> list[Any]:
    store = await collections.store(name)
    if store.config.unit_kind != "page":
        raise ToolError(f"not_a_page_collection: collection {name!r} holds text chunks; use read_lines")
    found = await page_image(collections, name, document_id, page, ImageSize.FULL, if_none_match=None)
    assert not isinstance(found, str)  # no If-None-Match given
    png, width, height = await asyncio.to_thread(scaled_png, found.data, min(max_side, MAX_IMAGE_SIDE))
    unit = await asyncio.to_thread(store.get_unit, document_id, page)
    text = (unit.text if unit is not None else None) or "(this page has no text layer)"
    return [Image(data=png, format="png"), f"{document_id} page {page} ({width}x{height} px). Text:\n{text}"]


async def _get_document(collections: Collections, name: str, document_id: str) -> dict[str, Any]:
    doc = await collections.get_document(name, document_id)
    store = await collections.store(name)
    out: dict[str, Any] = {"document_id": doc.id, "metadata": doc.metadata, "created_at": doc.created_at}
    if store.config.unit_kind == "page":
        out["pages"] = doc.page_numbers
        return out
    numbers = doc.page_numbers if isinstance(doc.page_numbers, list) else []
    units = await asyncio.to_thread(lambda: [store.get_unit(document_id, n) for n in numbers[:MAX_CHUNKS_LISTED]])
    out["chunks"] = [
        {
            "path": u.metadata.get("path"),
            "lines": u.metadata.get("lines"),
            "kind": u.metadata.get("chunk_kind"),
            "name": u.metadata.get("name"),
        }
        for u in units
        if u is not None
    ]
    out["chunks_total"] = len(numbers)
    return out


async def _read_lines(collections: Collections, name: str, document_id: str, start: int, end: int | None) -> str:
    store = await collections.store(name)
    if store.config.unit_kind != "chunk":
        raise ToolError(f"not_a_text_collection: collection {name!r} holds pages; use get_page")
    original = await asyncio.to_thread(store.get_original, document_id)
    if original is not None:
        text = original.data.decode("utf-8", errors="replace")
    else:
        doc = await collections.get_document(name, document_id)  # 404 document_not_found
        numbers = doc.page_numbers if isinstance(doc.page_numbers, list) else []
        units = await asyncio.to_thread(lambda: [store.get_unit(document_id, n) for n in numbers])
        text = text_from_chunks((u.metadata, u.text or "") for u in units if u is not None)
    lines = dict(enumerate(text.split("\n"), start=1))
    total = max(lines, default=0)
    if start > total:
        raise ToolError(f"invalid_lines: document {document_id!r} has {total} lines; start must be 1..{total}")
    shown, first, last = line_window(lines, start, end, total)
    more = f" (lines {last + 1}..{total} remain)" if last < total else ""
    return f"{document_id} lines {first}-{last} of {total}{more}:\n{shown}"
