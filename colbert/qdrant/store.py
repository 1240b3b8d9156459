"""The scale-out backend: the same :class:`colbert.store.Store` contract on a Qdrant server (or cluster).

Layout of a collection ``name``:

* ``name`` holds one point per unit: named vector ``dense`` (cosine, HNSW) for the first stage, named
  multivector ``mv`` (dot product per token pair, ``MaxSim`` comparator, HNSW off: ``m=0``, on disk) for the
  exact rerank, and payload ``doc_id``, ``page`` (the unit ordinal), ``kind``, ``version``, ``metadata`` (the
  document's, filterable as ``metadata.<key>``), ``page_metadata`` (the unit's), ``text`` (its text, or null).
* ``name__blobs`` holds the units' images (:mod:`colbert.qdrant.layout`), one vector-less point per image,
  tagged with the document version like the vector points, so every replica serves every page image; and a
  kept original file's parts (:func:`colbert.qdrant.layout.original_points`), tagged the same way.
* ``name__docs`` holds one vector-less point per document (id = uuid5 of the doc id): ``doc_id``, ``version``,
  ``num_units``, ``metadata``, ``created_at``, ``content_hash``, ``warnings`` (absent in records written before
  documents kept warnings: none), ``file`` (the original file's description, or null). The commit record.

Search is one Qdrant query: ``prefetch`` the ``candidates`` nearest pages by ``dense`` (the equality filter
applied inside the prefetch, so selective filters still yield k results), then ``MaxSim`` over ``mv`` of
those; ``exhaustive`` drops the prefetch (a brute-force MaxSim scan, HNSW being off on ``mv``).

Atomicity, as far as Qdrant allows. Qdrant has no multi-request transactions; one upsert request is one
operation in a shard's WAL but its points are not made visible atomically, and nothing spans requests. So
a document is written as a new *version*: (1) upsert all its unit points and image points, tagged with a fresh
``version``, in requests of at most ``max_request_bytes``; (2) upsert its ``__docs`` record naming that
version — the commit point; (3) delete the doc's points of any other version. Searches and reads only return
units whose version equals the doc record's, so a crash or a concurrent reader between steps sees the old
document or the new one, never a mix; leftover points of a crashed write are invisible and are removed by the
next write or delete of that doc id. Deletion removes the record first (commit), then the points.
Not covered: two writers racing on the same doc id (the last record wins), and ``count()``'s unit total,
which counts stored unit points and so may include an in-flight write.

Format version 2 (version 1 predates the first release and is refused by name); sparse vectors of older
tokeniser rules are recomputed from the stored texts on open (:mod:`colbert.qdrant.sparse`).

Codecs (:mod:`colbert.qdrant.codecs`): ``float32``/``float16`` map to Qdrant's storage datatypes; ``int8``/``binary``
documents are stored as float16 of their decoded values (so scores equal the embedded backend's, to float16
rounding) plus Qdrant's scalar / binary quantized copy in RAM, which picks the dense candidates rescored on those
originals; the residual codecs (a per-collection codebook) are refused at creation.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert._validate import (
    check_delete_filter,
    check_filter_keys,
    check_page_window,
    validate_config,
    validate_document,
    validate_metadata,
    validate_original,
    validate_warnings,
)
from colbert.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DocumentExistsError,
    DocumentNotFoundError,
    IndexFormatError,
    InvalidQueryError,
)
from colbert.filters import MetadataFilter
from colbert.hybrid import SearchMode, Signal
from colbert.qdrant.codecs import maxsim_params, storage_of
from colbert.qdrant.filter import qdrant_filter
from colbert.qdrant.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    blob_point,
    blobs_collection,
    companion_collections,
    create_collections,
    docs_collection,
    image_of,
    migrate,
    original_of,
    original_points,
    read_config,
    sized_batches,
    unit_numbers_of,
    unit_of,
    unit_point,
)
from colbert.qdrant.live import doc_ids, doc_point, hits, info, instance_of, live, match, noticing
from colbert.qdrant.live import keep as keep_live
from colbert.qdrant.modes import hybrid_points, text_points, visual_points
from colbert.qdrant.sparse import check_tokenizer
from colbert.search import Query, SearchOptions, checked_query
from colbert.store import CollectionConfig, DocumentInfo, Hit, OriginalFile, StoreLimits, UnitRecord

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "QdrantOptions",
    "QdrantStore",
    "blobs_collection",
    "companion_collections",
    "docs_collection",
]


@dataclass(frozen=True)
class QdrantOptions:
    """Collection-creation knobs passed to Qdrant, and the caller-input limits."""

    multivector_on_disk: bool = True
    shard_number: int | None = None
    replication_factor: int | None = None
    timeout_s: int | None = None
    max_request_bytes: int = 16 * 1024 * 1024  # estimated JSON per upsert (Qdrant's default cap is 32 MiB)
    rescore_oversampling: float = 4.0  # int8/binary: dense candidates rescored = limit × this (colbert.qdrant.codecs)
    limits: StoreLimits = field(default_factory=StoreLimits)


class QdrantStore:
    """A collection on a Qdrant server (see the module docstring). Use :meth:`create` / :meth:`open`."""

    config: CollectionConfig

    def __init__(
        self,
        client: QdrantClient,
        name: str,
        config: CollectionConfig,
        options: QdrantOptions,
        instance: str | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.config = config
        self.options = options
        self.instance = instance  # the creation id in the collection's metadata (:mod:`colbert.qdrant.live`)
        self.stale = False  # set when a request found the collection deleted or re-created by someone else
        self._docs = docs_collection(name)
        self._maxsim = maxsim_params(client, storage_of(config.codec), options.rescore_oversampling)

    @classmethod
    def create(
        cls,
        client: QdrantClient,
        name: str,
        config: CollectionConfig,
        options: QdrantOptions | None = None,
        *,
        importing: bool = False,
    ) -> QdrantStore:
        validate_config(config)
        storage_of(config.codec)  # CodecError for a codec Qdrant cannot store, before anything is created
        options = options or QdrantOptions()
        if any(client.collection_exists(c) for c in (name, *companion_collections(name))):
            raise CollectionExistsError(f"Qdrant collection {name!r} already exists")
        common: dict[str, Any] = {
            "shard_number": options.shard_number,
            "replication_factor": options.replication_factor,
            "timeout": options.timeout_s,
        }
        instance = create_collections(
            client, name, config, on_disk=options.multivector_on_disk, common=common, importing=importing
        )
        return cls(client, name, config, options, instance)

    @classmethod
    def open(
        cls,
        client: QdrantClient,
        name: str,
        *,
        expected: CollectionConfig | None = None,
        options: QdrantOptions | None = None,
    ) -> QdrantStore:
        """An existing collection (sparse vectors of older tokeniser rules recomputed first)."""
        if not client.collection_exists(name) or not client.collection_exists(docs_collection(name)):
            raise CollectionNotFoundError(f"no Qdrant collection {name!r}")
        options = options or QdrantOptions()
        migrate(client, name, options.max_request_bytes)
        config = read_config(client, name)
        if expected is not None and expected != config:
            if (expected.dense_dim, expected.multivector_dim) != (config.dense_dim, config.multivector_dim):
                raise DimensionMismatchError(f"collection {name!r} was built for {config}, expected {expected}")
            raise IndexFormatError(f"collection {name!r} was built with {config}, expected {expected}")
        return cls(client, name, config, options, instance_of(client, name))

    # -- writes ---------------------------------------------------------------------------------------

    @noticing
    def add_document(
        self,
        doc_id: str,
        units: Sequence[UnitRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        content_hash: str | None = None,
        original: OriginalFile | None = None,
        warnings: Sequence[str] = (),
    ) -> DocumentInfo:
        limits = self.options.limits
        doc_id, records, meta = validate_document(doc_id, units, metadata, self.config, limits, content_hash)
        original = validate_original(original, limits)
        noted = validate_warnings(warnings)
        check_tokenizer(self.client, self.name)  # never old-rule sparse vectors in an upgraded collection
        if self._record(doc_id) is not None and not replace:
            raise DocumentExistsError(f"document {doc_id!r} already exists (pass replace=True to replace it)")
        version = uuid.uuid4().hex
        cap = self.options.max_request_bytes
        for batch in sized_batches((unit_point(self.config, doc_id, version, meta, r) for r in records), cap):
            self.client.upsert(self.name, batch, wait=True)
        images = (blob_point(doc_id, version, r.unit, r.image) for r in records if r.image is not None)
        for batch in sized_batches(images, cap):
            self.client.upsert(blobs_collection(self.name), batch, wait=True)
        file: dict[str, Any] | None = None
        if original is not None:
            parts, file = original_points(doc_id, version, original, cap)
            for part in parts:  # one request each: a part is sized to fill one
                self.client.upsert(blobs_collection(self.name), [part], wait=True)
        record: dict[str, Any] = {"doc_id": doc_id, "version": version, "num_units": len(records), "metadata": meta}
        record |= {"created_at": time.time(), "content_hash": content_hash, "file": file, "warnings": list(noted)}
        self.client.upsert(self._docs, [qm.PointStruct(id=doc_point(doc_id), vector={}, payload=record)], wait=True)
        self._drop_pages(doc_id, keep_version=version)
        return info(record)

    @noticing
    def update_metadata(self, doc_id: str, metadata: Mapping[str, Any]) -> DocumentInfo:
        """Replace a document's metadata without touching its vectors (``DocumentNotFoundError`` if there is
        none): first on its live unit points (what filters read), then on its record (what reads return). Not
        atomic across the two requests: between them, or after a crash there, a filter may already match the new
        metadata while reads show the old."""
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        meta = validate_metadata(metadata, self.options.limits)
        record = self._record(doc_id)
        if record is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in collection {self.name!r}")
        committed = qm.Filter(must=[match("doc_id", doc_id), match("version", record["version"])])
        self.client.set_payload(self.name, {"metadata": meta}, points=committed, wait=True)
        self.client.set_payload(self._docs, {"metadata": meta}, points=[doc_point(doc_id)], wait=True)
        return info({**record, "metadata": meta})

    @noticing
    def delete_document(self, doc_id: str) -> bool:
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        existed = self._record(doc_id) is not None
        self.client.delete(self._docs, [doc_point(doc_id)], wait=True)
        self._drop_pages(doc_id, keep_version=None)
        return existed

    @noticing
    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter, *, dry_run: bool = False) -> list[str]:
        """Delete every document whose metadata passes ``filter``; their ids, sorted. Each document goes as
        :meth:`delete_document` does (record first, then pages); the set is not one atomic step. ``dry_run``:
        delete nothing, answer the ids that would go. ``UnknownFilterKeyError`` if the filter names a key no
        document has (:func:`colbert._validate.check_filter_keys`)."""
        flt = check_delete_filter(filter)
        check_filter_keys(flt, self.metadata_keys)
        doomed = sorted(doc_ids(self.client, self._docs, qdrant_filter(flt)))
        for doc_id in [] if dry_run else doomed:
            self.delete_document(doc_id)
        return doomed

    def _drop_pages(self, doc_id: str, *, keep_version: str | None) -> None:
        must_not = [] if keep_version is None else [match("version", keep_version)]
        selector = qm.Filter(must=[match("doc_id", doc_id)], must_not=must_not)  # type: ignore[arg-type]
        self.client.delete(self.name, qm.FilterSelector(filter=selector), wait=True)
        self.client.delete(blobs_collection(self.name), qm.FilterSelector(filter=selector), wait=True)

    # -- reads ----------------------------------------------------------------------------------------

    def _record(self, doc_id: str) -> dict[str, Any] | None:
        found = self.client.retrieve(self._docs, [doc_point(doc_id)], with_payload=True)
        return dict(found[0].payload or {}) if found else None

    @noticing
    def get_document(self, doc_id: str) -> DocumentInfo | None:
        rec = self._record(doc_id)
        return None if rec is None else info(rec)

    @noticing
    def find_by_hash(self, content_hash: str) -> DocumentInfo | None:
        """The earliest-added document with this content hash (a filter on the ``__docs`` records, whose
        ``content_hash`` has a keyword payload index in collections made since duplicate detection)."""
        if not isinstance(content_hash, str):
            raise InvalidQueryError(f"content_hash must be a str, got {type(content_hash).__name__}")
        records, _ = self.client.scroll(
            self._docs,
            scroll_filter=qm.Filter(must=[match("content_hash", content_hash)]),
            limit=self.options.limits.max_list_limit,
            with_payload=True,
        )
        infos = [info(dict(r.payload or {})) for r in records]
        return min(infos, key=lambda i: i.created_at) if infos else None

    @noticing
    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]:
        """Documents in the order they were (last) added."""
        check_page_window(offset, limit, self.options.limits)
        records, _ = self.client.scroll(
            self._docs, limit=offset + limit, order_by=qm.OrderBy(key="created_at"), with_payload=True
        )
        return [info(dict(r.payload or {})) for r in records[offset : offset + limit]]

    @noticing
    def count(self) -> tuple[int, int]:
        docs = self.client.count(self._docs, exact=True).count
        pages = self.client.count(self.name, exact=True).count
        return int(docs), int(pages)

    @noticing
    def get_unit(self, doc_id: str, unit: int) -> UnitRecord | None:
        rec = self._record(doc_id)
        if rec is None:
            return None
        return unit_of(self.client, self.name, doc_id, rec["version"], unit)

    @noticing
    def get_image(self, doc_id: str, unit: int) -> bytes | None:
        """The unit's image (None: no such unit, or no image) from the committed version's blobs."""
        rec = self._record(doc_id)
        return None if rec is None else image_of(self.client, self.name, doc_id, rec["version"], unit)

    @noticing
    def get_original(self, doc_id: str) -> OriginalFile | None:
        """The committed version's original file (None: no such document, or stored without one)."""
        rec = self._record(doc_id)
        if rec is None or not rec.get("file"):
            return None
        return original_of(self.client, self.name, doc_id, rec["version"], rec["file"])

    @noticing
    def unit_numbers(self, doc_id: str) -> list[int] | None:
        """The committed version's unit numbers, ascending (payload ``page`` only, no vectors); None if there is
        no such document."""
        rec = self._record(doc_id)
        if rec is None:
            return None
        return unit_numbers_of(self.client, self.name, doc_id, rec["version"])

    @noticing
    def metadata_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that some document's metadata holds with a value other than null and ``[]`` (as
        :meth:`colbert.local.LocalStore.metadata_keys`; one scroll of at most one document record per key)."""
        found = set()
        for key in set(keys):
            empty = qm.IsEmptyCondition(is_empty=qm.PayloadField(key=f"metadata.{key}"))
            points, _ = self.client.scroll(self._docs, scroll_filter=qm.Filter(must_not=[empty]), limit=1)
            if points:
                found.add(key)
        return found

    @noticing
    def search(self, query: Query, options: SearchOptions) -> list[Hit]:
        """Top-k units of ``options.mode`` (:mod:`colbert.hybrid`, :mod:`colbert.qdrant.modes`); the first stage is
        always ``dense`` here."""
        opts = options.under(self.options.limits)
        if opts.first_stage not in (None, "dense") or opts.prefetch is not None or opts.query_groups is not None:
            raise InvalidQueryError("the Qdrant backend has the dense first stage only: leave first_stage unset")
        checked = checked_query(query, opts, self.config)
        k, flt = opts.k, qdrant_filter(opts.filter)
        candidates = opts.candidates_for(None)  # the base default: no size was measured with its dense prefetch
        found = functools.partial(hits, self.client, self._docs, name=self.name, options=opts)
        if opts.mode is SearchMode.TEXT:
            text = str(checked.text)
            points = live(self.client, self._docs, lambda n: text_points(self.client, self.name, text, flt, n), k)
            return found([(p, float(p.score), {"text": Signal(float(p.score), i + 1)}) for i, p in enumerate(points)])
        q, dense = checked.multivector, checked.dense
        assert q is not None
        if opts.mode is SearchMode.HYBRID:
            first, text = (None if opts.exhaustive else dense), str(checked.text)
            keep = functools.partial(keep_live, self.client, self._docs)
            args = (q, first, text, flt, k, candidates, opts.fusion, keep, self._maxsim)
            return found(hybrid_points(self.client, self.name, *args))
        pool = candidates if not (opts.exhaustive or dense is None) else None
        first = dense if pool else None
        points = live(
            self.client,
            self._docs,
            lambda n: visual_points(self.client, self.name, q, first, flt, pool, n, self._maxsim),
            k,
            pool,
        )
        return found([(p, float(p.score), {"maxsim": Signal(float(p.score), i + 1)}) for i, p in enumerate(points)])

    def close(self) -> None:
        """Nothing to release per collection (the client belongs to whoever made it)."""

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
