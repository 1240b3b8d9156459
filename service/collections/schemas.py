"""Request and response bodies (msgspec Structs) of the collection routes (``/v1/collections/...``).

Collections::

    POST   /v1/collections                        CreateCollectionRequest -> CollectionObject (201)
    GET    /v1/collections                        -> CollectionList
    GET    /v1/collections/{name}                 -> CollectionObject
    DELETE /v1/collections/{name}                 -> DeletedObject

Documents::

    POST   /v1/collections/{name}/documents       AddDocumentRequest (JSON) or multipart
                                                  -> DocumentObject (201)
                                                  ?wait=false -> JobObject (202, Location: the job)
    GET    /v1/collections/{name}/documents       -> DocumentList (?offset=&limit=)
    GET    /v1/collections/{name}/documents/{id}  -> DocumentObject
    PATCH  /v1/collections/{name}/documents/{id}  PatchDocumentRequest -> DocumentObject (metadata only)
    DELETE /v1/collections/{name}/documents/{id}  -> DeletedObject
    POST   /v1/collections/{name}/delete          DeleteByFilterRequest -> DeletionObject (service.collections.deletion)
    GET    /v1/collections/{name}/jobs            -> JobList (?status=queued|running|succeeded|failed)
    GET    /v1/collections/{name}/jobs/{job_id}   -> JobObject (pages_done / pages_total)

Search bodies: :mod:`service.collections.search_schemas`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "AddDocumentRequest",
    "CollectionList",
    "CollectionObject",
    "CreateCollectionRequest",
    "DeletedObject",
    "DocumentFile",
    "DocumentList",
    "DocumentObject",
    "JobList",
    "JobObject",
    "PatchDocumentRequest",
]

# ``(?!\n)`` because Python's ``$`` also matches before a final newline: without it ``"abc\n"`` would pass and
# coexist with ``"abc"``. The lookahead means the same in ECMAScript, so the OpenAPI pattern stays exact.
DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:@=+-]{0,255}(?!\n)$"
# A bound for offsets and page numbers: within SQLite's 64 bits, and exact in JSON (a double): the OpenAPI's
# ``maximum`` must not round up to a number the server refuses.
MAX_JSON_INT = 2**53 - 1

DocumentId = Annotated[
    str,
    Meta(
        pattern=DOCUMENT_ID_PATTERN,
        description="1-256 characters of A-Z a-z 0-9 . _ : @ = + - starting with a letter, digit or _ "
        "(so that it fits a URL path segment unescaped)",
    ),
]


class CreateCollectionRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/collections``."""

    name: Annotated[str, Meta(description="1-63 characters of a-z 0-9 _ -, starting with a letter or digit")]
    dimensions: Annotated[
        int | None,
        Meta(
            description="Size of the stored single (first-stage) vector: one of the model's Matryoshka sizes "
            "(e.g. 128 ... 2048); default: the model's full size"
        ),
    ] = None
    codec: Annotated[
        str,
        Meta(
            description="Storage of the multi-vectors: float32 | float16 | int8 (default) | binary | residual2 | "
            "residual1 | residualpq2 | residualpq1"
        ),
    ] = "int8"
    pool_factor: Annotated[
        int,
        Meta(ge=1, le=64, description="Token pooling at index time (1 = off; 3 keeps ~1/3 of the vectors)"),
    ] = 1
    task: Annotated[
        Literal["retrieval", "code"],
        Meta(description="Adapter and prompts of documents (<task>.passage) and queries (<task>.query)"),
    ] = "retrieval"
    unit_kind: Annotated[
        Literal["page", "chunk"] | None,
        Meta(
            description="What the collection holds, one kind only: page (PDFs, images) or chunk (text and code "
            "documents); default chunk for task code, else page"
        ),
    ] = None
    ocr: Annotated[
        Literal["auto", "always", "never"] | None,
        Meta(
            description="A page collection's OCR default for uploads that send no ocr: auto (pages without a usable "
            "text layer), always, never; default: the server's (JEV4_OCR)"
        ),
    ] = None


class CollectionObject(Struct, kw_only=True):
    object: str = "collection"
    name: str
    dimensions: int
    multivector_dimensions: int
    codec: str
    pool_factor: int
    task: str = "retrieval"
    unit_kind: str = "page"
    ocr: Annotated[
        str | None, Meta(description="OCR default of its uploads (auto | always | never); null: the server's")
    ] = None
    documents: int
    pages: int
    disk_bytes: int | None = None  # embedded backend: its files' size; None: not known here (Qdrant)
    cells: Annotated[
        int | None,
        Meta(
            description="Cells of the pooled_ivf first stage (trained once by POST /v1/collections/{name}/cells); "
            "null: none, so first_stage pooled_ivf is a 422 (always null on the Qdrant backend)"
        ),
    ] = None


class CollectionList(Struct, kw_only=True):
    object: str = "list"
    data: list[CollectionObject]


class DeletedObject(Struct, kw_only=True):
    id: str
    object: str
    deleted: bool = True


class AddDocumentRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """JSON body of ``POST /v1/collections/{name}/documents`` (exactly one of ``pdf`` / ``image`` / ``text`` /
    ``url``).

    The multipart form has the same fields: ``file`` (the PDF or image; its kind is read from the bytes),
    ``metadata`` (a JSON object as text), ``pages``, ``document_id``, ``replace``.
    """

    pdf: Annotated[str | None, Meta(description="The PDF as base64, a data URI or an http(s) URL")] = None
    image: Annotated[str | None, Meta(description="The image as base64, a data URI or an http(s) URL")] = None
    text: Annotated[
        str | None, Meta(description="A text or code document (chunked by structure, embedded with late chunking)")
    ] = None
    url: Annotated[
        str | None,
        Meta(
            description="An http(s) URL of any document the collection takes (PDF, office file, e-book, image, web "
            "page, text/code), fetched under the server's URL rules (JEV4_ALLOW_REMOTE_URLS, allowed hosts, no "
            "private addresses, size and time limits) and read like an uploaded file named by the URL's last path "
            "segment; the URL is kept as the metadata key `source` (unless metadata sets one)",
        ),
    ] = None
    path: (
        Annotated[
            str,
            Meta(
                max_length=1024,
                description="Path of a text document (e.g. src/app.py): its extension names the language",
            ),
        ]
        | None
    ) = None
    language: Annotated[
        str | None,
        Meta(
            description="Language of a text document when the path does not say: python, javascript, typescript, "
            "tsx, go, rust, java, c, cpp, bash, markdown, text"
        ),
    ] = None
    metadata: Annotated[
        dict[str, Any] | None, Meta(description="Document metadata (JSON object); searchable by filter")
    ] = None
    pages: Annotated[str | None, Meta(description='PDF pages to index, 1-based: "1-3,7"; default all')] = None
    ocr: Annotated[
        Literal["auto", "always", "never"] | None,
        Meta(description="OCR of page images: auto (pages without a text layer), always, never; default JEV4_OCR"),
    ] = None
    document_id: Annotated[DocumentId | None, Meta(description="Default: a new random id")] = None
    replace: Annotated[bool, Meta(description="Replace a document with the same id (else 409)")] = False


class PatchDocumentRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/collections/{name}/documents/{id}``: new metadata, nothing re-embedded."""

    metadata: Annotated[
        dict[str, Any],
        Meta(
            description="A JSON Merge Patch (RFC 7396) of the document's metadata: keys given are set, a null "
            "value removes the key, nested objects merge; with replace=true, exactly this object"
        ),
    ]
    replace: Annotated[bool, Meta(description="Store exactly `metadata` instead of merging it")] = False


class VacuumRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional body of ``POST /v1/collections/{name}/vacuum``."""

    codec: Annotated[
        str | None,
        Meta(
            description="Rebuild the collection with this multi-vector codec (float32 | float16 | int8 | binary | "
            "residual2 | residual1 | residualpq2 | residualpq1), keeping every document; the old collection serves "
            "until the new one is complete. 409 collection_busy while the collection is being written"
        ),
    ] = None


class VacuumObject(Struct, kw_only=True):
    """What ``POST /v1/collections/{name}/vacuum`` did; byte counts are null where this server cannot see the
    disk (Qdrant, which compacts by itself)."""

    object: str = "collection.vacuum"
    collection: str
    bytes_before: int | None
    bytes_after: int | None
    bytes_reclaimed: int | None
    note: str


class CellsRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional body of ``POST /v1/collections/{name}/cells``."""

    cells: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=65536,
                description="How many cells to train (default: the power of two at or above √(8 × pages)); ignored "
                "when the collection has its cells already (they are never retrained)",
            ),
        ]
        | None
    ) = None


class CellsObject(Struct, kw_only=True):
    """What ``POST /v1/collections/{name}/cells`` did: the collection's cell count and the units filed now (0 when
    every unit was filed already)."""

    object: str = "collection.cells"
    collection: str
    cells: int
    units_filed: int


class DocumentFile(Struct, kw_only=True):
    """The original file kept with a document (JEV4_KEEP_ORIGINALS)."""

    media_type: str
    bytes: int
    name: str | None = None


class DocumentObject(Struct, kw_only=True):
    object: str = "document"
    id: str
    collection: str
    pages: int
    metadata: dict[str, Any]
    created_at: float
    content_hash: str | None = None  # sha256 of the uploaded bytes (+ page selection), see JEV4_DUPLICATE_POLICY
    warnings: Annotated[
        list[str],
        Meta(
            description="What was stored anyway but will surprise a searcher, e.g. 'no text found: visual search "
            "only' for a page document none of whose pages has text (no text layer, and OCR read no word)"
        ),
    ] = []
    page_numbers: Annotated[
        list[int] | UnsetType,
        Meta(
            description="GET of one document: its page numbers, ascending, as search hits' `page` and the page "
            "routes use them (a PDF indexed with pages '1,3' has [1, 3]; an image [1])"
        ),
    ] = UNSET
    file: Annotated[
        DocumentFile | None,
        Meta(
            description="The original file kept with the document (GET .../documents/{id}/file), or null when "
            "none was kept (JEV4_KEEP_ORIGINALS off when it was uploaded)"
        ),
    ] = None


class DocumentList(Struct, kw_only=True):
    object: str = "list"
    data: list[DocumentObject]
    offset: int
    limit: int
    total: int


class JobObject(Struct, kw_only=True):
    """Progress of one indexing job (``?wait=false``). Jobs are stored with the collections (any replica can
    answer a poll); a job whose process stopped before it ended reads as failed (``job_interrupted``)."""

    object: str = "indexing_job"
    id: str
    collection: str
    document_id: str
    status: Annotated[str, Meta(description="queued | running | succeeded | failed")]
    pages_done: int
    pages_total: Annotated[int | None, Meta(description="Known once the PDF has been opened")] = None
    created_at: float
    finished_at: float | None = None
    document: DocumentObject | None = None
    error: Annotated[dict[str, str] | None, Meta(description="The error body a synchronous request would have had")] = (
        None
    )


class JobList(Struct, kw_only=True):
    """The indexing jobs the server remembers for a collection (queued, running, and the newest finished ones),
    newest first, from every process sharing the data directory or Qdrant (jobs are stored, not kept in memory)."""

    object: str = "list"
    data: list[JobObject]
