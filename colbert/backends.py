"""The one place that knows which index backends exist and how each is configured.

``open_backend("local", data_dir, local_options=...)`` — the embedded SQLite backend
(:class:`colbert.local.backend.LocalBackend`); ``open_backend("qdrant", data_dir, qdrant_url=...,
qdrant_api_key=..., qdrant_options=..., qdrant_client=...)`` — Qdrant (:class:`colbert.qdrant.backend.QdrantBackend`;
no URL: qdrant-client's local mode under ``<data_dir>/qdrant``). Everything else holds a
:class:`colbert.backend.Backend` and never asks which one it is. A new backend is one more entry here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colbert.backend import Backend

__all__ = ["BACKENDS", "open_backend"]

BACKENDS = ("local", "qdrant")


def open_backend(kind: str, data_dir: Path, **options: Any) -> Backend:
    """The backend ``kind`` (one of :data:`BACKENDS`) over ``data_dir`` with its ``options`` (module doc);
    ``ValueError`` for an unknown kind or an option no backend takes."""
    if kind == "local":
        from colbert.local.backend import LocalBackend

        _only(kind, options, _OPTIONS[kind])
        return LocalBackend(data_dir, options.get("local_options"))
    if kind == "qdrant":
        from colbert.qdrant.backend import QdrantBackend  # qdrant-client is imported only when used

        _only(kind, options, _OPTIONS[kind])
        return QdrantBackend(
            data_dir,
            url=options.get("qdrant_url"),
            api_key=options.get("qdrant_api_key"),
            options=options.get("qdrant_options"),
            client=options.get("qdrant_client"),
        )
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {kind!r}")


_OPTIONS = {
    "local": {"local_options"},
    "qdrant": {"qdrant_url", "qdrant_api_key", "qdrant_options", "qdrant_client"},
}


def _only(kind: str, options: dict[str, Any], known: set[str]) -> None:
    """Another backend's options are ignored (settings pass every backend's); a name no backend takes is refused."""
    unknown = sorted(set(options) - set().union(*_OPTIONS.values()))
    if unknown:
        raise ValueError(f"no backend takes the options {unknown} (the {kind} backend takes {sorted(known)})")
