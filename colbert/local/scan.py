"""Exact MaxSim over stored pages of the embedded index, block by block.

The same loop serves the rerank of the first stage's candidates and the exhaustive scan: read ``block_pages`` blobs
in one query, check their checksums (:mod:`colbert.local.checksum`), pack them without decoding, score them with one
:class:`colbert.query_scorer.QueryScorer` per search (the query is prepared for the kernel once, not per block), keep
the running top-k. Memory is bounded by one block, whatever the number of pages scanned.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from colbert.codebook import Codebook
from colbert.errors import CodecError, IndexFormatError
from colbert.fastscan import Pruner
from colbert.local.checksum import check_codes
from colbert.local.codes import RESTORE_HINT
from colbert.quantize import needs_codebook
from colbert.query_scorer import QueryScorer
from colbert.residual import ResidualDocs, ResidualScorer
from colbert.scoring import PackedDocs
from colbert.store import CollectionConfig

__all__ = ["PageScorer", "damaged_codes", "read_pages"]

Block = tuple[np.ndarray, list[int], list[bytes]]  # page ids (m,), vector counts, codec'd blobs


def damaged_codes(path: Path | None, codec: object, exc: Exception) -> IndexFormatError:
    """The error for stored multi-vector codes that do not decode: names the index file and what to do."""
    where = path or "the index"
    return IndexFormatError(f"{where}: stored {codec} multi-vector codes are damaged ({exc}); {RESTORE_HINT}")


class PageScorer:
    """Scores stored pages against one query; the caller supplies the read transaction."""

    def __init__(
        self,
        config: CollectionConfig,
        block_pages: int,
        codebook: Callable[[], Codebook | None] = lambda: None,
        *,
        path: Path | None = None,
    ) -> None:
        self._config = config
        self._path = path  # the index file, named by the errors about its damaged codes
        self._block = block_pages
        self._codebook = codebook  # the collection's codebook (residual codecs), as of the search's sync

    def top(
        self, conn: sqlite3.Connection, query: np.ndarray, k: int, page_ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids (≤k,), scores (≤k,)) best first (ties: lower page id first) among ``page_ids`` (None: all)."""
        return self.top_of(query, k, self._blocks(conn, page_ids))

    def top_of(self, query: np.ndarray, k: int, blocks: Iterable[Block]) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`top`, over blocks the caller has read (e.g. concurrently, :func:`read_pages`)."""
        best_ids = np.empty(0, dtype=np.int64)
        best_scores = np.empty(0, dtype=np.float32)
        residual: ResidualScorer | None = None
        exact = QueryScorer([np.asarray(query, dtype=np.float32)])  # prepared for the kernel on the first block
        pruner = Pruner(query, k, self._config.codec, self._config.multivector_dim)  # binary/residual: fast scan
        for ids, counts, blobs in blocks:
            if needs_codebook(self._config.codec):
                residual = residual or self._residual_scorer(query)
                docs = self._residual(counts, blobs, residual.book)
                ids, docs = pruner.prune(ids, docs, best_scores, residual)
                scores = residual.scores(docs)  # (block,)
            else:
                ids, packed = pruner.prune(ids, self._packed(counts, blobs), best_scores)
                scores = exact.maxsim(packed)[0]  # (block,)
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, scores])
            if best_ids.size > k:
                keep = _order(best_ids, best_scores)[:k]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = _order(best_ids, best_scores)
        return best_ids[order], best_scores[order]

    def _packed(self, counts: list[int], blobs: list[bytes]) -> PackedDocs:
        """The block's pages as one packed matrix of their stored values, without decoding: the kernel widens
        float16 and multiplies int8 codes / binary bits itself (exact with respect to the stored values)."""
        try:
            return PackedDocs.from_encoded(counts, blobs, self._config.multivector_dim, self._config.codec)
        except CodecError as exc:
            raise damaged_codes(self._path, self._config.codec, exc) from exc

    def _residual_scorer(self, query: np.ndarray) -> ResidualScorer:
        book = self._codebook()
        if book is None:
            raise IndexFormatError(
                f"{self._path}: the collection holds {self._config.codec} pages but no codebook; {RESTORE_HINT}"
            )
        return ResidualScorer(query, book)

    def _residual(self, counts: list[int], blobs: list[bytes], book: Codebook) -> ResidualDocs:
        try:
            return ResidualDocs.from_encoded(counts, blobs, book)
        except CodecError as exc:
            raise damaged_codes(self._path, self._config.codec, exc) from exc

    def _blocks(
        self, conn: sqlite3.Connection, page_ids: np.ndarray | None
    ) -> Iterator[tuple[np.ndarray, list[int], list[bytes]]]:
        if page_ids is None:
            after = -1
            while True:
                rows = conn.execute(
                    "SELECT page_id, n, data, crc FROM multivectors WHERE page_id > ? ORDER BY page_id LIMIT ?",
                    (after, self._block),
                ).fetchall()
                if not rows:
                    return
                after = rows[-1][0]
                yield _checked(conn, rows)
            return
        for start in range(0, page_ids.size, self._block):
            chunk = page_ids[start : start + self._block]
            block = read_pages(conn, chunk)
            if block[0].size:
                yield block


def read_pages(conn: sqlite3.Connection, page_ids: np.ndarray) -> Block:
    """The stored multi-vectors of ``page_ids`` (those that exist), in one query, checked against their checksums
    (:mod:`colbert.local.checksum`)."""
    rows = conn.execute(
        "SELECT page_id, n, data, crc FROM multivectors WHERE page_id IN (SELECT value FROM json_each(?))",
        (json.dumps(page_ids.tolist()),),
    ).fetchall()
    return _checked(conn, rows)


def _checked(conn: sqlite3.Connection, rows: list[tuple[int, int, bytes, int | None]]) -> Block:
    """The block of ``(page id, n, data, crc)`` rows once every blob matches its checksum."""
    check_codes(conn, ((r[0], r[2], r[3]) for r in rows))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, [r[1] for r in rows], [r[2] for r in rows]


def _order(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices sorting by score descending, then page id ascending (a deterministic tie-break)."""
    return np.lexsort((ids, -scores))
