"""Qdrant Edge (``qdrant-edge-py``, in-process) as the peer in ``bench/search.py``.

Same layout as our Qdrant backend: named vector ``dense`` (cosine) for the prefetch, multivector ``mv``
(dot, MaxSim, HNSW off via ``m=0``) for the rerank. ``optimize()`` builds the dense HNSW after loading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["EdgeIndex"]


class EdgeIndex:
    def __init__(self, path: Path, dim: int, dense_dim: int, datatype: str) -> None:
        import qdrant_edge as qe

        self._qe = qe
        dtype = {"float32": qe.VectorStorageDatatype.Float32, "float16": qe.VectorStorageDatatype.Float16}[datatype]
        config = qe.EdgeConfig(
            vectors={
                "dense": qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine),
                "mv": qe.EdgeVectorParams(
                    size=dim,
                    distance=qe.Distance.Dot,
                    multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                    datatype=dtype,
                    hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10),
                    on_disk=True,
                ),
            }
        )
        path.mkdir(parents=True, exist_ok=True)
        self.shard = qe.EdgeShard.create(str(path), config)

    @classmethod
    def load(cls, path: Path) -> EdgeIndex:
        """A shard made by an earlier process (``finish()`` then ``close()``)."""
        import qdrant_edge as qe

        self = cls.__new__(cls)
        self._qe = qe
        self.shard = qe.EdgeShard.load(str(path))
        return self

    def add(self, first_id: int, tokens: list[np.ndarray], dense: list[np.ndarray]) -> None:
        qe = self._qe
        points = [
            qe.Point(first_id + i, {"dense": d.tolist(), "mv": t.tolist()}, {"page": first_id + i})
            for i, (t, d) in enumerate(zip(tokens, dense, strict=True))
        ]
        self.shard.update(qe.UpdateOperation.upsert_points(points))

    def finish(self) -> None:
        self.shard.flush()
        self.shard.optimize()

    def search(self, q: np.ndarray, dense: np.ndarray | None, k: int, candidates: int) -> list[int]:
        qe = self._qe
        rerank = qe.Query.Nearest(q.tolist(), using="mv")
        prefetches = None
        if dense is not None:
            prefetches = [qe.Prefetch(limit=candidates, query=qe.Query.Nearest(dense.tolist(), using="dense"))]
        found = self.shard.query(qe.QueryRequest(limit=k, query=rerank, prefetches=prefetches, with_payload=False))
        return [int(p.id) for p in found]

    def close(self) -> None:
        self.shard.close()
