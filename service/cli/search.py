"""``python -m service search``: ``POST /v1/collections/{name}/search``, without a server or over one.

    python -m service search "quarterly revenue table" --collection samples --tiny
    python -m service search "quarterly revenue table" --collection samples --url http://127.0.0.1:8080

The flags become the route's :class:`~service.collections.search_schemas.SearchRequest` (validated as the route
validates its body) and go to :meth:`Collections.search`; the ranked hits print as a table (rank, score,
document and page, or path and line range for text/code chunks, and the signals that found it) or, with
``--json``, one object per hit. With ``--url`` (or ``JEV4_URL``) the request goes to that server instead
(:mod:`service.cli.remote`: no model loaded here; the same output). Exit status: 0 (also with no results), 1 when
the collection does not exist, 2 when the request is invalid or nothing could start (no server answers at the
URL).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from colbert.hybrid import FIRST_STAGES
from service.cli.remote import add_remote_flags
from service.cli.session import fail, json_object, run_door_command
from service.collections.search_schemas import MAX_CANDIDATES

if TYPE_CHECKING:
    from service.cli.door import Door
    from service.cli.remote import Server
    from service.collections.search_schemas import SearchHit, SearchRequest
    from service.settings import Settings

__all__ = ["add_search_arguments", "search_command"]


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the text query")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--top-k", type=int, default=5, help="how many hits (1..1000; default 5)")
    parser.add_argument(
        "--filter", type=json_object, help='metadata filter, e.g. {"kind": "pdf", "year": {"$gte": 2020}}'
    )
    parser.add_argument("--exhaustive", action="store_true", help="exact MaxSim over every page")
    parser.add_argument(
        "--candidates",
        type=int,
        default=None,
        metavar="N",
        help=f"pages the first stage finds for the exact MaxSim rerank (checked as the API checks it: "
        f"1..{MAX_CANDIDATES}; default 200, growing past 100,000 pages to ~800 at 1M, where pooled_ivf then finds "
        "99%% of the exact top-10): more is slower and finds more",
    )
    parser.add_argument(
        "--first-stage",
        choices=FIRST_STAGES,
        default=None,
        help="how the candidates are found, as the API's first_stage: dense, pooled, ivf (residual codecs) or "
        "pooled_ivf (collections that have cells: trained by themselves past JEV4_AUTO_CELLS_UNITS units, or by "
        "`collections train-cells`); a stage the collection "
        "lacks is refused (exit 2); default: JEV4_FIRST_STAGE (with --url, the server's): pooled_ivf where the "
        "collection has cells, else pooled",
    )
    parser.add_argument(
        "--mode",
        choices=["visual", "text", "hybrid"],
        default=None,
        help="visual (first stage + MaxSim), text (BM25 over the pages' text), hybrid (both, fused); "
        "default: the search_mode setting (hybrid)",
    )
    parser.add_argument(
        "--fusion",
        choices=["rrf", "weighted"],
        default=None,
        help="how hybrid fuses (default: the search_fusion setting, weighted)",
    )
    parser.add_argument("--include-text", action="store_true", help="print each hit's text")
    parser.add_argument("--json", action="store_true", help="one JSON object per hit instead of a table")
    add_remote_flags(parser)


def search_command(args: argparse.Namespace, settings: Settings, server: Server | None = None) -> int:
    """Print the ranked hits of ``args.collection`` for ``args.query`` (the request checked before the model
    loads), asking ``server`` when one is given."""
    from service.errors import ServiceError, cli_exit_status, error_info

    try:
        request = _request(args)
    except ServiceError as exc:
        info = error_info(exc)
        assert info is not None
        return fail(info.message, cli_exit_status(info))
    return run_door_command(settings, lambda c: _search(c, args, request), model=True, server=server)


def _request(args: argparse.Namespace) -> SearchRequest:
    import msgspec

    from service.collections.search_schemas import SearchRequest
    from service.errors import UnprocessableError

    body = {"query": args.query, "top_k": args.top_k, "filter": args.filter, "exhaustive": args.exhaustive}
    body |= {"mode": args.mode, "fusion": args.fusion, "include_text": args.include_text}
    body |= {"candidates": args.candidates, "first_stage": args.first_stage}
    try:
        return msgspec.convert(body, SearchRequest)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(f"invalid search: {exc}", code="validation_error") from None


async def _search(c: Door, args: argparse.Namespace, request: SearchRequest) -> int:
    response = await c.search(args.collection, request)
    for rank, hit in enumerate(response.results, 1):
        print(json.dumps(_json_row(rank, hit), ensure_ascii=False) if args.json else _table_row(rank, hit))
        text = _text(hit)
        if args.include_text and text and not args.json:
            print("     " + " ".join(text.split())[:300])
    for warning in response.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not response.results:
        print("no results", file=sys.stderr)
    return 0


def _text(hit: SearchHit) -> str | None:
    from msgspec import UNSET

    if hit.chunk is not UNSET:
        return hit.chunk.text
    return None if hit.text is UNSET else hit.text


def _found(hit: SearchHit) -> str:
    signals = hit.signals if isinstance(hit.signals, dict) else {}
    return "+".join(k for k in ("text", "maxsim") if k in signals) or "-"


def _table_row(rank: int, hit: SearchHit) -> str:
    """``  1     0.8123  report.pdf  page 2  [text+maxsim]`` or, for a chunk, its path, lines, kind and name."""
    from msgspec import UNSET

    if hit.chunk is UNSET:
        return f"{rank:>3}  {hit.score:#10.4g}  {hit.document_id}  page {hit.unit}  [{_found(hit)}]"
    chunk = hit.chunk
    where = f"{chunk.path}:{chunk.lines[0]}-{chunk.lines[1]}"
    label = f"{chunk.chunk_kind} {chunk.name or ''}".strip()
    return f"{rank:>3}  {hit.score:#10.4g}  {where}  {label}  [{_found(hit)}]"


def _json_row(rank: int, hit: SearchHit) -> dict[str, Any]:
    """One hit as printed by ``--json``: rank, ids, score, signals, metadata (and the chunk of a text hit, the
    text of a page with ``--include-text``)."""
    import msgspec

    signals = msgspec.to_builtins(hit.signals) if isinstance(hit.signals, dict) else {}
    row: dict[str, Any] = {"rank": rank, "document_id": hit.document_id}
    if hit.kind == "chunk":
        row |= {"unit": hit.unit, "kind": hit.kind, "score": hit.score, "signals": signals}
        return {**row, "metadata": hit.metadata, "chunk": msgspec.to_builtins(hit.chunk)}
    row |= {"page": hit.unit, "score": hit.score, "signals": signals}
    if hit.text is not msgspec.UNSET:
        row["text"] = hit.text
    return {**row, "metadata": hit.metadata}
