"""How the HTTP server is reached and guarded: the bound address, the API keys, the Host/Origin/CORS lists and the
connection limits. Read once from :class:`~service.settings.Settings` where the server starts (``serve``, or
``create_app`` for an app built from settings alone) and passed down as this value to the app's guard
(``http/auth.py``), the Host/Origin checks (``http/origin.py``), the MCP route (``mcp/http.py``) and uvicorn
(``http/server.py``); ``jobs list`` takes the Bearer key it sends from here too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["ServingOptions"]


@dataclass(frozen=True, slots=True)
class ServingOptions:
    """Each field is named after its ``JEV4_*`` setting; see :class:`~service.settings.Settings`.

    >>> from service.settings import Settings
    >>> ServingOptions.from_settings(Settings(api_keys=("k1", "k2"))).client_key
    'k1'
    """

    host: str
    port: int
    api_keys: tuple[str, ...]
    metrics_key: str | None
    allowed_hosts: tuple[str, ...]
    cors_allow_origins: tuple[str, ...]
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    keep_alive_timeout_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServingOptions:
        return cls(
            host=settings.host,
            port=settings.port,
            api_keys=settings.api_keys,
            metrics_key=settings.metrics_key,
            allowed_hosts=settings.allowed_hosts,
            cors_allow_origins=settings.cors_allow_origins,
            max_connections=settings.max_connections,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            keep_alive_timeout_s=settings.keep_alive_timeout_s,
        )

    @property
    def client_key(self) -> str | None:
        """The key a local client of this server sends (the first API key), or None on a keyless server."""
        return self.api_keys[0] if self.api_keys else None
