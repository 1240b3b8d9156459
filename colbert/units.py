"""What a text/code chunk unit is and where it lies in its document, as stored in the unit's metadata.

The index keeps it beside the chunk's vectors and text; it writes and reads it only through this type (the
service builds it at indexing and parses it for hits and the CLI).

>>> info = ChunkInfo("src/app.py", "python", "function", name="main", lines=(3, 9), char_span=(40, 210))
>>> sorted(info.to_metadata().items())  # doctest: +NORMALIZE_WHITESPACE
[('char_span', [40, 210]), ('chunk_kind', 'function'), ('language', 'python'), ('lines', [3, 9]),
 ('name', 'main'), ('path', 'src/app.py')]
>>> ChunkInfo.from_metadata(info.to_metadata()) == info
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChunkInfo"]

_KNOWN = frozenset({"path", "language", "chunk_kind", "name", "lines", "char_span", "part"})


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """A chunk's document path and language, its kind (``function``, ``section``, ``lines``, …) and name (a
    definition's qualified name, a heading), its 1-based inclusive line range, its ``[start, end)`` span in
    characters of the decoded document, its part number when a long definition was cut, and per-kind extras
    (e.g. a section's ``headings``)."""

    path: str
    language: str
    chunk_kind: str
    name: str | None = None
    lines: tuple[int, int] | None = None
    char_span: tuple[int, int] | None = None
    part: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        """The stored form (JSON object; the keys every stored chunk has had)."""
        meta: dict[str, Any] = {"path": self.path, "language": self.language, "chunk_kind": self.chunk_kind}
        if self.char_span is not None:
            meta["char_span"] = list(self.char_span)
        if self.lines is not None:
            meta["lines"] = list(self.lines)
        if self.name is not None:
            meta["name"] = self.name
        if self.part is not None:
            meta["part"] = self.part
        meta.update(self.extra)
        return meta

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ChunkInfo:
        """Parse a chunk unit's stored metadata (missing keys read as empty)."""
        name, part = metadata.get("name"), metadata.get("part")
        return cls(
            path=str(metadata.get("path", "")),
            language=str(metadata.get("language", "")),
            chunk_kind=str(metadata.get("chunk_kind", "")),
            name=None if name is None else str(name),
            lines=_pair(metadata.get("lines")),
            char_span=_pair(metadata.get("char_span")),
            part=None if part is None else int(part),
            extra={k: v for k, v in metadata.items() if k not in _KNOWN},
        )


def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None
