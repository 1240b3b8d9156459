"""The MCP write tool ``add_document``, off unless the operator turns it on.

Options are the settings ``mcp_write`` (``JEV4_MCP_WRITE=true`` allows writes) and ``mcp_root`` (``JEV4_MCP_ROOT``:
the folder a stdio server may read local files from — none by default, and never over HTTP, where a path would
name the server's disk, not the caller's). A URL is fetched under the same rules as the API's URL inputs
(``JEV4_ALLOW_REMOTE_URLS``, allowed hosts, size limits); the document then goes through
:meth:`Collections.add_document` like an upload, so ids, duplicates and limits follow the API's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError

from service.collections.indexing import DocumentSource
from service.collections.schemas import DocumentObject
from service.collections.texts import TextSource
from service.collections.upload_files import fetch_document, file_source
from service.collections.uploads import DocumentUpload
from service.embeddings.media import is_url
from service.errors import PayloadTooLargeError

if TYPE_CHECKING:
    from service.collections.manager import Collections
    from service.settings import Settings

__all__ = ["WriteOptions", "add_document"]


@dataclass(frozen=True, slots=True)
class WriteOptions:
    enabled: bool
    root: Path | None  # local files readable under this folder (stdio only); None: no local files

    @classmethod
    def from_settings(cls, settings: Settings, *, local_files: bool) -> WriteOptions:
        root = settings.mcp_root
        return cls(settings.mcp_write, root.expanduser().resolve() if root is not None and local_files else None)


def _local_file(options: WriteOptions, path: str, max_bytes: int) -> bytes:
    if options.root is None:
        raise ToolError(
            "local_files_disabled: this server reads no local files (stdio servers read files under JEV4_MCP_ROOT; "
            "an HTTP server never does); pass a url instead"
        )
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_relative_to(options.root):
        raise ToolError(f"path_not_allowed: {path!r} is not under the allowed folder {str(options.root)!r}")
    if not resolved.is_file():
        raise ToolError(f"file_not_found: no file {path!r}")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise PayloadTooLargeError(f"file: {size} bytes, more than the limit of {max_bytes} (JEV4_MAX_PDF_BYTES)")
    return resolved.read_bytes()


async def add_document(
    collections: Collections,
    options: WriteOptions,
    collection: str,
    url: str | None,
    path: str | None,
    document_id: str | None,
    metadata: dict[str, Any] | None,
    replace: bool,
) -> dict[str, Any]:
    """Fetch or read the file, upload it as the API would, and describe the stored document."""
    if not options.enabled:
        raise ToolError(
            "writes_disabled: this server's MCP tools are read-only (the operator sets JEV4_MCP_WRITE=true)"
        )
    if (url is None) == (path is None):
        raise ToolError("invalid_input: give exactly one of url or path")
    settings = collections.runtime.settings
    await collections.store(collection)  # 404 collection_not_found before any download
    source: DocumentSource | TextSource
    if url is not None:
        if not is_url(url.strip()):
            raise ToolError(f"invalid_input: url must be an http(s) URL, got {url[:80]!r}")
        source, name = await fetch_document(url, settings)  # the route's {"url": ...}: same guard, same converters
        name = name or "download"
    else:
        assert path is not None
        name = Path(path).name
        data = _local_file(options, path, collections.runtime.limits.max_pdf_bytes)
        source = file_source(data, settings, what=name, path=name)
    text_path = name if isinstance(source, TextSource) else None
    origin = None if url is None else url.strip()
    upload = DocumentUpload(source, metadata, document_id, replace, filename=name, path=text_path, url=origin)
    added, duplicate = await collections.add_document(collection, upload, wait=True)
    assert isinstance(added, DocumentObject)  # wait=True: the stored document, never a job
    return {"document_id": added.id, "collection": collection, "units": added.pages, "already_stored": duplicate}
