"""The embedded backend's knobs (:class:`LocalOptions`, fixed for a handle's life) and the sizes it reports
(:class:`LocalStats`): the values :class:`colbert.local.handle.LocalHandle` is opened with and answers, apart from
how it keeps its connections and views."""

from __future__ import annotations

from dataclasses import dataclass, field

from colbert.hybrid import FIRST_STAGES
from colbert.local import schema as _schema
from colbert.local.dense_codec import check_dense_codec
from colbert.store import StoreLimits

__all__ = ["LocalOptions", "LocalStats"]


@dataclass(frozen=True)
class LocalOptions:
    """Tuning and durability knobs of the embedded backend."""

    synchronous: str = "FULL"  # FULL: survives power loss; NORMAL: survives kill -9 (see module docstring)
    busy_timeout_s: float = 30.0  # how long a writer waits for another process's write transaction
    mmap_bytes: int = 1 << 31  # SQLite mmap window (capped by SQLite at 2 GiB in CPython's build; 0: off)
    sketch_vectors: int = _schema.DEFAULT_SKETCH_VECTORS  # pooled first-stage centroids per page, fixed at creation
    dense_codec: str = "float32"  # how each unit's dense vector is stored (colbert.local.dense_codec), at creation
    first_stage: str = "dense"  # search()'s when not told: "dense" (the contract), "pooled", "ivf", "pooled_ivf"
    nprobe: int = 8  # ivf / pooled_ivf first stages: centroids (cells) probed per query token (colbert.local.ivf)
    scan_block_pages: int = 128  # pages decoded and scored at a time (bounds search memory)
    deletions_retained: int = 100_000  # deletion log rows kept for incremental refresh of other handles
    read_threads: int = 4  # connections reading a rerank's candidate blobs concurrently (1: the search's own)
    term_cache_bytes: int = 64 << 20  # posting lists of query terms kept in memory for BM25 (colbert.local.bm25)
    auto_cells_units: int = 0  # train the pooled_ivf cells in the background at this many live units (0: never)
    limits: StoreLimits = field(default_factory=StoreLimits)

    def __post_init__(self) -> None:
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {self.synchronous!r}")
        if self.first_stage not in FIRST_STAGES:
            raise ValueError(f"first_stage must be one of {FIRST_STAGES}, got {self.first_stage!r}")
        if min(self.nprobe, self.scan_block_pages, self.deletions_retained, self.sketch_vectors, self.read_threads) < 1:
            raise ValueError("nprobe, scan_block_pages, deletions_retained, sketch_vectors, read_threads must be >= 1")
        check_dense_codec(self.dense_codec)
        if min(self.term_cache_bytes, self.auto_cells_units) < 0:
            raise ValueError(
                f"term_cache_bytes and auto_cells_units must be >= 0, got {self.term_cache_bytes}, "
                f"{self.auto_cells_units}"
            )


@dataclass(frozen=True)
class LocalStats:
    """Sizes of a collection: counts, stored multi-vector rows and bytes, the first stage's memory."""

    documents: int
    pages: int
    vectors: int  # stored (pooled) multi-vector rows
    blob_bytes: int  # codec'd multi-vector bytes, without SQLite's page overhead
    memory_bytes: int  # the in-memory first stages (held dense rows + sketches + ids + live mask) of this handle
    text_memory_bytes: int = 0  # the full-text side in memory: units' ids/lengths/live mask + cached postings
    ivf_memory_bytes: int = 0  # the inverted lists in memory (once an ivf / pooled_ivf search loaded them)
