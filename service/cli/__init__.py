"""``python -m service serve | index | search | collections | documents | jobs``: one module per command.

Every command but ``serve`` and ``jobs`` is a thin layer over :class:`service.collections.manager.Collections`,
the application service the HTTP routes call (:mod:`service.cli.session` builds it from the same settings), so a
mistake gets the route's message and an exit status from the one error table (``service.errors``). ``search``,
``index`` and ``documents`` also run over a running server (``--url`` / ``JEV4_URL``: :mod:`service.cli.remote`),
with the same output.
Flags override the ``JEV4_*`` environment variables (:mod:`service.settings`), which override the defaults; each
command takes only the settings that matter to it (:data:`service.flags.SECTIONS`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.cli import collections, documents
from service.cli.index import add_index_arguments, index_command
from service.cli.jobs import add_jobs_command, jobs_command
from service.cli.remote import server_of, settings_environ
from service.cli.search import add_search_arguments, search_command
from service.cli.serve import serve
from service.cli.session import fail, run_command, run_door_command
from service.flags import FIELDS, SECTIONS, add_settings_flags, given_flags, settings_from_args
from service.mcp.stdio import add_mcp_command
from service.settings import SettingsError

__all__ = ["build_parser", "main"]


def _finish(parser: argparse.ArgumentParser, *, collection: bool = False) -> None:
    """The management commands' common flags: ``--collection``, ``--json`` and where the collections are."""
    if collection:
        parser.add_argument("--collection", required=True, help="collection name")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    add_settings_flags(parser, SECTIONS["manage"])


def build_parser() -> argparse.ArgumentParser:
    """Every command and its flags; settings flags are generated from ``Settings`` (``service.flags``)."""
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="jina-embeddings-v4 embeddings and document search. `serve` runs the HTTP API; `index`, `search`, "
        "`collections` and `documents` work on the same data directory without a server (with the API's rules and "
        "messages), or (`search`, `index`, `documents`) ask a running server given by --url or JEV4_URL; `jobs` asks a "
        "running server.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the HTTP server")
    index = sub.add_parser(
        "index",
        help="add PDFs/images, or text and code (--text, --task code), from files or folders to a collection",
        description="Add files and folders to a collection (created when missing), as uploads to the API would: "
        "PDFs and images by default, text and code files with --text or --task code (a repository walk). A stored "
        "document is skipped (pages: unless --replace; text: when unchanged), so running the same command again "
        "resumes an interrupted run.",
    )
    search = sub.add_parser(
        "search",
        help="search a collection with a text query",
        description="Search a collection as POST /v1/collections/{name}/search does: a table of hits (rank, score, "
        "document and page, or path and lines of a code chunk, the signals that found it) or --json lines.",
    )
    add_index_arguments(index)
    add_search_arguments(search)
    for name, command in (("serve", serve_parser), ("index", index), ("search", search)):
        add_settings_flags(command, SECTIONS[name], FIELDS.get(name, ()))
    collections.add_collections_command(sub, _finish)
    documents.add_documents_command(sub, _finish)
    add_jobs_command(sub, _finish)
    add_mcp_command(sub)  # python -m service mcp (service.mcp.stdio)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = args.command in ("search", "index", "documents")  # these also run over a server (--url)
    try:
        settings = settings_from_args(args, settings_environ() if client else None)
    except SettingsError as exc:
        return fail(str(exc))
    server = server_of(args) if client else None
    if server is not None and given_flags(args):
        return fail(
            f"{given_flags(args)[0]} is a setting of this process, not of the server at {server.url} (it uses its own "
            "settings): leave it out, or leave out --url and JEV4_URL to work without a server"
        )
    if args.command == "serve":
        return serve(settings)
    if args.command == "index":
        return index_command(args, settings, server)
    if args.command == "search":
        return search_command(args, settings, server)
    if args.command == "jobs":
        return jobs_command(args, settings)
    if hasattr(args, "run"):  # sub-commands that name their own runner (mcp)
        return int(args.run(args, settings))
    if args.command == "documents":
        action = documents.ACTIONS[args.action]
        return run_door_command(settings, lambda c: action(c, args), model=False, server=server)
    manage = collections.ACTIONS[args.action]
    return run_command(settings, lambda c: manage(c, args), model=False)
