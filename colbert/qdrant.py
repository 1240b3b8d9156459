"""The scale-out backend: the same :class:`colbert.store.Store` contract on a Qdrant server (or cluster).

Layout of a collection ``name``:

* ``name`` holds one point per unit: named vector ``dense`` (cosine, HNSW) for the first stage, named
  multivector ``mv`` (dot product per token pair, ``MaxSim`` comparator, HNSW off: ``m=0``, on disk) for the
  exact rerank, and payload ``doc_id``, ``page`` (the unit ordinal), ``kind``, ``version``, ``metadata`` (the
  document's, filterable as ``metadata.<key>``), ``page_metadata`` (the unit's) and ``text`` (the unit's text,
  or null).
* ``name__blobs`` holds the units' images (:mod:`colbert._qdrant_units`), one vector-less point per image,
  tagged with the document version like the vector points, so every replica serves every page image.
* ``name__docs`` holds one vector-less point per document (id = uuid5 of the doc id): ``doc_id``,
  ``version``, ``num_units``, ``metadata``, ``created_at``, ``content_hash``. It is the commit record.

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

Format version 2 added ``__blobs``, ``kind`` and ``text``; a version-1 collection is migrated when opened
(the blobs collection is created, and page images of the old ``page-images`` folder imported when given).

Codecs: ``float32``/``float16`` map to Qdrant's storage datatypes; ``int8``/``binary`` documents are stored as
float16 of their decoded values, so scores equal the embedded backend's (to float16 rounding) but the memory
saving of those codecs is not realised on Qdrant (use Qdrant's own quantization for that).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert._qdrant_filter import qdrant_filter
from colbert._qdrant_layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    NAMESPACE,
    blob_point,
    blobs_collection,
    companion_collections,
    docs_collection,
    image_of,
    migrate,
    read_config,
    sized_batches,
)
from colbert._qdrant_modes import PAYLOAD, hybrid_points, text_points
from colbert._sparse import SPARSE_NAME, document_vector
from colbert.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DocumentExistsError,
    IndexFormatError,
    InvalidFilterError,
    InvalidQueryError,
)
from colbert.filters import MetadataFilter
from colbert.hybrid import Fusion, SearchMode, Signal, check_query_text, parse_mode
from colbert.pooling import pool_tokens
from colbert.quantize import Codec, decode, encode
from colbert.store import (
    CollectionConfig,
    DocumentInfo,
    Hit,
    StoreLimits,
    UnitRecord,
    validate_config,
    validate_document,
    validate_filter,
    validate_metadata,
    validate_search,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "QdrantOptions",
    "QdrantStore",
    "blobs_collection",
    "companion_collections",
    "docs_collection",
]

_NAMESPACE = NAMESPACE
_DATATYPE = {
    Codec.FLOAT32: qm.Datatype.FLOAT32,
    Codec.FLOAT16: qm.Datatype.FLOAT16,
    Codec.INT8: qm.Datatype.FLOAT16,
    Codec.BINARY: qm.Datatype.FLOAT16,
}


@dataclass(frozen=True)
class QdrantOptions:
    """Collection-creation knobs passed to Qdrant, and the caller-input limits."""

    multivector_on_disk: bool = True
    shard_number: int | None = None
    replication_factor: int | None = None
    timeout_s: int | None = None
    max_request_bytes: int = 16 * 1024 * 1024  # estimated JSON per upsert (Qdrant's default cap is 32 MiB)
    limits: StoreLimits = field(default_factory=StoreLimits)


class QdrantStore:
    """A collection on a Qdrant server (see the module docstring). Use :meth:`create` / :meth:`open`."""

    config: CollectionConfig

    def __init__(self, client: QdrantClient, name: str, config: CollectionConfig, options: QdrantOptions) -> None:
        self.client = client
        self.name = name
        self.config = config
        self.options = options
        self._docs = docs_collection(name)

    @classmethod
    def create(
        cls, client: QdrantClient, name: str, config: CollectionConfig, options: QdrantOptions | None = None
    ) -> QdrantStore:
        validate_config(config)
        options = options or QdrantOptions()
        if any(client.collection_exists(c) for c in (name, *companion_collections(name))):
            raise CollectionExistsError(f"Qdrant collection {name!r} already exists")
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "dense_dim": config.dense_dim,
            "multivector_dim": config.multivector_dim,
            "codec": str(Codec(config.codec)),
            "pool_factor": config.pool_factor,
        }
        common: dict[str, Any] = {
            "shard_number": options.shard_number,
            "replication_factor": options.replication_factor,
            "timeout": options.timeout_s,
        }
        client.create_collection(docs_collection(name), vectors_config={}, metadata={"docs_of": name}, **common)
        client.create_collection(blobs_collection(name), vectors_config={}, metadata={"blobs_of": name}, **common)
        client.create_collection(
            name,
            vectors_config={
                "dense": qm.VectorParams(size=config.dense_dim, distance=qm.Distance.COSINE),
                "mv": qm.VectorParams(
                    size=config.multivector_dim,
                    distance=qm.Distance.DOT,
                    multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
                    hnsw_config=qm.HnswConfigDiff(m=0),
                    datatype=_DATATYPE[Codec(config.codec)],
                    on_disk=options.multivector_on_disk,
                ),
            },
            sparse_vectors_config={SPARSE_NAME: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            metadata=meta,
            **common,
        )
        with warnings.catch_warnings():  # local mode (tests) says payload indexes do nothing there
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            client.create_payload_index(name, "doc_id", qm.PayloadSchemaType.KEYWORD)
            client.create_payload_index(name, "version", qm.PayloadSchemaType.KEYWORD)
            client.create_payload_index(blobs_collection(name), "doc_id", qm.PayloadSchemaType.KEYWORD)
            client.create_payload_index(docs_collection(name), "created_at", qm.PayloadSchemaType.FLOAT)
            client.create_payload_index(docs_collection(name), "content_hash", qm.PayloadSchemaType.KEYWORD)
        return cls(client, name, config, options)

    @classmethod
    def open(
        cls,
        client: QdrantClient,
        name: str,
        *,
        expected: CollectionConfig | None = None,
        options: QdrantOptions | None = None,
        legacy_images: Path | None = None,
    ) -> QdrantStore:
        """An existing collection (a format-1 one migrated first, importing page images from ``legacy_images``,
        the collection's folder of the old ``page-images`` layout, when given)."""
        if not client.collection_exists(name) or not client.collection_exists(docs_collection(name)):
            raise CollectionNotFoundError(f"no Qdrant collection {name!r}")
        options = options or QdrantOptions()
        migrate(client, name, legacy_images, options.max_request_bytes)
        config = read_config(client, name)
        if expected is not None and expected != config:
            if (expected.dense_dim, expected.multivector_dim) != (config.dense_dim, config.multivector_dim):
                raise DimensionMismatchError(f"collection {name!r} was built for {config}, expected {expected}")
            raise IndexFormatError(f"collection {name!r} was built with {config}, expected {expected}")
        return cls(client, name, config, options)

    # -- writes ---------------------------------------------------------------------------------------

    def add_document(
        self,
        doc_id: str,
        units: Sequence[UnitRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        content_hash: str | None = None,
    ) -> DocumentInfo:
        limits = self.options.limits
        doc_id, records, meta = validate_document(doc_id, units, metadata, self.config, limits, content_hash)
        if self._record(doc_id) is not None and not replace:
            raise DocumentExistsError(f"document {doc_id!r} already exists (pass replace=True to replace it)")
        version = uuid.uuid4().hex
        cap = self.options.max_request_bytes
        for batch in sized_batches((self._point(doc_id, version, meta, r) for r in records), cap):
            self.client.upsert(self.name, batch, wait=True)
        images = (blob_point(doc_id, version, r.unit, r.image) for r in records if r.image is not None)
        for batch in sized_batches(images, cap):
            self.client.upsert(blobs_collection(self.name), batch, wait=True)
        created = time.time()
        record = {
            "doc_id": doc_id,
            "version": version,
            "num_units": len(records),
            "metadata": meta,
            "created_at": created,
            "content_hash": content_hash,
        }
        self.client.upsert(self._docs, [qm.PointStruct(id=_doc_point(doc_id), vector={}, payload=record)], wait=True)
        self._drop_pages(doc_id, keep_version=version)
        return DocumentInfo(doc_id, len(records), meta, created, content_hash)

    def update_metadata(self, doc_id: str, metadata: Mapping[str, Any]) -> DocumentInfo | None:
        """Replace a document's metadata without touching its vectors: first on its live unit points (what filters
        read), then on its record (what reads and hits return). Not atomic across the two requests: between them,
        or after a crash there, a filter may already match the new metadata while reads show the old."""
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        meta = validate_metadata(metadata, self.options.limits)
        record = self._record(doc_id)
        if record is None:
            return None
        live = qm.Filter(must=[_match("doc_id", doc_id), _match("version", record["version"])])
        self.client.set_payload(self.name, {"metadata": meta}, points=live, wait=True)
        self.client.set_payload(self._docs, {"metadata": meta}, points=[_doc_point(doc_id)], wait=True)
        return _info({**record, "metadata": meta})

    def delete_document(self, doc_id: str) -> bool:
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        existed = self._record(doc_id) is not None
        self.client.delete(self._docs, [_doc_point(doc_id)], wait=True)
        self._drop_pages(doc_id, keep_version=None)
        return existed

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter) -> list[str]:
        """Delete every document whose metadata passes ``filter`` (non-empty); their ids. Each document goes
        as :meth:`delete_document` does (record first, then pages); the set is not one atomic step."""
        flt = validate_filter(filter)
        if not flt:
            raise InvalidFilterError("delete by filter needs at least one condition (an empty filter matches all)")
        doomed: list[str] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self._docs, scroll_filter=qdrant_filter(flt), limit=256, offset=offset, with_payload=["doc_id"]
            )
            doomed += [str((r.payload or {})["doc_id"]) for r in records]
            if offset is None:
                break
        for doc_id in sorted(doomed):
            self.delete_document(doc_id)
        return sorted(doomed)

    def _point(self, doc_id: str, version: str, meta: dict[str, Any], record: UnitRecord) -> qm.PointStruct:
        mv = record.multivector  # (n, d) float32
        if self.config.pool_factor > 1:
            mv = pool_tokens(mv, self.config.pool_factor)  # (m, d)
        stored = np.asarray(  # (m, d) float32: exactly what the embedded backend scores
            decode(
                encode(np.ascontiguousarray(mv, dtype=np.float32), self.config.codec),
                mv.shape[0],
                self.config.multivector_dim,
                self.config.codec,
            ),
            dtype=np.float32,
        )
        payload = {
            "doc_id": doc_id,
            "page": record.unit,
            "kind": record.kind,
            "version": version,
            "metadata": meta,
            "page_metadata": dict(record.metadata),
            "text": record.text,
        }
        pid = str(uuid.uuid5(_NAMESPACE, f"{doc_id}\x00{version}\x00{record.unit}"))
        vectors: dict[str, Any] = {"dense": record.dense.tolist(), "mv": stored.tolist()}
        sparse = document_vector(record.text)
        if sparse is not None:
            vectors[SPARSE_NAME] = sparse
        return qm.PointStruct(id=pid, vector=vectors, payload=payload)

    def _drop_pages(self, doc_id: str, *, keep_version: str | None) -> None:
        must_not = [] if keep_version is None else [_match("version", keep_version)]
        selector = qm.Filter(must=[_match("doc_id", doc_id)], must_not=must_not)  # type: ignore[arg-type]
        self.client.delete(self.name, qm.FilterSelector(filter=selector), wait=True)
        self.client.delete(blobs_collection(self.name), qm.FilterSelector(filter=selector), wait=True)

    # -- reads ----------------------------------------------------------------------------------------

    def _record(self, doc_id: str) -> dict[str, Any] | None:
        found = self.client.retrieve(self._docs, [_doc_point(doc_id)], with_payload=True)
        return dict(found[0].payload or {}) if found else None

    def _live_versions(self, doc_ids: set[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        if not doc_ids:
            return {}
        found = self.client.retrieve(self._docs, [_doc_point(d) for d in doc_ids], with_payload=True)
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for rec in found:
            p = rec.payload or {}
            out[p["doc_id"]] = (p["version"], p["metadata"])
        return out

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        rec = self._record(doc_id)
        return None if rec is None else _info(rec)

    def find_by_hash(self, content_hash: str) -> DocumentInfo | None:
        """The earliest-added document with this content hash (a filter on the ``__docs`` records, whose
        ``content_hash`` has a keyword payload index in collections made since duplicate detection)."""
        if not isinstance(content_hash, str):
            raise InvalidQueryError(f"content_hash must be a str, got {type(content_hash).__name__}")
        records, _ = self.client.scroll(
            self._docs,
            scroll_filter=qm.Filter(must=[_match("content_hash", content_hash)]),
            limit=self.options.limits.max_list_limit,
            with_payload=True,
        )
        infos = [_info(dict(r.payload or {})) for r in records]
        return min(infos, key=lambda i: i.created_at) if infos else None

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]:
        """Documents in the order they were (last) added."""
        limits = self.options.limits
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidQueryError(f"offset must be an int >= 0, got {offset!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= limits.max_list_limit:
            raise InvalidQueryError(f"limit must be an int in 1..{limits.max_list_limit}, got {limit!r}")
        records, _ = self.client.scroll(
            self._docs, limit=offset + limit, order_by=qm.OrderBy(key="created_at"), with_payload=True
        )
        return [_info(dict(r.payload or {})) for r in records[offset : offset + limit]]

    def count(self) -> tuple[int, int]:
        docs = self.client.count(self._docs, exact=True).count
        pages = self.client.count(self.name, exact=True).count
        return int(docs), int(pages)

    def get_unit(self, doc_id: str, unit: int) -> UnitRecord | None:
        rec = self._record(doc_id)
        if rec is None:
            return None
        flt = qm.Filter(must=[_match("doc_id", doc_id), _match("version", rec["version"]), _match("page", unit)])
        points, _ = self.client.scroll(self.name, scroll_filter=flt, limit=1, with_payload=True, with_vectors=True)
        if not points:
            return None
        vectors: Any = points[0].vector
        payload = points[0].payload or {}
        dense = np.asarray(vectors["dense"], dtype=np.float32)  # (dense_dim,) unit (Qdrant normalises)
        mv = np.asarray(vectors["mv"], dtype=np.float32)  # (n, d)
        image = image_of(self.client, self.name, doc_id, rec["version"], unit)
        return UnitRecord(
            unit,
            dense,
            mv,
            kind=payload.get("kind", "page"),
            text=payload.get("text"),
            metadata=payload["page_metadata"],
            image=image,
        )

    def get_image(self, doc_id: str, unit: int) -> bytes | None:
        """The unit's image (None: no such unit, or no image) from the committed version's blobs."""
        rec = self._record(doc_id)
        return None if rec is None else image_of(self.client, self.name, doc_id, rec["version"], unit)

    def unit_numbers(self, doc_id: str) -> list[int] | None:
        """The committed version's unit numbers, ascending (payload ``page`` only, no vectors); None if there is
        no such document."""
        rec = self._record(doc_id)
        if rec is None:
            return None
        flt = qm.Filter(must=[_match("doc_id", doc_id), _match("version", rec["version"])])
        units: list[int] = []
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                self.name, scroll_filter=flt, limit=1024, offset=offset, with_payload=["page"], with_vectors=False
            )
            units += [int((p.payload or {})["page"]) for p in points]
            if offset is None:
                return sorted(units)

    def search(
        self,
        query_multivector: np.ndarray | None,
        query_dense: np.ndarray | None,
        k: int = 10,
        *,
        filter: Mapping[str, Any] | MetadataFilter | None = None,
        candidates: int = 200,
        exhaustive: bool = False,
        mode: SearchMode | str = SearchMode.VISUAL,
        query_text: str | None = None,
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """Top-k units of ``mode`` (:mod:`colbert.hybrid`, :mod:`colbert._qdrant_modes`)."""
        limits = self.options.limits
        mode = parse_mode(mode)
        flt = qdrant_filter(validate_filter(filter))
        text = None if mode is SearchMode.VISUAL else check_query_text(query_text, limits.max_query_terms)
        if mode is SearchMode.TEXT:
            ones = np.ones((1, self.config.multivector_dim), np.float32)
            validate_search(ones, None, k, candidates, self.config, limits)
            points = self._live(lambda want: text_points(self.client, self.name, str(text), flt, want), k)
            ranked = [(p, float(p.score), {"text": Signal(float(p.score), i + 1)}) for i, p in enumerate(points)]
            return self._hits(ranked)
        q, dense = validate_search(query_multivector, query_dense, k, candidates, self.config, limits)
        if mode is SearchMode.HYBRID:
            first = None if exhaustive else dense
            keep = self._keep
            ranked = hybrid_points(
                self.client, self.name, q, first, str(text), flt, k, candidates, fusion or Fusion(), keep
            )
            return self._hits(ranked)
        pool = candidates if not (exhaustive or dense is None) else None
        points = self._live(lambda want: self._query(q, dense if pool else None, flt, pool, want), k, pool)
        return self._hits(
            [(p, float(p.score), {"maxsim": Signal(float(p.score), i + 1)}) for i, p in enumerate(points)]
        )

    def _keep(self, points: list[qm.ScoredPoint]) -> list[qm.ScoredPoint]:
        """The points whose document version is the committed one."""
        live = self._live_versions({str((p.payload or {})["doc_id"]) for p in points})
        out = []
        for p in points:
            pay = p.payload or {}
            state = live.get(pay["doc_id"])
            if state is not None and state[0] == pay["version"]:
                out.append(p)
        return out

    def _live(
        self, query: Callable[[int], list[qm.ScoredPoint]], k: int, pool: int | None = None
    ) -> list[qm.ScoredPoint]:
        """The first k live points of ``query(limit)``; asks for more while points of a write in flight (or of a
        crashed one) were skipped."""
        want = k
        while True:
            points = query(want)
            kept = self._keep(points)
            if len(kept) >= k or len(points) < want or (pool is not None and want >= pool):
                return kept[:k]
            want = min(2 * want, pool) if pool is not None else 2 * want

    def _hits(self, ranked: Sequence[tuple[qm.ScoredPoint, float, Mapping[str, Signal]]]) -> list[Hit]:
        live = self._live_versions({str((p.payload or {})["doc_id"]) for p, _, _ in ranked})
        hits = []
        for p, score, signals in ranked:
            pay = p.payload or {}
            state = live.get(pay["doc_id"])
            if state is not None and state[0] == pay["version"]:
                kind = str(pay.get("kind", "page"))
                hits.append(Hit(pay["doc_id"], int(pay["page"]), score, dict(state[1]), kind, dict(signals)))
        return hits

    def _query(
        self, q: np.ndarray, dense: np.ndarray | None, flt: qm.Filter | None, pool: int | None, limit: int
    ) -> list[qm.ScoredPoint]:
        keep = PAYLOAD
        if dense is None or pool is None:
            res = self.client.query_points(
                self.name, query=q.tolist(), using="mv", query_filter=flt, limit=limit, with_payload=keep
            )
        else:
            prefetch = qm.Prefetch(query=dense.tolist(), using="dense", limit=pool, filter=flt)
            res = self.client.query_points(
                self.name, prefetch=prefetch, query=q.tolist(), using="mv", limit=limit, with_payload=keep
            )
        return list(res.points)

    def close(self) -> None:
        """Nothing to release per collection (the client belongs to whoever made it)."""

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _doc_point(doc_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, doc_id))


def _match(key: str, value: str | int | bool) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def _info(rec: dict[str, Any]) -> DocumentInfo:
    units = int(rec["num_units"] if "num_units" in rec else rec["num_pages"])  # format 1 wrote num_pages
    return DocumentInfo(rec["doc_id"], units, dict(rec["metadata"]), float(rec["created_at"]), rec.get("content_hash"))
