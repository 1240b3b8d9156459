"""Source code -> chunks at its definitions, with tree-sitter.

Rules (each chunk's ``kind`` and ``name`` in brackets):

- every top-level definition is a chunk [``function`` / ``struct`` / ``type`` … , its name]; comments and attributes
  directly above it (no blank line between) and its decorators / ``export`` / ``template<…>`` belong to it;
- a class-like container (class, impl, trait, interface) with member definitions becomes a chunk for its header
  and fields [``class``, ``Encoder``] and one chunk per member [``method``, ``Encoder.encode_text``]; nested
  containers nest their names; namespaces / modules only prefix names;
- the code between definitions (imports, statements) is a chunk [``code``, no name];
- a definition whose subtree holds a syntax error is not trusted as one: its lines fall back to line windows
  [``lines``] (the rest of the file keeps its definitions), and the document says ``syntax_errors``;
- every chunk is capped at ``max_tokens`` (:func:`~service.collections.chunking.spans.cap_size`);
- definitions nested deeper than :data:`~service.collections.chunking.bounds.MAX_NESTING` are not followed:
  the container at that depth is one chunk, and a namespace / module there is plain code (bounded stack and
  time on hostile nesting); a walk that finds more definitions than the document may have chunks stops there
  with 413 ``too_many_chunks`` (``bounds.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.collections.chunking.bounds import MAX_NESTING, ChunkCounter
from service.collections.chunking.languages import GRAMMARS, Grammar, parser_for

__all__ = ["Definition", "find_definitions"]

_NAME_NODES = frozenset(
    {"identifier", "field_identifier", "type_identifier", "qualified_identifier", "operator_name", "destructor_name"}
)
_READ_BYTES = 2048
_LEADING = ("comment", "attribute_item", "attribute", "annotation", "marker_annotation")


@dataclass(frozen=True, slots=True)
class Definition:
    """A span of the document (characters) the parser recognised, or an unparsable region (``kind="lines"``)."""

    start: int
    end: int
    kind: str
    name: str | None


def find_definitions(text: str, language: str, counter: ChunkCounter | None = None) -> tuple[list[Definition], bool]:
    """The definitions of ``text`` in document order (non-overlapping) and whether the parse had errors; each
    one found is counted on ``counter`` (which stops the walk at its limit)."""
    grammar = GRAMMARS[language]
    data = text.encode("utf-8")
    tree = parser_for(language).parse(_reader(data))
    spans = []
    for span in _walk(tree.root_node, grammar, "", data, top=True, depth=0):
        if counter is not None:
            counter.add()
        spans.append(span)
    to_char = _byte_to_char(data)
    found = [Definition(int(to_char[start]), int(to_char[end]), kind, name) for start, end, kind, name in spans]
    return found, bool(tree.root_node.has_error)


def _reader(data: bytes) -> Callable[[int, Any], bytes]:
    """The document for tree-sitter in pieces of ``_READ_BYTES``: the parser holds the GIL while it works on
    bytes given whole (4 MiB: seconds in which the server answers nothing, ``/health`` included), and gives
    other threads their turn at each call of a read function."""
    view = memoryview(data)

    def read(byte: int, _point: Any) -> bytes:
        return bytes(view[byte : byte + _READ_BYTES])

    return read


def _byte_to_char(data: bytes) -> np.ndarray:
    """(len(data) + 1,) character offset of every UTF-8 byte offset."""
    raw = np.frombuffer(data, dtype=np.uint8)  # (N,)
    starts = (raw & 0xC0) != 0x80  # (N,) a character starts at this byte
    return np.concatenate([[0], np.cumsum(starts)])  # (N + 1,)


def _walk(
    node: Any, grammar: Grammar, prefix: str, data: bytes, *, top: bool, depth: int
) -> Iterator[tuple[int, int, str, Any]]:
    """(start byte, end byte, kind, name) of the definitions among ``node``'s children (none below
    ``MAX_NESTING``: see the module doc)."""
    if depth > MAX_NESTING:
        return
    before: list[Any] = []  # the run of comments/attributes before a child, and the sibling before the run
    for child in _named_children(node):
        previous = before
        if child.type.endswith(_LEADING):  # never a definition itself: ``previous`` is not needed for it
            before.append(child)
        else:
            before = [child]
        target = _unwrap(child, grammar)
        kind = grammar.definitions.get(target.type)
        is_container = target.type in grammar.containers
        if target.type in grammar.scopes:
            body = target.child_by_field_name("body")
            inner = prefix + _qualify(_name(target, data))
            if body is not None:
                yield from _walk(body, grammar, inner, data, top=top, depth=depth + 1)
            continue
        if kind is None and not is_container:
            continue
        if child.has_error or (kind == "definition" and not _holds_function(target)):
            continue
        start = _leading_start([*previous, child], len(previous), child)
        end = _trailing_end(child)
        name = _name(target, data)
        full = prefix + name if name else None
        if is_container:
            yield from _container(target, grammar, start, end, full, data, depth)
        else:
            assert kind is not None
            yield start, end, ("method" if not top and kind == "function" else kind), full


def _named_children(node: Any) -> Iterator[Any]:
    """``node.named_children`` one at a time (a file of 250,000 top-level statements is not turned into
    250,000 node objects at once, holding the GIL, when the walk stops at the chunk limit)."""
    cursor = node.walk()
    if not cursor.goto_first_child():
        return
    while True:
        if cursor.node.is_named:
            yield cursor.node
        if not cursor.goto_next_sibling():
            return


def _container(
    node: Any, grammar: Grammar, start: int, end: int, name: str | None, data: bytes, depth: int
) -> Iterator[tuple[int, int, str, Any]]:
    kind = grammar.containers[node.type]
    body = node.child_by_field_name("body")
    if body is None:
        body = next((c for c in node.named_children if c.type in grammar.bodies), None)
    members = [] if body is None else list(_walk(body, grammar, _qualify(name), data, top=False, depth=depth + 1))
    if not members:
        yield start, end, kind, name
        return
    yield start, members[0][0], kind, name  # header, fields, docstring: up to the first member
    yield from members
    tail = data[members[-1][1] : end]
    if any(ch.isalnum() for ch in tail.decode("utf-8", errors="replace")):  # fields after the last member
        yield members[-1][1], end, kind, name


def _unwrap(node: Any, grammar: Grammar) -> Any:
    """The definition inside decorators / ``export`` / ``template<…>`` (the node itself if none)."""
    while node.type in grammar.wrappers:
        inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
        if inner is None:
            known = {*grammar.definitions, *grammar.containers, *grammar.wrappers}
            inner = next((c for c in reversed(node.named_children) if c.type in known), None)
        if inner is None:
            return node
        node = inner
    return node


def _leading_start(children: list[Any], index: int, child: Any) -> int:
    """Start byte of ``child`` extended over the comments/attributes directly above it (no blank line)."""
    start = child.start_byte
    row = child.start_point[0]
    k = index - 1
    while k >= 0 and children[k].type.endswith(_LEADING) and children[k].end_point[0] >= row - 1:
        before = children[k - 1] if k > 0 else None
        if before is not None and before.end_point[0] == children[k].start_point[0] and before.end_point[1] > 0:
            break  # a trailing comment of the line above belongs to that line
        start = children[k].start_byte
        row = children[k].start_point[0]
        k -= 1
    return int(start)


def _trailing_end(child: Any) -> int:
    """End byte of ``child``, over a ``;`` that closes it on the same line (C's ``struct … {…};``)."""
    after = child.next_sibling
    if after is not None and after.type == ";" and after.start_point[0] == child.end_point[0]:
        return int(after.end_byte)
    return int(child.end_byte)


def _holds_function(node: Any) -> bool:
    """A JS/TS ``const f = () => …`` / ``= function …`` / ``= class …`` (a plain constant is not a definition)."""
    for declarator in node.named_children:
        value = declarator.child_by_field_name("value")
        if value is not None and value.type in ("arrow_function", "function_expression", "function", "class"):
            return True
    return False


def _name(node: Any, data: bytes) -> str | None:
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:  # Go
        receiver = _first_of(node.child_by_field_name("receiver"), {"type_identifier"})
        own = _text(node.child_by_field_name("name"), data)
        return f"{_text(receiver, data)}.{own}" if receiver is not None else own
    if node.type == "impl_item":  # Rust: the implementing type, without generics
        typ = node.child_by_field_name("type")
        named = _first_of(typ, {"type_identifier"}) if typ is not None else None
        return _text(named if named is not None else typ, data)
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name, data)
    if node.type in ("lexical_declaration", "variable_declaration", "type_declaration"):
        first = next((c for c in node.named_children if c.child_by_field_name("name") is not None), None)
        return None if first is None else _text(first.child_by_field_name("name"), data)
    declarator = node.child_by_field_name("declarator")  # C/C++: follow declarators to the identifier
    while declarator is not None and declarator.type not in _NAME_NODES:
        declarator = declarator.child_by_field_name("declarator") or _first_of(declarator, _NAME_NODES)
    return _text(declarator, data)


def _first_of(node: Any, types: set[str] | frozenset[str]) -> Any:
    """The first node of one of ``types`` in ``node``'s subtree (pre-order), or None."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            return current
        stack.extend(reversed(current.named_children))
    return None


def _text(node: Any, data: bytes) -> str | None:
    if node is None:
        return None
    return data[node.start_byte : node.end_byte].decode("utf-8", errors="replace").replace("::", ".")


def _qualify(name: str | None) -> str:
    return f"{name}." if name else ""
