"""Typed errors of the colbert package.

::

    ColbertError
    ├── InvalidQueryError          a query array of the wrong shape/dtype, k < 1, …
    │   └── FirstStageUnavailableError  a first stage the collection lacks the structure for (ivf, pooled_ivf)
    ├── InvalidDocumentError       pages of the wrong shape, duplicate page numbers, non-finite values
    ├── InvalidFilterError         a metadata filter that is not {key: scalar}
    │   └── UnknownFilterKeyError  a delete-by-filter naming a key no document of the collection has
    ├── DimensionMismatchError     vectors whose size differs from the collection's
    ├── CodecError                 bytes that do not decode under a codec (wrong length, unknown codec)
    ├── IndexFormatError           an index written by an incompatible format version, or corrupt
    │   └── ExportFormatError      a file that is not a collection export this code reads (or is cut short)
    ├── StoreClosedError           use after close()
    ├── StoreBusyError             another process held the collection's write lock past the busy timeout
    ├── DocumentExistsError        add without replace for an existing id
    ├── DocumentNotFoundError      an operation on a document id the collection does not hold
    ├── CollectionExistsError
    ├── CollectionNotFoundError
    └── InvalidCollectionNameError
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "ColbertError",
    "CollectionBusyError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "DimensionMismatchError",
    "DocumentExistsError",
    "DocumentNotFoundError",
    "ExportFormatError",
    "FirstStageUnavailableError",
    "IndexFormatError",
    "InvalidCollectionNameError",
    "InvalidDocumentError",
    "InvalidFilterError",
    "InvalidQueryError",
    "StoreBusyError",
    "StoreClosedError",
    "UnknownFilterKeyError",
]


class ColbertError(Exception):
    """Base class of every error raised by ``colbert``."""


class InvalidQueryError(ColbertError):
    """A query the index cannot run (shape, dtype, k, candidates)."""


class FirstStageUnavailableError(InvalidQueryError):
    """A first stage asked of a collection without what it reads (``ivf``: a residual codec's centroid lists;
    ``pooled_ivf``: trained cells); the message says what to ask or do instead."""


class InvalidDocumentError(ColbertError):
    """Pages that cannot be stored (shape, duplicates, non-finite values)."""


class InvalidFilterError(ColbertError):
    """A metadata filter that is not a mapping of keys to JSON scalars."""


class DimensionMismatchError(ColbertError):
    """Vectors whose size differs from the collection's configuration."""


class CodecError(ColbertError):
    """Bytes that cannot be decoded with the given codec, or an unknown codec."""


class IndexFormatError(ColbertError):
    """An index of an incompatible format version, or a corrupt one."""


class StoreClosedError(ColbertError):
    """A store used after ``close()``."""


class StoreBusyError(ColbertError):
    """A write that waited longer than the busy timeout for another process's write to the same collection."""


class CollectionBusyError(ColbertError):
    """An operation that needs the collection to itself (a recode) while something is writing to it."""


class DocumentExistsError(ColbertError):
    """A document id that already exists (pass ``replace=True`` to overwrite)."""


class DocumentNotFoundError(ColbertError):
    """An unknown document id."""


class CollectionExistsError(ColbertError):
    """A collection name that is already taken."""


class CollectionNotFoundError(ColbertError):
    """An unknown collection name."""


class InvalidCollectionNameError(ColbertError):
    """A collection name outside the allowed pattern."""


class UnknownFilterKeyError(InvalidFilterError):
    """A delete-by-filter names a key that no document of the collection has (a typo would match everything
    under ``$ne``/``$exists: false``)."""


class ExportFormatError(IndexFormatError):
    """The file is not a collection export this code reads (or it was cut short, or a record in it is forged)."""
