"""Qdrant's own engine in-process (``qdrant-edge-py``, the ``bench`` extra) for ``bench/qdrant_bytes.py``: the
points our Qdrant backend writes, stored with the datatype and quantized copy :mod:`colbert.qdrant.codecs`
chooses, measured on disk; and the visual rerank with the parameters our backend sends a server, against the
same rerank told to ignore the quantized copy.

A shard is one local Qdrant shard (segments, WAL) in a directory. Its indexing threshold is set to 1 KB so that
``optimize()`` builds the quantized copy of every segment, as a server does for a collection past its threshold.
Disk is the allocated blocks under ``segments/`` (the WAL's preallocated files are left out: they are a fixed
log, not per page).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import models as qm

from colbert.qdrant.codecs import MultivectorStorage, maxsim_params
from colbert.qdrant.sparse import SPARSE_NAME

__all__ = ["EdgeRun", "available", "run"]


def available() -> bool:
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class EdgeRun:
    disk: int  # bytes allocated under segments/
    quantized: int  # of which the quantized copy (quantized.data files)
    agreement: float  # top-k of the narrowed rerank vs the rerank ignoring the quantized copy (1.0: none)
    max_score_diff: float  # largest |score| difference on the pages both returned


def _config(qe: Any, storage: MultivectorStorage, dim: int, dense_dim: int) -> Any:
    datatype = qe.VectorStorageDatatype.Float32 if storage.datatype == qm.Datatype.FLOAT32 else None
    quantization = None
    if isinstance(storage.quantization, qm.ScalarQuantization):
        quantization = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, always_ram=True)
    elif isinstance(storage.quantization, qm.BinaryQuantization):
        encoding = qe.BinaryQuantizationQueryEncoding.Scalar8Bits
        quantization = qe.BinaryQuantizationConfig(always_ram=True, query_encoding=encoding)
    mv = qe.EdgeVectorParams(
        size=dim,
        distance=qe.Distance.Dot,
        multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
        datatype=datatype or qe.VectorStorageDatatype.Float16,
        hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10),
        on_disk=True,
        quantization_config=quantization,
    )
    return qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine), "mv": mv},
        sparse_vectors={SPARSE_NAME: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1),
    )


def _edge_point(qe: Any, pid: int, point: qm.PointStruct) -> Any:
    vectors: Any = point.vector
    out = {"dense": vectors["dense"], "mv": vectors["mv"]}
    sparse = vectors.get(SPARSE_NAME)
    if sparse is not None:
        out[SPARSE_NAME] = qe.SparseVector(list(sparse.indices), list(sparse.values))
    return qe.Point(pid, out, point.payload)


def _compare(
    qe: Any, shard: Any, storage: MultivectorStorage, queries: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, float]:
    from qdrant_client import QdrantClient

    server = QdrantClient(url="http://qdrant.invalid:6333", check_compatibility=False)  # never contacted
    params = maxsim_params(server, storage, 4.0)
    agree, diff = 0.0, 0.0
    for q, dense in queries:
        prefetch = [qe.Prefetch(limit=100, query=qe.Query.Nearest(dense.tolist(), using="dense"))]
        found = {}
        for label, sent in (("narrowed", params.narrowed), ("exact", params.exact)):
            quant = None if sent is None or sent.quantization is None else sent.quantization
            search = (
                None
                if quant is None
                else qe.SearchParams(
                    quantization=qe.QuantizationSearchParams(
                        ignore=bool(quant.ignore), rescore=quant.rescore, oversampling=quant.oversampling
                    )
                )
            )
            request = qe.QueryRequest(
                limit=10, query=qe.Query.Nearest(q.tolist(), using="mv"), prefetches=prefetch, params=search
            )
            found[label] = {int(p.id): float(p.score) for p in shard.query(request)}
        both = found["narrowed"].keys() & found["exact"].keys()
        agree += len(both) / max(1, len(found["exact"]))
        diff = max([diff, *(abs(found["narrowed"][i] - found["exact"][i]) for i in both)])
    return agree / max(1, len(queries)), diff


def run(
    path: Path,
    storage: MultivectorStorage,
    dims: tuple[int, int],
    points: Iterable[qm.PointStruct],
    queries: list[tuple[np.ndarray, np.ndarray]],
) -> EdgeRun:
    """Store ``points`` in a new shard at ``path`` (``dims``: multi-vector width, dense width), optimise it, and
    measure it (:class:`EdgeRun`)."""
    import qdrant_edge as qe

    path.mkdir(parents=True)
    shard = qe.EdgeShard.create(str(path), _config(qe, storage, *dims))
    try:
        batch = []
        for pid, point in enumerate(points):
            batch.append(_edge_point(qe, pid, point))
            if len(batch) == 20:
                shard.update(qe.UpdateOperation.upsert_points(batch))
                batch = []
        if batch:
            shard.update(qe.UpdateOperation.upsert_points(batch))
        shard.flush()
        shard.optimize()
        shard.flush()
        agreement, diff = _compare(qe, shard, storage, queries)
    finally:
        shard.close()
    files = [f for f in (path / "segments").rglob("*") if f.is_file()]
    disk = sum(f.stat().st_blocks * 512 for f in files)
    quantized = sum(f.stat().st_blocks * 512 for f in files if f.name.startswith("quantized"))
    return EdgeRun(disk, quantized, agreement, diff)
