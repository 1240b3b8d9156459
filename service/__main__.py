"""``python -m service serve | index | search | collections | documents``.

``serve`` loads the model first (a missing checkpoint stops here with instructions), then runs the app under
uvicorn. ``index`` and ``search`` run in-process (no server needed) via ``service.cli``; ``collections`` and
``documents`` (list / show / delete, no model needed) via ``service.cli_manage``. Flags override the
``JEV4_*`` environment variables (see ``service.settings``), which override the defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main", "settings_from_args"]

_LOG = logging.getLogger("jev4.main")


def _model_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and data")
    g.add_argument("--model", help="hub id or local directory (env JEV4_MODEL; default jinaai/jina-embeddings-v4)")
    g.add_argument("--revision", help="hub revision to pin (env JEV4_REVISION)")
    g.add_argument(
        "--tiny",
        action="store_true",
        default=None,
        help="use the tiny RANDOM test checkpoint (in DATA_DIR/tiny-checkpoint); vectors carry no meaning",
    )
    g.add_argument("--local-files-only", action="store_true", default=None, help="never contact the hub")
    g.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--data-dir", type=Path, help="collections and the tiny checkpoint (env JEV4_DATA_DIR)")
    g.add_argument("--collection-backend", choices=["local", "qdrant"])
    g.add_argument("--qdrant-url")
    g.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def _data_flags(parser: argparse.ArgumentParser) -> None:
    """Where the collections are (the management commands need no model)."""
    g = parser.add_argument_group("data")
    g.add_argument("--data-dir", type=Path, help="collections (env JEV4_DATA_DIR; default data)")
    g.add_argument("--collection-backend", choices=["local", "qdrant"])
    g.add_argument("--qdrant-url")


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("server")
    g.add_argument("--host", help="bind address (env JEV4_HOST; default 127.0.0.1)")
    g.add_argument("--port", type=int, help="TCP port (env JEV4_PORT; default 8080)")
    g.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accepted Bearer key (repeat for several; env JEV4_API_KEYS)",
    )
    g.add_argument("--served-model-name")
    g.add_argument("--default-task")
    g.add_argument("--max-batch-tokens", type=int)
    g.add_argument("--max-batch-size", type=int)
    g.add_argument("--max-queue-rows", type=int)
    g.add_argument("--max-items-per-request", type=int)
    g.add_argument("--max-body-bytes", type=int)
    g.add_argument("--max-text-tokens", type=int)
    g.add_argument("--max-pdf-pages", type=int)
    g.add_argument("--pdf-dpi", type=int)
    g.add_argument("--allow-remote-urls", action="store_true", default=None)
    g.add_argument("--allowed-url-host", action="append", dest="allowed_url_hosts")
    g.add_argument("--plain-logs", action="store_false", dest="log_json", default=None, help="text logs, not JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    _model_flags(serve)
    _serve_flags(serve)
    index = sub.add_parser("index", help="add PDFs/images (files or folders) to a collection")
    _model_flags(index)
    search = sub.add_parser("search", help="search a collection with a text query")
    _model_flags(search)
    _command_flags(index, search)
    from service.cli_manage import add_jobs_command, add_manage_commands

    add_manage_commands(sub, _data_flags)
    add_jobs_command(sub, _data_flags)
    return parser


def _command_flags(index: argparse.ArgumentParser, search: argparse.ArgumentParser) -> None:
    """Arguments of ``index``/``search``: from ``service.cli`` when it declares them, else the basic set."""
    try:
        cli: Any = importlib.import_module("service.cli")
    except ImportError:
        cli = None
    if cli is not None and hasattr(cli, "add_index_arguments"):
        cli.add_index_arguments(index)
        cli.add_search_arguments(search)
        return
    index.add_argument("paths", nargs="+", type=Path, help="files or folders of PDFs and images")
    index.add_argument("--collection", required=True)
    search.add_argument("query")
    search.add_argument("--collection", required=True)
    search.add_argument("--top-k", type=int, default=5)


_SETTINGS_FLAGS = [
    "model",
    "revision",
    "tiny",
    "local_files_only",
    "dtype",
    "device",
    "data_dir",
    "collection_backend",
    "qdrant_url",
    "log_level",
    "host",
    "port",
    "api_keys",
    "served_model_name",
    "default_task",
    "max_batch_tokens",
    "max_batch_size",
    "max_queue_rows",
    "max_items_per_request",
    "max_body_bytes",
    "max_text_tokens",
    "max_pdf_pages",
    "pdf_dpi",
    "allow_remote_urls",
    "allowed_url_hosts",
    "log_json",
]


def settings_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Any:
    """Settings from the environment overridden by the flags that were given."""
    from service.settings import Settings

    overrides: dict[str, Any] = {}
    for name in _SETTINGS_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = tuple(value) if isinstance(value, list) else value
    return Settings.from_env(os.environ if environ is None else environ, **overrides)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.engine.loading import ModelLoadError, load_encoder
    from service.http.app import create_app
    from service.logs import configure_logging

    settings = settings_from_args(args)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    _LOG.info("starting", extra={"settings": settings.public_dict()})
    try:
        encoder = load_encoder(settings)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, encoder=encoder)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command in ("collections", "documents", "jobs"):
        from service.cli_manage import manage_command

        return manage_command(args)
    cli: Any = importlib.import_module("service.cli")
    command = cli.index_command if args.command == "index" else cli.search_command
    return int(command(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
