"""Parse the loosely typed ``input`` of a request into typed items, naming the offending index on error.

>>> parse_inputs(["a cat", {"text": "a dog"}, {"image": "iVBOR..."}, {"pdf": "JVBER...", "pages": "1-2"}])
... # doctest: +NORMALIZE_WHITESPACE
[TextItem(text='a cat'), TextItem(text='a dog'), ImageItem(source='iVBOR...'),
 PdfItem(source='JVBER...', pages='1-2')]
>>> parse_inputs("one string")
[TextItem(text='one string')]
>>> parse_api_task("code.query").api_name
'code.query'
>>> parse_api_task("retrieval")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
model.errors.InvalidTaskError: task 'retrieval' names an adapter, not a task: send 'retrieval.query' (queries) or ...

Aliases (shapes Jina's API and its published clients send; docs/clients.md):

>>> parse_inputs([{"url": "https://x/cat.png"}, {"bytes": "iVBOR..."}, "data:image/png;base64,iVBOR..."])
... # doctest: +NORMALIZE_WHITESPACE
[ImageItem(source='https://x/cat.png'), ImageItem(source='iVBOR...'),
 ImageItem(source='data:image/png;base64,iVBOR...')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.errors import InvalidTaskError
from model.types import TaskSpec, parse_task
from service.errors import PayloadTooLargeError, UnprocessableError

__all__ = ["API_TASKS", "ImageItem", "InputItem", "PdfItem", "TextItem", "parse_api_task", "parse_inputs", "parse_item"]

API_TASKS = ("retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage")
# Their specs, parsed once: a request looks its task up; only a name that is not one reaches parse_task's errors.
_API_SPECS = {name: parse_task(name) for name in API_TASKS}


def parse_api_task(name: str) -> TaskSpec:
    """One of the five API task names (:data:`API_TASKS`). A bare adapter name (``retrieval``, ``code``) is refused
    rather than guessed: the reference's ``encode_text`` would read it as a query, an omitted task means a passage
    here, and a silent guess either way embeds half a corpus on the wrong side."""
    if name in ("retrieval", "code"):
        raise InvalidTaskError(
            f"task {name!r} names an adapter, not a task: send '{name}.query' (queries) or '{name}.passage' "
            f"(documents); the tasks are {', '.join(API_TASKS)}"
        )
    spec = _API_SPECS.get(name)
    return spec if spec is not None else parse_task(name)


@dataclass(frozen=True, slots=True)
class TextItem:
    text: str


@dataclass(frozen=True, slots=True)
class ImageItem:
    source: str  # URL, base64 or data URI


@dataclass(frozen=True, slots=True)
class PdfItem:
    source: str  # URL, base64 or data URI
    pages: str | None = None  # "1-3,7" (1-based); None = every page up to the cap


InputItem = TextItem | ImageItem | PdfItem

_KINDS = '"text", "image" or "pdf"'
_OTHER_MODALITIES = ("audio", "video")
# {"url": ...} and {"bytes": base64} are Jina's image objects of the CLIP era, still sent by LlamaIndex's and
# LangChain's Jina embeddings for images.
_IMAGE_ALIASES = ("url", "bytes")


def parse_inputs(raw: Any, *, max_items: int | None = None, field: str = "input") -> list[InputItem]:
    """A string, one object, or a list of strings/objects -> items. Empty and token-id lists are refused."""
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise UnprocessableError(f"{field} is empty; expected at least one item", code="empty_input")
    if max_items is not None and len(values) > max_items:
        raise PayloadTooLargeError(
            f"{field} has {len(values)} items, more than the limit of {max_items} per request "
            "(JEV4_MAX_ITEMS_PER_REQUEST)",
            code="too_many_items",
        )
    return [parse_item(value, f"{field}[{i}]" if isinstance(raw, list) else field) for i, value in enumerate(values)]


def parse_item(value: Any, where: str) -> InputItem:
    """One input value -> an item (422 naming ``where`` when it is neither a string nor a known object)."""
    if isinstance(value, str):
        return _from_string(value, where)
    if isinstance(value, int | float | list):
        raise UnprocessableError(
            f"{where}: token ids and numbers are not accepted; send text as a string or {{'text': ...}}",
            code="invalid_input",
        )
    if not isinstance(value, dict):
        raise UnprocessableError(f"{where}: expected a string or an object with {_KINDS}", code="invalid_input")
    alias = [k for k in _IMAGE_ALIASES if k in value]
    if alias and not any(k in value for k in ("text", "image", "pdf")):
        value = {"image" if k == alias[0] else k: v for k, v in value.items()}
    kinds = [k for k in ("text", "image", "pdf") if k in value]
    other = [k for k in _OTHER_MODALITIES if k in value]
    if other:
        raise UnprocessableError(
            f"{where}: {other[0]} inputs are not supported: this server serves jina-embeddings-v4, which embeds "
            f"text, images and PDF pages; send an object with {_KINDS}",
            code="unsupported_input_type",
        )
    if len(kinds) != 1:
        found = ", ".join(sorted(map(str, value))) or "none"
        raise UnprocessableError(
            f"{where}: expected an object with exactly one of {_KINDS}; found keys: {found}",
            code="invalid_input",
        )
    kind = kinds[0]
    allowed = {"pdf": {"pdf", "pages"}}.get(kind, {kind})
    extra = sorted(set(value) - allowed)
    if extra:
        raise UnprocessableError(
            f"{where}: unknown key(s) for a {kind} input: {', '.join(extra)}", code="invalid_input"
        )
    content = value[kind]
    if not isinstance(content, str):
        raise UnprocessableError(
            f"{where}.{kind}: expected a string, got {type(content).__name__}", code="invalid_input"
        )
    if kind == "text":
        return _text(content, f"{where}.text")
    if kind == "image":
        return ImageItem(content)
    pages = value.get("pages")
    if pages is not None and not isinstance(pages, str):
        raise UnprocessableError(f'{where}.pages: expected a string like "1-3,7"', code="invalid_input")
    return PdfItem(content, pages)


def _text(value: str, where: str) -> TextItem:
    """Empty strings are refused, as OpenAI's and TEI's APIs do (the model would embed the prefix alone)."""
    if not value:
        raise UnprocessableError(f"{where}: empty string; send at least one character", code="empty_input")
    return TextItem(value)


def _from_string(value: str, where: str) -> InputItem:
    """A bare string is text, except a base64 data URI of an image or a PDF (Haystack's Jina image embedder
    sends images this way; no text starts with ``data:image/...;base64,``)."""
    head = value[:64].lower()
    if head.startswith("data:") and ";base64," in head:
        if head.startswith("data:image/"):
            return ImageItem(value)
        if head.startswith("data:application/pdf;"):
            return PdfItem(value)
    return _text(value, where)
