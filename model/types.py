"""The encoder's vocabulary: tasks, prompt types, inputs and outputs, parsed once at the edge.

The strings ``"retrieval.query"`` etc. are turned into a :class:`TaskSpec` here and nowhere else.

>>> parse_task("retrieval.query")
TaskSpec(task=<Task.RETRIEVAL: 'retrieval'>, prompt=<PromptType.QUERY: 'query'>)
>>> parse_task("text-matching", "passage").prefix       # text-matching always uses the query prefix
'Query: '
>>> parse_task("code", "passage").api_name
'code.passage'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from model.errors import InvalidTaskError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "EmbeddingOutput",
    "PageImage",
    "PromptType",
    "Task",
    "TaskSpec",
    "TextLayer",
    "Word",
    "parse_task",
]

FloatArray = npt.NDArray[np.float32]


class Task(enum.StrEnum):
    """The three LoRA adapters of jina-embeddings-v4 (the order is the checkpoint's ``task_names``)."""

    RETRIEVAL = "retrieval"
    TEXT_MATCHING = "text-matching"
    CODE = "code"


class PromptType(enum.StrEnum):
    """Which side of an asymmetric task an input is on; selects the text prefix."""

    QUERY = "query"
    PASSAGE = "passage"


_PREFIX = {PromptType.QUERY: "Query: ", PromptType.PASSAGE: "Passage: "}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """An adapter plus a prompt type. Text-matching is symmetric: its prompt is always ``QUERY``."""

    task: Task
    prompt: PromptType = PromptType.QUERY

    def __post_init__(self) -> None:
        if self.task is Task.TEXT_MATCHING and self.prompt is not PromptType.QUERY:
            # The reference's intended rule (and the Jina API's): text-matching always reads "Query: ".
            object.__setattr__(self, "prompt", PromptType.QUERY)

    @property
    def prefix(self) -> str:
        """The text prefix, ``"Query: "`` or ``"Passage: "``."""
        return _PREFIX[self.prompt]

    @property
    def api_name(self) -> str:
        """The Jina API spelling: ``retrieval.query``, ``text-matching``, ``code.passage`` …"""
        if self.task is Task.TEXT_MATCHING:
            return self.task.value
        return f"{self.task.value}.{self.prompt.value}"


def parse_task(task: str | Task | TaskSpec, prompt_name: str | PromptType | None = None) -> TaskSpec:
    """Parse a task given as an adapter name (``"retrieval"``) plus ``prompt_name``, or in the API form
    (``"retrieval.query"``). ``prompt_name=None`` means query, as in the reference ``encode_text``."""
    if isinstance(task, TaskSpec):
        return task if prompt_name is None else TaskSpec(task.task, _parse_prompt(prompt_name))
    name = task.value if isinstance(task, Task) else str(task)
    if "." in name:
        base, _, suffix = name.partition(".")
        if prompt_name is not None and str(prompt_name) != suffix:
            raise InvalidTaskError(f"task {name!r} already names prompt {suffix!r} but prompt_name={prompt_name!r}")
        if base == Task.TEXT_MATCHING.value:
            raise InvalidTaskError(f"unknown task {name!r}; text-matching takes no .query/.passage suffix")
        prompt_name = suffix
    else:
        base = name
    try:
        adapter = Task(base)
    except ValueError:
        valid = ", ".join(["retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage"])
        raise InvalidTaskError(f"unknown task {name!r}; expected one of: {valid}") from None
    return TaskSpec(adapter, _parse_prompt(prompt_name))


def _parse_prompt(prompt_name: str | PromptType | None) -> PromptType:
    if prompt_name is None:
        return PromptType.QUERY
    try:
        return PromptType(str(prompt_name))
    except ValueError:
        raise InvalidTaskError(f"unknown prompt_name {prompt_name!r}; expected 'query' or 'passage'") from None


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a page's text layer; its box in pixels of the rendered page image (x right, y down)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True, slots=True)
class TextLayer:
    """A page's own text: its words in reading order with their boxes, and the text they spell (words joined
    by spaces, lines by newlines). ``source``: where it comes from (``pdf``: the document's text operators;
    ``ocr``: read off the page image, :mod:`model.ocr`, with its mean ``confidence`` in 0..1)."""

    text: str
    words: tuple[Word, ...]
    source: str = "pdf"
    confidence: float | None = None

    def scaled(self, sx: float, sy: float) -> TextLayer:
        """The same layer over the image resized by ``sx`` horizontally and ``sy`` vertically."""
        words = tuple(Word(w.text, w.x0 * sx, w.y0 * sy, w.x1 * sx, w.y1 * sy) for w in self.words)
        return TextLayer(self.text, words, self.source, self.confidence)


@dataclass(frozen=True, slots=True)
class PageImage:
    """One rendered PDF page; ``page_number`` is 1-based. ``text_layer`` is None when it was not asked for or
    the page has no text layer (a scanned page, a page of drawings); no OCR is attempted."""

    page_number: int
    image: Image.Image
    text_layer: TextLayer | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingOutput:
    """What one input becomes.

    ``dense``: float32 (2048,) L2-normalised single vector (truncate with ``model.pooling.truncate``).
    ``multivector``: float32 (num_tokens, 128), each row L2-normalised, or None when not requested.
    ``num_tokens``: sequence length the model saw for this input (text + image tokens).
    ``image_span``: for an image, the [start, stop) rows of ``multivector`` (and of the sequence) holding the
    ``<|image_pad|>`` tokens; ``image_grid``: (rows, cols) of the merged patch grid, rows*cols == stop-start.
    Both are None for text. They let a caller draw similarity maps.
    """

    dense: FloatArray
    multivector: FloatArray | None = None
    num_tokens: int = 0
    image_span: tuple[int, int] | None = None
    image_grid: tuple[int, int] | None = None
