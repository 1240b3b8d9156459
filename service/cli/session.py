"""What every CLI command shares: the application service it calls, how an error is printed, confirmations.

A command runs against :class:`~service.collections.manager.Collections`, the object the HTTP controllers call,
built from the same :class:`~service.engine.runtime.Runtime` the server builds (catalog; with ``model=True``
also the model, its batcher and preprocessing pool, started in the foreground), without HTTP. So validation,
limits and errors are the HTTP route's: an error the API answers with a status and a message prints
``error: <that message>`` on one line and exits with :func:`service.errors.cli_exit_status` (2: the command as
given cannot run; 1: it was refused), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from service.errors import cli_exit_status, error_info

if TYPE_CHECKING:
    from service.cli.door import Door
    from service.cli.remote import Server
    from service.collections.manager import Collections
    from service.settings import Settings

__all__ = ["confirm", "fail", "json_object", "open_collections", "run_command", "run_door_command"]


def fail(message: str, status: int = 2) -> int:
    """Print ``error: message`` on stderr; the exit status to return."""
    print(f"error: {message}", file=sys.stderr)
    return status


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``--metadata``, ``--filter``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


@asynccontextmanager
async def open_collections(settings: Settings, *, model: bool) -> AsyncIterator[Collections]:
    """The collections service over the settings' catalog; with ``model`` the model is loaded and warmed first
    (a ModelLoadError or KernelUnavailableError propagates: :func:`run_command` prints it)."""
    from service.collections.manager import Collections
    from service.engine.runtime import Runtime
    from service.metrics import Metrics

    runtime = Runtime(settings, Metrics())
    try:
        if model:
            await runtime.start(background=False)
        else:
            await runtime.open_catalog()
        collections = Collections(runtime)
        try:
            yield collections
        finally:
            await collections.close()
    finally:
        await runtime.close()


Command = Callable[["Collections"], Awaitable[int]]
DoorCommand = Callable[["Door"], Awaitable[int]]


def run_command(settings: Settings, command: Command, *, model: bool) -> int:
    """Run ``command`` over a fresh :func:`open_collections`; a known error is one line and its exit status."""

    from service.engine.kernel import KernelUnavailableError
    from service.engine.loading import ModelLoadError

    async def main() -> int:
        async with open_collections(settings, model=model) as collections:
            return await command(collections)

    return _run(main(), (ModelLoadError, KernelUnavailableError))


def run_door_command(settings: Settings, command: DoorCommand, *, model: bool, server: Server | None) -> int:
    """:func:`run_command` for a command that also runs over a server: with ``server``, ``command`` gets
    :class:`~service.cli.remote.RemoteCollections` (no model, no data directory) and errors read the same."""
    if server is None:
        return run_command(settings, command, model=model)

    from service.cli.remote import ServerUnreachable, open_remote

    async def main() -> int:
        async with open_remote(server) as door:
            return await command(door)

    return _run(main(), (ServerUnreachable,))


def _run(main: Coroutine[Any, Any, int], stops: tuple[type[Exception], ...]) -> int:
    """Run ``main``; a known error is one line (``error: <message>``) and its exit status, never a traceback;
    ``stops`` (the model cannot load, no server answers) exit 2 with their own message."""
    try:
        return asyncio.run(main)
    except stops as exc:
        return fail(str(exc))
    except Exception as exc:  # the outermost layer of the CLI: the API's message, never a traceback
        info = error_info(exc)
        if info is None:
            raise
        return fail(info.message, cli_exit_status(info))


def confirm(question: str, *, yes: bool) -> bool:
    """True when ``--yes`` was given or a person at a terminal answers y; with no terminal on stdin, False after
    saying to pass ``--yes`` (a script must say so explicitly, never by piping ``y``)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        print(f"error: {question} needs confirmation: pass --yes (stdin is not a terminal)", file=sys.stderr)
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("cancelled: nothing was deleted", file=sys.stderr)
    return False
