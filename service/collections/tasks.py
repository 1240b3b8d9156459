"""What a collection's config decides about how its units are made, decided here and nowhere else: the task its
units and queries are embedded with, the kind of unit it holds (:func:`check_unit_kind`) and the OCR mode its
page documents are read with.

A collection is created with a ``task`` (``retrieval`` | ``code``) and a ``unit_kind`` (``page`` | ``chunk``):

- ``chunk`` collections embed their text/code chunks as ``<task>.passage`` and queries as ``<task>.query``: the
  code adapter is trained for natural-language queries against code.
- ``page`` collections embed page images as ``retrieval.passage`` and queries as ``retrieval.query``: the code
  adapter was not trained on page images, and a query must be embedded by the adapter its pages were. Creating
  a page collection with ``task: "code"`` is refused (422 ``invalid_task``, :func:`check_task`); a page
  collection stored with ``task: "code"`` by an older version (its pages embedded as ``retrieval.passage``) is
  searched with ``retrieval.query``, so both sides use one adapter.

Indexing, search and similarity maps all ask :func:`task_spec`.

The OCR mode (:data:`model.ocr.OCR_MODES`) of a page document: the upload's ``ocr`` when it sends one, else its
collection's (``ocr`` given at creation, kept in the collection's config by both backends, :func:`collection_ocr`),
else the server's (``JEV4_OCR``). A collection created before collections had one has none: the server's applies
(:func:`upload_ocr`).

>>> from colbert.store import CollectionConfig
>>> task_spec(CollectionConfig(128, 128, task="code", unit_kind="chunk"), PromptType.QUERY).api_name
'code.query'
>>> task_spec(CollectionConfig(128, 128, task="code", unit_kind="page"), PromptType.QUERY).api_name
'retrieval.query'
>>> scans = CollectionConfig(8, ocr="always")
>>> upload_ocr(None, scans, "auto"), upload_ocr("never", scans, "auto")
('always', 'never')
>>> upload_ocr(None, CollectionConfig(8), "auto")
'auto'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.ocr import OCR_MODES
from model.types import PromptType, Task, TaskSpec
from service.errors import ConflictError, UnprocessableError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig

__all__ = ["PromptType", "check_task", "check_unit_kind", "collection_ocr", "task_spec", "upload_ocr"]


# Every (adapter, prompt) a collection can use, built once: a request looks its spec up, it does not build one.
_SPECS = {(task.value, prompt): TaskSpec(task, prompt) for task in Task for prompt in PromptType}


def task_spec(config: CollectionConfig, prompt: PromptType) -> TaskSpec:
    """The adapter and prompt for one side (``PASSAGE``: units, ``QUERY``: queries) of a collection."""
    task = Task.RETRIEVAL.value if config.unit_kind == "page" else config.task
    try:
        return _SPECS[task, prompt]
    except KeyError:
        return TaskSpec(Task(task), prompt)  # not a task: Task() raises the ValueError naming it


def check_task(task: str, unit_kind: str) -> None:
    """422 ``invalid_task`` for a task the collection's units cannot be embedded with (see the module doc)."""
    if unit_kind == "page" and task != Task.RETRIEVAL.value:
        raise UnprocessableError(
            f'a collection of pages (unit_kind "page") is embedded with the retrieval adapter: task {task!r} '
            "would search its page images with an adapter they were not embedded with; create it with "
            '"task": "retrieval", or use "unit_kind": "chunk" for text and code documents',
            code="invalid_task",
        )


def collection_ocr(requested: str | None, unit_kind: str) -> str | None:
    """The OCR default a new collection keeps; 422 ``invalid_input`` for one given to a collection of chunks
    (text and code have no page images to read)."""
    if requested is not None and unit_kind != "page":
        raise UnprocessableError(
            f'"ocr" applies to a collection of pages (it reads text from page images); a collection of '
            f'{unit_kind}s takes text as it is: leave "ocr" out',
            code="invalid_input",
        )
    return requested


def upload_ocr(given: str | None, config: CollectionConfig, server: str) -> str:
    """The mode a page document of a collection with ``config`` is indexed with (module doc); a stored value
    that is no mode (a hand-edited index) is a 422 naming it, never silently replaced."""
    mode = given or config.ocr or server
    if mode not in OCR_MODES:
        raise UnprocessableError(
            f"the collection's stored OCR default {mode!r:.40} is not one of {', '.join(OCR_MODES)}; send ocr with "
            "the upload",
            code="invalid_input",
        )
    return mode


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
