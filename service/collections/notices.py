"""What a document is stored with when it was indexed but something about it will surprise a searcher: its
``warnings`` (kept in the document's record by both backends, :class:`colbert.store.DocumentInfo`; answered by
the upload, its job, ``GET …/documents/{id}`` and the CLI's ``documents show``).

Today one rule: a page document none of whose pages has any text — no text layer, and OCR (when it ran) read no
word — can be found by visual search only; text and hybrid search never return it.

>>> from colbert.store import UnitRecord
>>> import numpy as np
>>> blank = UnitRecord(1, np.ones(2), np.ones((1, 2)), text=None)
>>> page_warnings([blank], "auto")
('no text found: visual search only (the pages have no text layer and OCR read no word on them)',)
>>> page_warnings([UnitRecord(1, np.ones(2), np.ones((1, 2)), text="Invoice 42")], "never")
()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from colbert.store import UnitRecord

__all__ = ["NO_TEXT", "page_warnings"]

NO_TEXT: Final = "no text found: visual search only"


def page_warnings(units: Sequence[UnitRecord], ocr: str) -> tuple[str, ...]:
    """The warnings of a page document made of ``units``, indexed with OCR mode ``ocr`` (``model.ocr.OCR_MODES``)."""
    if any(u.text and u.text.strip() for u in units):
        return ()
    if ocr == "never":
        return (f"{NO_TEXT} (the pages have no text layer and OCR was off: upload with ocr=auto to read their text)",)
    return (f"{NO_TEXT} (the pages have no text layer and OCR read no word on them)",)
