"""The task a collection's units and queries are embedded with, decided here and nowhere else.

A collection is created with a ``task`` (``retrieval`` | ``code``) and a ``unit_kind`` (``page`` | ``chunk``):

- ``chunk`` collections embed their text/code chunks as ``<task>.passage`` and queries as ``<task>.query``: the
  code adapter is trained for natural-language queries against code.
- ``page`` collections embed page images as ``retrieval.passage`` and queries as ``retrieval.query``: the code
  adapter was not trained on page images, and a query must be embedded by the adapter its pages were. Creating
  a page collection with ``task: "code"`` is refused (422 ``invalid_task``, :func:`check_task`); a page
  collection stored with ``task: "code"`` by an older version (its pages embedded as ``retrieval.passage``) is
  searched with ``retrieval.query``, so both sides use one adapter.

Indexing, search and similarity maps all ask :func:`task_spec`.

>>> from colbert.store import CollectionConfig
>>> task_spec(CollectionConfig(128, 128, task="code", unit_kind="chunk"), PromptType.QUERY).api_name
'code.query'
>>> task_spec(CollectionConfig(128, 128, task="code", unit_kind="page"), PromptType.QUERY).api_name
'retrieval.query'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.types import PromptType, Task, TaskSpec
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig

__all__ = ["PromptType", "check_task", "task_spec"]


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
