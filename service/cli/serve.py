"""``python -m service serve``: check the port, build the MaxSim kernel, load the model, then run the app under
uvicorn (blocking). The port is checked first, so a second server on a busy port stops at once with a message
naming the port and ``--port`` instead of loading the whole model and then failing to bind."""

from __future__ import annotations

import errno
import logging
import socket

from service.cli.session import fail
from service.settings import Settings, env_name

__all__ = ["port_in_use", "serve"]

_LOG = logging.getLogger("jev4.main")


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (bound and released again at once, as uvicorn binds it), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # uvicorn's option: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (another server?): stop it, or pass --port N "
                    f"({env_name('port')})"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"
    return None


def serve(settings: Settings) -> int:
    """Check the port, build the MaxSim kernel, load the model, then run the app under uvicorn (blocking)."""
    from service.engine.kernel import KernelUnavailableError, build_kernel
    from service.engine.loading import ModelLoadError, load_encoder
    from service.engine.runtime import model_source
    from service.http.app import create_app
    from service.http.server import run_server
    from service.logs import configure_logging_from
    from service.serving import ServingOptions

    serving = ServingOptions.from_settings(settings)
    busy = port_in_use(serving.host, serving.port)
    if busy is not None:
        return fail(busy)
    configure_logging_from(settings)
    _LOG.info("starting", extra={"settings": settings.public_dict()})
    if serving.api_keys:
        _LOG.info("auth is on: %d API key(s) accepted (%s)", len(serving.api_keys), env_name("api_keys"))
    else:
        _LOG.warning("auth is OFF: every route is open (set JEV4_API_KEYS=key1,key2 to require a Bearer key)")
    try:
        build_kernel(settings)
        encoder = load_encoder(model_source(settings))
    except (ModelLoadError, KernelUnavailableError) as exc:
        return fail(str(exc))
    app = create_app(settings, serving=serving, encoder=encoder)
    run_server(app, serving)  # uvicorn with connection limits (service.http.server)
    return 0
