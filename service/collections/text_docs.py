"""The collection routes' side of text/code documents: the indexer, the one-kind rule, the collection's task,
``Collections`` (``manager.py``) calls these.

Rules (see ``docs/text-documents.md``):

- A collection holds units of ONE kind, fixed at creation (``unit_kind``: ``page`` or ``chunk``; ``chunk`` by
  default for a ``code`` collection, ``page`` otherwise): text documents go to ``chunk`` collections, PDFs and
  images to ``page`` collections; the other kind is 409 ``mixed_units``. MaxSim of a text query against image
  patch tokens and against text tokens are not on one scale, so a merged ranking would be by modality.
- The collection's ``task`` (``retrieval`` | ``code``) picks the adapter and prompts: documents are embedded as
  ``<task>.passage``, queries as ``<task>.query`` (:func:`service.collections.tasks.task_spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.collections.late import LateChunker
from service.collections.texts import TextIndexer, TextOptions
from service.collections.vectors import QueueRetry
from service.errors import ConflictError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig
    from service.engine.runtime import Runtime

__all__ = ["check_unit_kind", "text_indexer"]


def check_unit_kind(collection: str, config: CollectionConfig, kind: str, what: str | None = None) -> None:
    """409 ``mixed_units`` unless the collection holds units of ``kind`` (``page`` or ``chunk``); ``what`` names
    the input (e.g. ``file 'tool.py'``) in the message."""
    holds = config.unit_kind
    if holds == kind:
        return
    if kind == "chunk":
        given = f"{what} is text (UTF-8), a text/code document, but " if what else ""
        raise ConflictError(
            f"{given}collection {collection!r} holds pages (PDFs and images); text and code documents go to a "
            'collection created with "unit_kind": "chunk" (or "task": "code"): pages and text chunks are not '
            "scored on one scale",
            code="mixed_units",
        )
    given = f"{what} is a page document (PDF or image), but " if what else ""
    raise ConflictError(
        f"{given}collection {collection!r} holds text chunks; PDFs and images go to a collection created with "
        '"unit_kind": "page": pages and text chunks are not scored on one scale',
        code="mixed_units",
    )


def text_indexer(runtime: Runtime, *, wait_when_full: bool) -> TextIndexer:
    """A :class:`TextIndexer` on the runtime's batcher (late chunking through the same queue as the API).

    On a full model queue the first window raises QueueFullError (429) unless ``wait_when_full`` (a background
    job); later windows always wait and retry, since the document is under way (:class:`QueueRetry`)."""
    encoder, batcher, _preparer = runtime.engine()
    options = TextOptions.from_settings(runtime.settings)
    retry = QueueRetry(wait_when_full, runtime.settings.retry_after_s)

    async def embed_late(late: Any) -> Any:
        return await retry.call(lambda: batcher.embed_late_chunks(late, return_multivector=True))

    chunker = LateChunker(encoder.processor, embed_late, window=options.window, overlap=options.overlap)
    return TextIndexer(
        chunker,
        runtime.pool,
        options,
        hidden_size=encoder.info.hidden_size,
        matryoshka_dims=encoder.info.matryoshka_dims,
    )
