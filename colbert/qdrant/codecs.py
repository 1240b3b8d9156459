"""How each codec (:mod:`colbert.quantize`) is kept on Qdrant: the storage datatype of the ``mv`` multivector
(the *originals*, which every returned score is computed on), the quantized copy Qdrant keeps beside them, and
the search parameters of the MaxSim stage.

=========  ==========================  ======================================  ===================================
codec      ``mv`` originals            Qdrant's quantized copy (in RAM)        bytes per token (d = 128)
=========  ==========================  ======================================  ===================================
float32    float32                     none                                    4·d = 512
float16    float16                     none                                    2·d = 256
int8       float16 of the int8 codec's scalar int8 (``always_ram``)            2·d + d + 4 = 388 (256 on disk,
           decoded values                                                      132 in RAM)
binary     float16 of ±1/√d (the       binary, 1 bit per dimension, query      2·d + d/8 = 272 (256 on disk,
           binary codec's values)      encoded on 8 bits (asymmetric)          16 in RAM)
residual*  refused (:func:`storage_of` raises ``CodecError``: HTTP 422 ``invalid_codec``)
=========  ==========================  ======================================  ===================================

**What is stored, what is scored.** The originals hold exactly the values the embedded backend scores (the
codec's ``decode(encode(x))``, rounded to float16), so a score returned by either backend is MaxSim over the same
values (to float16 rounding). On Qdrant the int8 and binary codecs are *the float16 original plus a quantized
index*: they save Qdrant's RAM (the quantized copy stays in memory, the originals on disk with the default
``QdrantOptions.multivector_on_disk``), not its disk. The quantized copy only *chooses*: in the visual mode's
rerank of the dense candidates, Qdrant scores the candidates on it and rescores the top ``limit × oversampling``
(``QdrantOptions.rescore_oversampling``) on the originals, so only those are read from disk; exhaustive search and
the hybrid mode's exact stage tell Qdrant to ignore it (every candidate scored on the originals). The binary copy
of ±1/√d values is lossless (the signs are the codes) and its 8-bit query encoding makes it score as our
float-query × binary-document kernel does, up to the query's rounding.

**Why not Qdrant's ``uint8`` datatype** for int8: Qdrant converts the float *query* to the storage type too (each
component cast to ``u8``), so a float query's components in (−1, 1) would all become 0, and the int8 codec's
per-row scale has no place in a uint8 vector. **Why the residual codecs are refused**: their codes are centroid
ids into a per-collection codebook plus 1–2-bit residuals, which Qdrant cannot score; keeping them in the payload
and scoring them with our kernel after Qdrant's prefetch would move the rerank out of Qdrant (every candidate's
payload fetched per query) — not built.

Local mode (``QdrantClient(":memory:")`` / ``path=``) keeps this configuration as given but scores every point
exactly, on float32 copies, and warns when handed search parameters: :func:`maxsim_params` sends them to servers
only. Quantized copies are built by Qdrant's optimizer for segments past its indexing threshold; until then
(small collections) the originals are scored directly. Binary quantization with a query encoding needs
Qdrant ≥ 1.15 (``deploy/compose.yaml`` pins 1.15.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.errors import CodecError
from colbert.quantize import CODEBOOK_FREE, Codec, checked_codec, needs_codebook

__all__ = ["MaxSimParams", "MultivectorStorage", "maxsim_params", "storage_of"]

_ITEM_BYTES = {qm.Datatype.FLOAT32: 4, qm.Datatype.FLOAT16: 2}


@dataclass(frozen=True)
class MultivectorStorage:
    """The ``mv`` multivector of one codec on Qdrant (module docstring)."""

    codec: Codec
    datatype: qm.Datatype  # the originals' element type
    quantization: qm.ScalarQuantization | qm.BinaryQuantization | None  # Qdrant's quantized copy, if any

    def vector_params(self, dim: int, *, on_disk: bool) -> qm.VectorParams:
        """The ``mv`` vector's configuration: dot product per token pair, MaxSim, HNSW off (``m=0``)."""
        return qm.VectorParams(
            size=dim,
            distance=qm.Distance.DOT,
            multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
            hnsw_config=qm.HnswConfigDiff(m=0),
            datatype=self.datatype,
            on_disk=on_disk,
            quantization_config=self.quantization,
        )

    def original_bytes(self, dim: int) -> int:
        """Bytes of one token's original, as Qdrant's documented layout stores it (computed, not measured)."""
        return _ITEM_BYTES[self.datatype] * dim

    def quantized_bytes(self, dim: int) -> int:
        """Bytes of one token's quantized copy: int8 codes + Qdrant's per-vector float32 correction term, or one
        bit per dimension (computed from Qdrant's documented layout, not measured)."""
        if isinstance(self.quantization, qm.ScalarQuantization):
            return dim + 4
        if isinstance(self.quantization, qm.BinaryQuantization):
            return (dim + 7) // 8
        return 0


def storage_of(codec: Codec | str) -> MultivectorStorage:
    """How ``codec`` is stored on Qdrant; ``CodecError`` naming the codecs that work there for the residual ones."""
    c = checked_codec(codec)
    if needs_codebook(c):
        raise CodecError(
            f"the Qdrant backend cannot store codec {c.value} (its codes need this server's residual kernel, which "
            f"Qdrant cannot run); create the collection with one of {list(CODEBOOK_FREE)}, or use the embedded backend"
        )
    if c is Codec.FLOAT32:
        return MultivectorStorage(c, qm.Datatype.FLOAT32, None)
    if c is Codec.FLOAT16:
        return MultivectorStorage(c, qm.Datatype.FLOAT16, None)
    if c is Codec.INT8:
        scalar = qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, always_ram=True)
        return MultivectorStorage(c, qm.Datatype.FLOAT16, qm.ScalarQuantization(scalar=scalar))
    binary = qm.BinaryQuantizationConfig(always_ram=True, query_encoding=qm.BinaryQuantizationQueryEncoding.SCALAR8BITS)
    return MultivectorStorage(c, qm.Datatype.FLOAT16, qm.BinaryQuantization(binary=binary))


@dataclass(frozen=True)
class MaxSimParams:
    """The search parameters of the MaxSim stage: ``narrowed`` for the rerank of the dense candidates (the
    quantized copy picks which are rescored), ``exact`` where every candidate is scored on the originals.
    None: send none (no quantized copy, or local mode)."""

    narrowed: qm.SearchParams | None = None
    exact: qm.SearchParams | None = None


def maxsim_params(client: QdrantClient, storage: MultivectorStorage, oversampling: float) -> MaxSimParams:
    """The search parameters for ``storage`` on ``client`` (none in local mode, which scores exactly anyway);
    ``ValueError`` for an ``oversampling`` below 1 (Qdrant's minimum: rescore at least ``limit`` points)."""
    if not oversampling >= 1.0:
        raise ValueError(f"rescore_oversampling must be at least 1, got {oversampling!r}")
    options = client.init_options
    local = options.get("location") == ":memory:" or options.get("path") is not None
    if storage.quantization is None or local:
        return MaxSimParams()
    narrowed = qm.QuantizationSearchParams(ignore=False, rescore=True, oversampling=oversampling)
    return MaxSimParams(
        narrowed=qm.SearchParams(quantization=narrowed),
        exact=qm.SearchParams(quantization=qm.QuantizationSearchParams(ignore=True)),
    )
