"""``python -m service serve | index | search | collections | documents``.

``serve`` loads the model first (a missing checkpoint stops here with instructions), then runs the app under
uvicorn. ``index`` and ``search`` run in-process (no server needed) via ``service.cli.files``; ``collections`` and
``documents`` (list / show / delete, no model needed) via ``service.cli.manage``. Flags override the
``JEV4_*`` environment variables (see ``service.settings``), which override the defaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from service.cli.files import add_index_arguments, add_search_arguments, index_command, search_command
from service.flags import SECTIONS, add_settings_flags, settings_from_args
from service.settings import Settings, SettingsError

__all__ = ["build_parser", "main", "settings_from_args"]

_LOG = logging.getLogger("jev4.main")


def _data_flags(parser: argparse.ArgumentParser) -> None:
    """Where the collections are (the management commands need no model): the collections settings' flags."""
    add_settings_flags(parser, ("collections",))


def build_parser() -> argparse.ArgumentParser:
    """``serve``/``index``/``search``; their settings flags are generated from ``Settings`` (``service.flags``)."""
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    index = sub.add_parser("index", help="add PDFs/images (files or folders) to a collection")
    search = sub.add_parser("search", help="search a collection with a text query")
    add_index_arguments(index)
    add_search_arguments(search)
    for name, command in (("serve", serve), ("index", index), ("search", search)):
        add_settings_flags(command, SECTIONS[name])
    from service.cli.manage import add_jobs_command, add_manage_commands

    add_manage_commands(sub, _data_flags)
    add_jobs_command(sub, _data_flags)
    return parser


def serve(settings: Settings) -> int:
    """Build the MaxSim kernel, load the model, then run the app under uvicorn (blocking)."""
    from service.engine.kernel import KernelUnavailableError, build_kernel
    from service.engine.loading import ModelLoadError, load_encoder
    from service.http.app import create_app
    from service.http.server import run_server
    from service.logs import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    _LOG.info("starting", extra={"settings": settings.public_dict()})
    if settings.api_keys:
        _LOG.info("auth is on: %d API key(s) accepted (JEV4_API_KEYS)", len(settings.api_keys))
    else:
        _LOG.warning("auth is OFF: every route is open (set JEV4_API_KEYS=key1,key2 to require a Bearer key)")
    try:
        build_kernel(settings)
        encoder = load_encoder(settings)
    except (ModelLoadError, KernelUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, encoder=encoder)
    run_server(app, settings)  # uvicorn with connection limits (service.http.server)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(settings)
    if args.command in ("collections", "documents", "jobs"):
        from service.cli.manage import manage_command

        return manage_command(args)
    command = index_command if args.command == "index" else search_command
    return command(args, settings)


if __name__ == "__main__":
    sys.exit(main())
