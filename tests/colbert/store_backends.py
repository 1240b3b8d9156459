"""The backends the store contract runs over, and the helpers its tests share.

Backends: the embedded SQLite store, qdrant-client's local mode (``QdrantClient(":memory:")``), and a real
Qdrant server when ``QDRANT_URL`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.local import LocalStore
from colbert.quantize import Codec
from colbert.store import CollectionConfig, Store, UnitRecord

D = 16  # multivector width in these tests
DENSE = 12
NO_SERVER = (
    "no Qdrant server can be started on these machines (no Docker engine, no server binary in the "
    "reachable registries); set QDRANT_URL to run"
)

Factory = Callable[[CollectionConfig], Store]


class Backend:
    """Makes stores of one backend and reopens them as a restarted process would."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.client: QdrantClient | None = None
        self.made: list[Store] = []

    def make(self, config: CollectionConfig) -> Store:
        name = f"c{uuid.uuid4().hex[:12]}"
        store: Store
        if self.kind == "local":
            store = LocalStore.create(self.tmp_path / name, config)
        else:
            from colbert.qdrant import QdrantStore

            store = QdrantStore.create(self._client(), name, config)
        self.made.append(store)
        return store

    def reopen(self, store: Store, expected: CollectionConfig | None = None) -> Store:
        again: Store
        if isinstance(store, LocalStore):
            store.close()
            again = LocalStore.open(store.directory, expected=expected)
        else:
            from colbert.qdrant import QdrantStore

            assert isinstance(store, QdrantStore)
            again = QdrantStore.open(self._client(), store.name, expected=expected)
        self.made.append(again)
        return again

    def _client(self) -> QdrantClient:
        if self.client is None:
            if self.kind == "qdrant-memory":
                self.client = QdrantClient(":memory:")
            else:
                self.client = QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
        return self.client

    def cleanup(self) -> None:
        for store in self.made:
            store.close()
        if self.client is not None and self.kind == "qdrant-server":
            from colbert.qdrant import QdrantStore, companion_collections

            for store in self.made:
                if isinstance(store, QdrantStore):
                    for name in (store.name, *companion_collections(store.name)):
                        if store.client.collection_exists(name):
                            store.client.delete_collection(name)


QDRANT_KINDS = [
    "qdrant-memory",
    pytest.param(
        "qdrant-server",
        marks=[pytest.mark.qdrant_server, pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason=NO_SERVER)],
    ),
]  # the Qdrant backends a test runs over (a server only where QDRANT_URL names one)


@pytest.fixture(params=["local", *QDRANT_KINDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    b.cleanup()


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def make_page(rng: np.random.Generator, page: int, n: int | None = None) -> UnitRecord:
    rows = int(n if n is not None else rng.integers(5, 30))
    mv = _unit(rng.normal(size=(rows, D)))  # (rows, D)
    dense = _unit(rng.normal(size=DENSE))  # (DENSE,)
    return UnitRecord(unit=page, dense=dense, multivector=mv, metadata={"rows": rows})


def naive_maxsim(q: np.ndarray, page: np.ndarray) -> float:
    """Sum over query tokens of the best dot product over page tokens, as a plain loop."""
    total = 0.0
    for qi in q.astype(np.float64):
        total += max(float(np.dot(qi, pj)) for pj in page.astype(np.float64))
    return total


def fill(store: Store, rng: np.random.Generator, docs: int = 12) -> dict[tuple[str, int], UnitRecord]:
    pages: dict[tuple[str, int], UnitRecord] = {}
    for j in range(docs):
        recs = [make_page(rng, p) for p in range(1 + j % 3)]
        store.add_document(f"doc-{j}", recs, {"lang": "en" if j % 4 == 0 else "de", "j": j, "odd": bool(j % 2)})
        pages.update({(f"doc-{j}", r.unit): r for r in recs})
    return pages


def expected_top(
    q: np.ndarray, pages: dict[tuple[str, int], UnitRecord], k: int
) -> list[tuple[tuple[str, int], float]]:
    scored = [(key, naive_maxsim(q, rec.multivector)) for key, rec in pages.items()]
    return sorted(scored, key=lambda t: -t[1])[:k]


F32 = CollectionConfig(dense_dim=DENSE, multivector_dim=D, codec=Codec.FLOAT32)
