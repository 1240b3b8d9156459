"""What every converter shares: the limits a page converter obeys and the protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from model.types import PageImage

__all__ = ["PageConverter", "PageLimits"]


@dataclass(frozen=True, slots=True)
class PageLimits:
    """The caps a page converter checks before (or while) it decodes: bytes of the input, pixels of one decoded
    page, and the resolution pages are rendered at."""

    dpi: int = 144
    max_bytes: int = 50 * 1024 * 1024
    max_decoded_pixels: int = 40_000_000


class PageConverter(Protocol):
    """Bytes of one kind -> page images (with their text layer when the format has one).

    ``kind`` is the name stored in :class:`~service.collections.indexing.DocumentSource` and shown in job progress
    and metrics; ``sniff`` says from the first bytes whether the input is of this kind; ``count`` is cheap (no
    rendering: it runs before any work, so a bad file or page selection is refused early); ``load`` decodes the
    pages numbered ``numbers`` (1-based) — it runs in the preprocessing pool, a few pages at a time."""

    kind: str

    def sniff(self, head: bytes) -> bool: ...

    def count(self, data: bytes, limits: PageLimits) -> int: ...

    def load(self, data: bytes, numbers: list[int], limits: PageLimits) -> list[PageImage]: ...
