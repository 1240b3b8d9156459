"""Which OCR mode (:data:`model.ocr.OCR_MODES`) a page document is indexed with: the upload's ``ocr`` when it
sends one, else its collection's (``ocr`` given at creation, kept in the collection's config by both backends),
else the server's (``JEV4_OCR``). A collection created before collections had one has none: the server's applies.

>>> from colbert.store import CollectionConfig
>>> scans = CollectionConfig(8, ocr="always")
>>> upload_ocr(None, scans, "auto"), upload_ocr("never", scans, "auto")
('always', 'never')
>>> upload_ocr(None, CollectionConfig(8), "auto")
'auto'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.ocr import OCR_MODES
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig

__all__ = ["collection_ocr", "upload_ocr"]


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
