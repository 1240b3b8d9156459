"""``python -m service mcp``: the MCP server over stdio, for agents that start it themselves (Claude Desktop,
Claude Code, Cursor). It opens the same data directory as ``serve`` with the same settings and flags (the
embedded index is shared safely between processes, so it runs beside a server) and loads the model in the
background: ``list_collections`` answers at once, model-backed tools answer ``model_not_ready`` until loaded.
Stdout carries the protocol only; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.flags import SECTIONS, add_settings_flags
from service.settings import Settings

__all__ = ["add_mcp_command", "mcp_command"]


def add_mcp_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``mcp`` (with ``serve``'s settings flags); ``main`` runs ``args.run(args, settings)``."""
    parser = sub.add_parser("mcp", help="run the MCP server over stdio (for agents)")
    add_settings_flags(parser, SECTIONS["serve"])
    parser.set_defaults(run=mcp_command)


def mcp_command(_args: argparse.Namespace, settings: Settings) -> int:
    from service.engine.kernel import KernelUnavailableError
    from service.logs import configure_logging_from

    configure_logging_from(settings)
    try:
        asyncio.run(_serve(settings))
    except KernelUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(settings: Settings) -> None:
    from service.collections.manager import Collections
    from service.engine.runtime import Runtime
    from service.mcp.server import build_server
    from service.mcp.writes import WriteOptions
    from service.metrics import Metrics

    runtime = Runtime(settings, Metrics())
    await runtime.start()
    collections = Collections(runtime)
    try:
        server = build_server(lambda: collections, WriteOptions.from_settings(settings, local_files=True))
        await server.run_stdio_async()
    finally:
        await collections.close()
        await runtime.close()
