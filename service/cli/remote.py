"""``search``, ``index`` and ``documents`` over a running server: ``--url`` (or ``JEV4_URL``) names it,
``--api-key`` (or ``JEV4_API_KEY``) is the Bearer key sent. No model is loaded and no data directory is opened:
a search costs one HTTP request instead of a model load.

:class:`RemoteCollections` is the commands' :class:`~service.cli.door.Door` as requests made with
:class:`service.client.AsyncClient`; each answer is decoded into the server's own schemas (the types
``Collections`` returns), so the commands print the same lines either way. A refusal of the server
(4xx/5xx) becomes :class:`ServerRefused`, which the error table (``service.errors``) reads like the local error
it stands for: the same one-line message and exit status as without ``--url``. A server that does not answer is
:class:`ServerUnreachable`: one line naming the URL, exit status 2 (the command could not start).

What differs from working on the data directory: the server's settings apply (its limits, duplicate policy,
``JEV4_KEEP_ORIGINALS``), not the local ones; the documents' ids are chosen by the CLI as usual, so the duplicate
policy treats them as ids given by the user; a text/code file is sent again on every run (the server embeds it
again: skipping an unchanged file is done only without ``--url``) and its stored metadata holds ``source`` (the
file's name), as any upload's does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

from service.errors import ServiceError

if TYPE_CHECKING:
    import httpx

    from colbert.store import OriginalFile
    from service.client import AsyncClient
    from service.collections.deletion import DeleteByFilterRequest, DeletionObject
    from service.collections.schemas import (
        CollectionObject,
        CreateCollectionRequest,
        DeletedObject,
        DocumentList,
        DocumentObject,
        JobObject,
    )
    from service.collections.search_schemas import SearchRequest, SearchResponse
    from service.collections.uploads import DocumentUpload

__all__ = [
    "CLIENT_KEY_VARIABLE",
    "RemoteCollections",
    "Server",
    "ServerRefused",
    "ServerUnreachable",
    "add_remote_flags",
    "open_remote",
    "server_of",
    "settings_environ",
]

T = TypeVar("T")
CLIENT_KEY_VARIABLE = "JEV4_API_KEY"  # the client's key (service.client); the server's keys are JEV4_API_KEYS


def add_remote_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="a running server to ask instead of loading the model here (default: JEV4_URL when set); the "
        "settings flags then do not apply (the server has its own)",
    )
    parser.add_argument("--api-key", help="the key sent to --url (default: JEV4_API_KEY)")


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    api_key: str | None  # None: JEV4_API_KEY, else no key (service.client.core.Config)


def server_of(args: argparse.Namespace) -> Server | None:
    """The server the command asks (``--url``, else ``JEV4_URL``), or None: the command works locally."""
    from service.client.core import named_url

    url = named_url(args.url)
    return None if url is None else Server(url, args.api_key)


def settings_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for :class:`~service.settings.Settings` of a command that may be a client: without
    ``JEV4_API_KEY``, which the client reads (``serve`` still refuses it as a misspelt ``JEV4_API_KEYS``)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k != CLIENT_KEY_VARIABLE}


class ServerRefused(ServiceError):
    """The server's error answer, with its status, type, code and message (mapped by ``service.errors`` as the
    local error it reports)."""

    def __init__(self, status: int, type_: str, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status, self.type = status, type_


class ServerUnreachable(Exception):
    """No server answers at the URL (connection refused, DNS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"no server answers at {url} ({reason}); start one with `python -m service serve`, or leave out --url "
            "and JEV4_URL to work on the data directory without a server"
        )


@asynccontextmanager
async def open_remote(server: Server) -> AsyncIterator[RemoteCollections]:
    from service.client import AsyncClient

    async with AsyncClient(server.url, server.api_key) as client:
        yield RemoteCollections(client)


def _decode(response: httpx.Response, type_: type[T]) -> T:
    import msgspec

    return msgspec.json.decode(response.content, type=type_)


def _body(struct: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(struct)


def _upload_form(upload: DocumentUpload) -> tuple[dict[str, Any], dict[str, str]]:
    """The multipart form of ``POST .../documents`` for an upload built as the local path builds it."""
    from service.collections.texts import TextSource

    source = upload.source
    data: dict[str, str] = {}
    if upload.metadata is not None:
        data["metadata"] = json.dumps(upload.metadata)
    if upload.document_id is not None:
        data["document_id"] = upload.document_id
    if upload.replace:
        data["replace"] = "true"
    if isinstance(source, TextSource):
        data["path"] = upload.path or source.path
        name = data["path"].rsplit("/", 1)[-1]
    else:
        if source.pages is not None:
            data["pages"] = source.pages
        name = upload.filename or "document"
    return {"file": (name, source.data)}, data


_FILENAME_STAR = re.compile(r"filename\*=UTF-8''([^;]+)", re.IGNORECASE)


class RemoteCollections:
    """:class:`~service.cli.door.Door` over HTTP (see the module doc)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        from service.client import ClientError

        try:
            return await self.client.request(method, path, **kwargs)
        except ClientError as exc:
            if exc.status is None:
                cause = exc.__cause__
                raise ServerUnreachable(self.client.config.base_url, str(cause or exc.message)) from None
            raise ServerRefused(exc.status, exc.type, exc.code, exc.message) from None

    @staticmethod
    def _c(name: str) -> str:
        return f"/v1/collections/{quote(name, safe='')}"

    def _d(self, name: str, document_id: str) -> str:
        return f"{self._c(name)}/documents/{quote(document_id, safe='')}"

    async def get(self, name: str) -> CollectionObject:
        from service.collections.schemas import CollectionObject

        return _decode(await self._request("GET", self._c(name)), CollectionObject)

    async def create(self, data: CreateCollectionRequest) -> CollectionObject:
        from service.collections.schemas import CollectionObject

        return _decode(await self._request("POST", "/v1/collections", json=_body(data)), CollectionObject)

    async def add_document(
        self, name: str, upload: DocumentUpload, *, wait: bool
    ) -> tuple[DocumentObject | JobObject, bool]:
        """201: the document; 202: its job; 200: a stored document the server returned instead (True second)."""
        from service.collections.schemas import DocumentObject, JobObject

        files, data = _upload_form(upload)
        params = {"wait": "true" if wait else "false"}
        response = await self._request("POST", f"{self._c(name)}/documents", params=params, files=files, data=data)
        if response.status_code == 202:
            return _decode(response, JobObject), False
        return _decode(response, DocumentObject), response.status_code == 200

    async def job(self, name: str, job_id: str) -> JobObject:
        from service.collections.schemas import JobObject

        return _decode(await self._request("GET", f"{self._c(name)}/jobs/{quote(job_id, safe='')}"), JobObject)

    async def list_documents(self, name: str, *, offset: int, limit: int) -> DocumentList:
        from service.collections.schemas import DocumentList

        params = {"offset": offset, "limit": limit}
        return _decode(await self._request("GET", f"{self._c(name)}/documents", params=params), DocumentList)

    async def get_document(self, name: str, document_id: str) -> DocumentObject:
        from service.collections.schemas import DocumentObject

        return _decode(await self._request("GET", self._d(name, document_id)), DocumentObject)

    async def original(self, name: str, document_id: str) -> tuple[str, OriginalFile | None]:
        from colbert.store import OriginalFile

        response = await self._request("GET", f"{self._d(name, document_id)}/file")
        etag = response.headers.get("etag", "")
        found = _FILENAME_STAR.search(response.headers.get("content-disposition", ""))
        filename = unquote(found.group(1), errors="surrogateescape") if found else None
        media_type = response.headers.get("content-type", "application/octet-stream")
        return etag, OriginalFile(response.content, media_type, filename)

    async def delete_document(self, name: str, document_id: str) -> DeletedObject:
        from service.collections.schemas import DeletedObject

        return _decode(await self._request("DELETE", self._d(name, document_id)), DeletedObject)

    async def delete_by_filter(self, name: str, data: DeleteByFilterRequest) -> DeletionObject:
        from service.collections.deletion import DeletionObject

        return _decode(await self._request("POST", f"{self._c(name)}/delete", json=_body(data)), DeletionObject)

    async def search(self, name: str, data: SearchRequest) -> SearchResponse:
        from service.collections.search_schemas import SearchResponse

        return _decode(await self._request("POST", f"{self._c(name)}/search", json=_body(data)), SearchResponse)
