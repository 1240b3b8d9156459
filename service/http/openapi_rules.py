"""Rules the handlers check themselves, stated in the OpenAPI (issue 25 item 8: the schema states every constraint
the server enforces, so a schema-valid request is accepted and every status it can answer is documented).

msgspec states the constraints of the request Structs, but many rules are checked by hand (collection names,
base64 media, exactly one content key, the model's dimensions, lists that must not be empty) and Litestar loses a
few (a bound of 0; booleans it converts leniently). :func:`state_rules` adds them to the generated schema in place
at start-up; :func:`statuses` lists the error statuses of each route (docs/errors.md's policy)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)

from colbert.filters import CONDITION_SCHEMA, KEY_SCHEMA
from colbert.quantize import Codec
from service.collections.chunking.languages import CODE_LANGUAGES, TEXT_LANGUAGES

__all__ = [
    "COLLECTION_NAME_PATTERN",
    "MEDIA_PATTERN",
    "REMOTE_MEDIA_PATTERN",
    "constrain_parameters",
    "exactly_one",
    "json_schema",
    "state_rules",
    "statuses",
]


def state_rules(openapi: OpenAPI, dimensions: tuple[int, ...], *, remote_urls: bool) -> None:
    """Add the rules of this module to ``openapi`` (``dimensions``: the model's Matryoshka sizes, when known;
    ``remote_urls``: whether media fields also take http(s) URLs)."""
    _close_request_bodies(openapi)
    media = REMOTE_MEDIA_PATTERN if remote_urls else MEDIA_PATTERN
    _state_body_rules(openapi.components.schemas, dimensions, media)
    _state_upload_rules(openapi, media)
    _state_filter_rules(openapi.components.schemas)
    _state_original_types(openapi)


# The rule of collection names (colbert.catalog.validate_name), as an ECMAScript pattern: no "__" anywhere, and
# ``(?!\n)`` so that Python's ``$`` does not match before a final newline either.
COLLECTION_NAME_PATTERN = r"^(?!.*__)[a-z0-9][a-z0-9_-]{0,62}(?!\n)$"
_QUEUED = ("/v1/embeddings", "/v1/rerank", "/search", "/documents", "/similarity")  # paths that wait for the model


def statuses(path: str, method: str, operation: Operation) -> list[int]:
    """The error statuses an operation can answer beyond what Litestar infers (docs/errors.md's policy)."""
    if not path.startswith("/v1/"):
        return [401] if path == "/metrics" else []
    out = [401, 503]  # a key when keys are set; the model loading or the index unavailable
    if "{" in path:
        out.append(404)  # the collection, document, job or page named in the path
    if operation.request_body is not None:
        out += [400, 413, 415]
    if method == "post" and (path == "/v1/collections" or path.endswith("/documents")):
        out.append(409)  # the name or the document id is taken
    if method == "post" and path.endswith(_QUEUED):
        out += [429, 404]  # the queue is full; the model named in the body is not served
    return out


def constrain_parameters(operation: Operation) -> None:
    """State the rules the server checks on path and query parameters (collection names, image size)."""
    for parameter in operation.parameters or []:
        if not isinstance(parameter, Parameter):
            continue
        schema = getattr(parameter, "schema", None)
        if parameter.name == "name" and getattr(parameter, "param_in", None) == "path" and schema is not None:
            schema.pattern = COLLECTION_NAME_PATTERN
        if parameter.name == "size" and schema is not None:
            schema.enum = ["full", "thumbnail"]


def _close_request_bodies(openapi: OpenAPI) -> None:
    """``additionalProperties: false`` on every request body object: the server refuses unknown fields
    (``forbid_unknown_fields``), so the schema must not invite them."""
    schemas = openapi.components.schemas
    seen: set[str] = set()

    def close(schema: Any) -> None:
        ref = getattr(schema, "ref", None) or (schema.get("$ref") if isinstance(schema, dict) else None)
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen and name in schemas:
                seen.add(name)
                close(schemas[name])
            return
        for member in getattr(schema, "one_of", None) or []:  # an optional body: [its object, null]
            close(member)
        if isinstance(schema, dict):
            if "properties" in schema:
                schema["additionalProperties"] = False
            return
        if getattr(schema, "properties", None):
            schema.additional_properties = False
            for prop in schema.properties.values():
                for member in [prop, *(getattr(prop, "one_of", None) or [])]:
                    if getattr(member, "ref", None):
                        close(member)

    for item in (openapi.paths or {}).values():
        for method in ("post", "put", "patch"):
            operation = getattr(item, method, None)
            if operation is None or operation.request_body is None:
                continue
            for media in (getattr(operation.request_body, "content", None) or {}).values():
                if media.schema is not None:
                    close(media.schema)


_ONE_OF = {  # objects that need exactly one of these keys (the handlers refuse none or several)
    "SearchRequest": ("query", "query_image", "like"),
}
_NON_EMPTY_LISTS = (  # lists the handlers refuse when empty
    ("RerankRequest", "documents"),
    ("EmbeddingsRequest", "input"),
    ("EmbeddingsRequest", "embedding_type"),
    ("EmbeddingsRequest", "encoding_format"),
    ("EmbeddingsRequest", "encoding_type"),
)
# base64 (standard or URL-safe alphabet, padded or not) of at least one byte, optionally as a data URI: what
# service.embeddings.media decodes; an http(s) URL too when the server fetches remote URLs (JEV4_ALLOW_REMOTE_URLS)
_B64 = "[A-Za-z0-9+/_-]"
_B64_TAIL = rf"(?:{_B64}{{2}}==|{_B64}{{3}}=|{_B64}{{2,3}})"
MEDIA_PATTERN = rf"^(?:data:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+;base64,)?(?:(?:{_B64}{{4}})+{_B64_TAIL}?|{_B64_TAIL})$"
_URL_PATTERN = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$"
REMOTE_MEDIA_PATTERN = MEDIA_PATTERN[:-1] + "|" + _URL_PATTERN
_ENCODINGS = ("float", "base64", "binary", "ubinary")  # service.embeddings.encoding
_API_TASKS = ("retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage")  # parse_api_task
_CODECS = tuple(c.value for c in Codec)  # colbert.quantize: every codec a collection can be created or recoded in
_CHOICES = {  # string fields the handlers check against a fixed set
    ("CreateCollectionRequest", "codec"): _CODECS,
    ("VacuumRequest", "codec"): _CODECS,
    ("EmbeddingsRequest", "embedding_type"): _ENCODINGS,
    ("EmbeddingsRequest", "encoding_format"): _ENCODINGS,
    ("EmbeddingsRequest", "encoding_type"): _ENCODINGS,
    ("RerankRequest", "scoring"): ("maxsim", "cosine"),
    ("EmbeddingsRequest", "task"): _API_TASKS,
}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_ITEM_KEYS = ("text", "image", "pdf")  # an input / rerank object holds exactly one of them
# msgspec converts request bodies leniently (Litestar's strict=False): a boolean also takes 0/1 and "true"/"false"
_LAX_BOOLEAN = [
    {"type": "boolean"},
    {"enum": [0, 1]},
    {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|0|1)$"},
]


def _given(key: str) -> dict[str, Any]:
    """A schema that holds when ``key`` is present and not null (a null field counts as absent here)."""
    return {"required": [key], "properties": {key: {"not": {"type": "null"}}}}


_MEDIA_OBJECT = {"type": "object", "anyOf": [{"required": ["image"]}, {"required": ["pdf"]}]}
_LATE_CHUNKING_MEDIA = {  # late_chunking joins texts into one sequence: no image or PDF input with it
    "required": ["late_chunking", "input"],
    "properties": {
        "late_chunking": {"anyOf": [{"enum": [True, 1]}, {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|1)$"}]},
        "input": {"anyOf": [{"type": "array", "contains": _MEDIA_OBJECT}, _MEDIA_OBJECT]},
    },
}
_ONLY_TRUE = [  # normalized=false is refused: the model's vectors are always L2-normalised
    {"enum": [True, 1]},
    {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|1)$"},
]


def exactly_one(keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**_given(k), "not": {"anyOf": [_given(o) for o in keys if o != k]}} for k in keys]


def _media(kind: str, pattern: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, **({"pattern": pattern} if kind != "text" else {})}


def _input_objects(extra: tuple[str, ...], media: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The objects an input list takes (``service.embeddings.embed``): exactly one of text / image / pdf, a
    non-empty string, nothing else but the ``extra`` keys (a rerank document's ``id``)."""
    more = {k: {"type": "string"} for k in extra}
    return [
        {
            "type": "object",
            "properties": {kind: _media(kind, media), **more},
            "required": [kind],
            "additionalProperties": False,
        }
        for kind in kinds
    ]


def _walk(node: Any) -> Any:
    """The node and every schema under it through oneOf / array items (Litestar Schema objects)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if item is None or not hasattr(item, "one_of"):
            continue
        yield item
        stack += list(item.one_of or [])
        stack.append(getattr(item, "items", None))


def _is(node: Any, kind: str) -> bool:
    return node.type == kind or getattr(node.type, "value", None) == kind


def _state_body_rules(schemas: dict[str, Any], dimensions: tuple[int, ...], media: str) -> None:
    """Rules the handlers check themselves, so msgspec cannot state them: collection names, no empty text input
    (``empty_input``), exactly one content key per input object and per search, the model's dimensions."""
    search = schemas.get("SearchRequest")
    for node in _walk(search.properties.get("query_image") if search is not None and search.properties else None):
        if _is(node, "string"):
            node.pattern = media
    create = schemas.get("CreateCollectionRequest")
    if create is not None and create.properties and "name" in create.properties:
        create.properties["name"].pattern = COLLECTION_NAME_PATTERN
    for component, field in (
        ("RerankRequest", "query"),
        ("RerankRequest", "documents"),
        ("EmbeddingsRequest", "input"),
    ):
        schema = schemas.get(component)
        for node in _walk(schema.properties.get(field) if schema is not None and schema.properties else None):
            if _is(node, "string"):
                node.min_length = 1
            elif _is(node, "object"):
                node.type, node.additional_properties = None, None
                rerank = component == "RerankRequest"  # rerank takes texts and images, not PDFs
                kinds = ("text", "image") if rerank else _ITEM_KEYS
                node.one_of = _input_objects(("id",) if field == "documents" else (), media, kinds)
    for component, field in _NON_EMPTY_LISTS:
        schema = schemas.get(component)
        for node in _walk(schema.properties.get(field) if schema is not None and schema.properties else None):
            if _is(node, "array"):
                node.min_items = 1
    _copy_bounds(schemas)
    for (component, field), choices in _CHOICES.items():
        schema = schemas.get(component)
        for node in _walk(schema.properties.get(field) if schema is not None and schema.properties else None):
            if _is(node, "string"):
                node.enum = list(choices)
    embeddings = schemas.get("EmbeddingsRequest")
    if embeddings is not None:  # aliases: the server refuses two that differ, so the schema takes one at most
        aliases = ("embedding_type", "encoding_format", "encoding_type")
        pairs = [(a, b) for i, a in enumerate(aliases) for b in aliases[i + 1 :]]
        forbidden = [{"allOf": [_given(a), _given(b)]} for a, b in pairs]
        embeddings.schema_not = {"anyOf": [*forbidden, _LATE_CHUNKING_MEDIA]}
    for component, keys in _ONE_OF.items():
        if component in schemas:
            schemas[component].one_of = exactly_one(keys)
    for component, schema in schemas.items():
        for name, prop in (getattr(schema, "properties", None) or {}).items():
            if component.endswith("Request") and any(_is(n, "boolean") for n in _walk(prop)):
                nullable = [{"type": "null"}] if any(_is(n, "null") for n in _walk(prop)) else []
                lax = _ONLY_TRUE if (component, name) == ("EmbeddingsRequest", "normalized") else _LAX_BOOLEAN
                prop.type, prop.one_of = None, [*lax, *nullable]
            if name == "dimensions" and dimensions and component.endswith("Request"):
                for node in _walk(prop):
                    if _is(node, "integer"):
                        node.enum = list(dimensions)


def _state_url_rule(body: dict[str, Any], media: str) -> None:
    """``url``: an http(s) URL where the server fetches them; left out with remote URLs off (422 there)."""
    if media != REMOTE_MEDIA_PATTERN:
        del body["properties"]["url"]
        body["oneOf"] = exactly_one(("pdf", "image", "text"))
    for member in [body["properties"].get("url", {}), *body["properties"].get("url", {}).get("anyOf", [])]:
        if member.get("type") == "string":
            member["pattern"] = _URL_PATTERN


def _state_upload_rules(openapi: OpenAPI, media: str) -> None:
    """The JSON upload body (built by :class:`UploadOperation`): media patterns, and a text document needs
    ``path`` or ``language``."""
    for path, item in (openapi.paths or {}).items():
        operation = item.post if path.endswith("/documents") else None
        content = getattr(getattr(operation, "request_body", None), "content", None) or {}
        body = getattr(content.get("application/json"), "schema", None)
        if not isinstance(body, dict) or "properties" not in body:
            continue
        languages = sorted(CODE_LANGUAGES | TEXT_LANGUAGES)
        form = getattr(content.get("multipart/form-data"), "schema", None)
        if isinstance(form, dict) and "language" in form.get("properties", {}):
            form["properties"]["language"]["enum"] = languages
        for member in [body["properties"]["language"], *body["properties"]["language"].get("anyOf", [])]:
            if member.get("type") == "string":
                member["enum"] = languages
        for member in [body["properties"]["text"], *body["properties"]["text"].get("anyOf", [])]:
            if member.get("type") == "string":
                member["pattern"] = r"\S"  # not empty, not only whitespace
        for kind in ("pdf", "image"):
            for member in [body["properties"][kind], *body["properties"][kind].get("anyOf", [])]:
                if member.get("type") == "string":
                    member["pattern"] = media
        _state_url_rule(body, media)
        text = next(branch for branch in body["oneOf"] if branch["required"] == ["text"])
        text["anyOf"] = [
            {"required": [k], "properties": {k: {"type": "string", "minLength": 1}}} for k in ("path", "language")
        ]
        document = Reference(ref="#/components/schemas/DocumentObject")
        job = Reference(ref="#/components/schemas/JobObject")
        for status, what, schema in (
            ("200", "Already stored (JEV4_DUPLICATE_POLICY=return_existing): that document, X-Duplicate-Of", document),
            ("202", "wait=false: the indexing job (Location: its URL)", job),
        ):
            operation.responses[status] = OpenAPIResponse(  # type: ignore[union-attr,index]
                description=what, content={"application/json": OpenAPIMediaType(schema=schema)}
            )


def _copy_bounds(schemas: dict[str, Any]) -> None:
    """Numeric bounds from msgspec's own JSON Schema of each request Struct: Litestar drops a bound of 0
    (``Meta(ge=0)`` on ``text_weight`` came out without ``minimum``)."""
    from service.collections import schemas as collection_schemas
    from service.collections import search_schemas
    from service.embeddings import schemas as embedding_schemas

    modules = (collection_schemas, search_schemas, embedding_schemas)  # every module that defines a request Struct
    for component, schema in schemas.items():
        struct = next((s for s in (getattr(m, component, None) for m in modules) if s is not None), None)
        if not component.endswith("Request") or not isinstance(struct, type) or not schema.properties:
            continue
        truth = json_schema(struct).get("properties", {})
        for name, prop in schema.properties.items():
            members = truth.get(name, {})
            bounds = {k: v for m in [members, *members.get("anyOf", [])] for k, v in m.items() if k in _BOUNDS}
            for node in _walk(prop):
                if _is(node, "number") or _is(node, "integer"):
                    for key, value in bounds.items():
                        attr = {"exclusiveMinimum": "exclusive_minimum", "exclusiveMaximum": "exclusive_maximum"}
                        setattr(node, attr.get(key, key), value)


def json_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    whole = msgspec.json.schema(struct)
    out: dict[str, Any] = whole["$defs"][struct.__name__]
    return out


_FILTERS = (("SearchRequest", "filter", 0), ("DeleteByFilterRequest", "filter", 1))  # (component, field, fewest)


def _state_filter_rules(schemas: dict[str, Any]) -> None:
    """The filter objects of search and delete-by-filter: what ``parse_filter`` accepts (a delete needs one
    condition); and the rules of a new collection (``service.collections.tasks``): a collection of pages cannot
    take task ``code``, a collection of chunks (``unit_kind`` chunk, or task code without a unit kind) no ``ocr``."""
    for component, field, fewest in _FILTERS:
        schema = schemas.get(component)
        for node in _walk(schema.properties.get(field) if schema is not None and schema.properties else None):
            if _is(node, "object"):
                node.property_names, node.additional_properties = KEY_SCHEMA, CONDITION_SCHEMA
                node.min_properties = fewest or None
    create = schemas.get("CreateCollectionRequest")
    if create is not None:
        code_pages = {"task": {"const": "code"}, "unit_kind": {"const": "page"}}
        ocr = {"type": "string"}
        chunks_ocr = {"ocr": ocr, "unit_kind": {"const": "chunk"}}
        code_ocr = {"ocr": ocr, "task": {"const": "code"}, "unit_kind": {"type": "null"}}  # absent or null: chunk
        create.schema_not = {
            "anyOf": [
                {"required": ["task", "unit_kind"], "properties": code_pages},
                {"required": ["ocr", "unit_kind"], "properties": chunks_ocr},
                {"required": ["ocr", "task"], "properties": code_ocr},
            ]
        }


def _state_original_types(openapi: OpenAPI) -> None:
    """A document's original file is served with the media type read from its bytes at upload (a PDF, any
    image type, text or code): any type."""
    for path, item in (openapi.paths or {}).items():
        responses = getattr(item.get, "responses", None) if path.endswith("/documents/{document_id}/file") else None
        ok = (responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content:
            binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
            ok.content = {"*/*": OpenAPIMediaType(schema=binary)}
