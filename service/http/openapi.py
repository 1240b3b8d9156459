"""The OpenAPI document and the interactive docs, served with no outside host (works offline).

- ``/docs`` (and ``/docs/swagger``): Swagger UI, its JavaScript/CSS served from ``/docs/assets/`` out of the
  ``swagger-ui-bundle-v2`` package (a maintained wheel that ships the swagger-ui dist files) — no CDN, no
  favicon from the web. ``/docs/openapi.json``: the schema.
- Every error response in the schema is the body the server really sends, ``{"error": {"message", "type",
  "code"}}`` (:class:`ErrorResponse`), not Litestar's default ``{"status_code", "detail", "extra"}``; the
  statuses a route can answer follow the policy in ``docs/errors.md``.
- the statuses each route can answer and the rules its handlers check themselves are added to the schema by
  ``service.http.openapi_rules`` (so schemathesis' checks hold: docs/robustness.md);
- :class:`UploadOperation` documents a body the handler reads itself (JSON *or* multipart), so "Try it out"
  offers the file picker for the upload route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Encoding,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.static_files import create_static_files_router

from service.http.openapi_rules import constrain_parameters, exactly_one, json_schema, state_rules, statuses

__all__ = [
    "ASSETS_PATH",
    "DOCS_PATH",
    "ErrorDetail",
    "ErrorResponse",
    "OfflineSwaggerPlugin",
    "UploadOperation",
    "document_errors",
    "openapi_config",
]

DOCS_PATH = "/docs"
ASSETS_PATH = "/assets"  # under DOCS_PATH
_ASSETS = f"{DOCS_PATH}{ASSETS_PATH}"


class ErrorDetail(msgspec.Struct, kw_only=True):
    message: str
    """What is wrong and what to send instead (names the input and, for limits, the setting)."""
    type: str
    """invalid_request_error | authentication_error | not_found_error | conflict_error | request_too_large |
    rate_limit_error | service_unavailable | server_error"""
    code: str
    """A stable machine-readable code (e.g. input_too_long, invalid_image, too_many_pages)."""


class ErrorResponse(msgspec.Struct, kw_only=True):
    """The body of every error response (OpenAI-shaped; Jina clients read ``error.message``)."""

    error: ErrorDetail
    detail: str
    """``error.message`` again, at the top level: Jina's API and its published clients (LangChain, LlamaIndex,
    Haystack) read ``detail``."""


# Status -> what it means here (the policy of docs/errors.md, in one line each).
_ERROR_STATUSES: dict[int, str] = {
    400: "The body cannot be read: malformed JSON or multipart",
    401: "Missing or invalid API key",
    404: "Unknown route, collection, document or job",
    409: "The name or document id is taken (or the content is a duplicate)",
    413: "Over a size limit; the message names the JEV4_* setting that raises it",
    415: "Wrong media type: the Content-Type, or bytes that are not the kind the field expects",
    422: "Readable, but a value is invalid (schema, task, dimensions, pages, filter, too-long input, ...)",
    429: "Queue full; retry after the Retry-After header",
    503: "The model is loading or the index is unavailable",
}


class OfflineSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI whose assets come from the ``swagger-ui-bundle-v2`` wheel, served under ``/docs/assets``."""

    def __init__(self, path: str | list[str]) -> None:
        assets = Path(swagger_ui_bundle.swagger_ui_path)
        super().__init__(
            js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            css_url=f"{_ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{_ASSETS}/swagger-ui-standalone-preset.js",
            path=path,
            favicon=f"<link rel='icon' type='image/png' href='{_ASSETS}/favicon-32x32.png'>",
        )
        self.assets = assets

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(ASSETS_PATH, directories=[self.assets], name="docs-assets", opt={"public": True})
        )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="jev4-serve",
        version="0.1.0",
        description="Jina/OpenAI-compatible embeddings for jina-embeddings-v4, rerank and collections. Every error "
        'is `{"error": {"message", "type", "code"}}`; 400 = the body cannot be read, 422 = a value is invalid '
        "(see docs/errors.md).",
        path=DOCS_PATH,
        render_plugins=[OfflineSwaggerPlugin(path=["/", "/swagger"])],
    )


def document_errors(openapi: OpenAPI, dimensions: tuple[int, ...] = (), *, remote_urls: bool = False) -> None:
    """Replace every documented 4xx/5xx body of ``openapi`` (in place) with :class:`ErrorResponse`, add the
    statuses each route can answer, and state the rules the handlers check themselves (``dimensions``: the
    model's Matryoshka sizes, when the model is known)."""
    components = msgspec.json.schema_components([ErrorResponse], ref_template="#/components/schemas/{name}")[1]
    schemas = openapi.components.schemas
    for name, schema in components.items():
        schemas[name] = schema  # plain JSON Schema: to_schema() keeps dicts as they are
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None or operation.responses is None:
                continue
            for status in list(operation.responses):
                if int(status) >= 400:
                    operation.responses[status] = _error_response(int(status))
            if 422 not in (int(s) for s in operation.responses) and (operation.parameters or operation.request_body):
                operation.responses["422"] = _error_response(422)
            for code in statuses(path, method, operation):
                operation.responses.setdefault(str(code), _error_response(code))
            constrain_parameters(operation)
            _optional_body(operation)
    state_rules(openapi, dimensions, remote_urls=remote_urls)


def _optional_body(operation: Operation) -> None:
    """A JSON body the handler takes as ``X | None = None`` (the vacuum's) may be left out, which Litestar's
    ``required: true`` denies: a body whose schema admits null is stated optional."""
    body = operation.request_body
    if not isinstance(body, RequestBody) or not body.content:
        return
    for media in body.content.values():
        branches = getattr(media.schema, "one_of", None) or []
        if any(isinstance(b, Schema) and b.type == OpenAPIType.NULL for b in branches):
            body.required = False


def _error_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=_ERROR_STATUSES.get(status, "Error"),
        content={"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ErrorResponse"))},
    )


@dataclass
class UploadOperation(Operation):
    """The upload route's operation: its body is JSON (``AddDocumentRequest``) or a multipart form with a
    ``file`` part (the handler parses both itself, so Litestar cannot infer them)."""

    def __post_init__(self) -> None:
        from service.collections.schemas import AddDocumentRequest

        as_json = json_schema(AddDocumentRequest)
        # exactly one of the content fields (service.collections.uploads refuses none or several)
        as_json["oneOf"] = exactly_one(("pdf", "image", "text", "url"))
        # minLength: an empty file is refused (422 empty_input, service.collections.uploads)
        form: dict[str, Any] = {
            "file": {"type": "string", "format": "binary", "minLength": 1, "description": "The PDF or image"}
        }
        for name, prop in as_json["properties"].items():
            if name not in ("pdf", "image", "text", "url"):  # a text document is a file too (path or language)
                kind = "JSON object as text" if name == "metadata" else "text"
                form[name] = {"type": "string", "description": f"{prop.get('description', name)} ({kind})"}
                if name == "metadata":  # a JSON object in a part of its own (the encoding below says so)
                    form[name] = {"type": "object", "description": form[name]["description"]}
                if name == "replace":  # service.collections.uploads._flag (case-insensitive, spaces ignored)
                    form[name]["enum"] = ["true", "false", "1", "0", "yes", "no", "on", "off", ""]
                rules = [prop, *prop.get("anyOf", [])]
                form[name].update({k: v for r in rules for k, v in r.items() if k in ("pattern", "maxLength")})
        content = {
            "multipart/form-data": OpenAPIMediaType(
                schema={  # type: ignore[arg-type]
                    "type": "object",
                    "properties": form,
                    "required": ["file"],
                    "additionalProperties": False,  # other parts are refused (unknown form field)
                },
                encoding={"metadata": Encoding(content_type="application/json")},
            ),
            "application/json": OpenAPIMediaType(schema=as_json),  # type: ignore[arg-type]
        }
        self.request_body = RequestBody(content=content, required=True)
