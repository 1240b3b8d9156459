"""A stored page's image: how indexing keeps it, and how readers get it back at the size the model saw it.

What is kept (chosen by measurement: ``bench/page_images.py``; 56 real PDF pages at 144 DPI, 602,112 px cap):

- a page of a document whose **original PDF is kept** (``JEV4_KEEP_ORIGINALS``): no image at all. The page is
  rendered on demand from the kept PDF, exactly as indexing rendered it (``pdf_dpi``, the render pool), then resized
  to its :class:`~model.layout.PageLayout`'s ``image_size``, so the similarity map and the highlight boxes fall on
  the same pixels as before. The PDF costs ~7 KB per page where a PNG of the page cost ~161 KB; a render costs
  ~80 ms (a few recent renders are cached here, and the ETag lets a browser keep its copy).
- the page of an **image upload whose original is kept** and is a PNG, JPEG or WebP (:data:`IMAGE_MEDIA_TYPES`):
  no image either. The original is decoded as indexing decoded it and resized to the layout's ``image_size`` on
  demand (the pixels the model saw, lossless, where the WebP copy was lossy); ``bench/image_uploads.py``: the
  WebP added ~22 % to the kept originals (~17 KB per image), a first request decodes in ~5-50 ms. Other image
  formats (GIF, BMP, TIFF) keep their WebP: a browser may not show them, so their original is no page image.
- any other page (an e-book or office file converted to PDF, a PDF or an image without its original):
  **WebP at quality** :data:`WEBP_QUALITY`, method :data:`WEBP_METHOD` (~40 KB per page; text stays legible:
  compare crops with the bench's ``--crops``; OCR finds ~0.87-0.90 of the words it finds on the PNG, where JPEG
  at a similar size finds ~0.6; and it encodes faster than the PNG did).
- indexes written before this keep their PNGs: a stored image is read as it is, whatever its format.

Readers: :func:`locate` (cheap: the ETag without any pixels) then :func:`load` (the bytes: stored, or rendered and
encoded as PNG, lossless). :func:`as_png` gives PNG bytes of any of them (search's ``image`` field stays PNG).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PIL import Image

from model.errors import ImageTooLargeError
from model.images import load_image
from model.layout import PageLayout
from service.engine.render_pool import render_pages
from service.errors import NotFoundError, naming

if TYPE_CHECKING:
    from colbert.store import OriginalFile, Store
    from service.collections.converters.base import PageLimits

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "PDF_MEDIA_TYPE",
    "WEBP_METHOD",
    "WEBP_QUALITY",
    "PagePicture",
    "as_png",
    "encode_stored",
    "load",
    "locate",
    "media_type_of",
    "renders_from_original",
]

PDF_MEDIA_TYPE: Final = "application/pdf"
IMAGE_MEDIA_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp"})  # originals that are page images
WEBP_QUALITY: Final = 75  # bench/page_images.py: ~25 % of the PNG's bytes; q60 saves 10 % more but OCR loses words
WEBP_METHOD: Final = 2  # 0 fastest .. 6 smallest: 2 is ~3 % larger than Pillow's default 4 at half its encode time
_CACHED_RENDERS: Final = 16  # rendered pages kept (PNG bytes, ~160 KB each): a page, its neighbours, its thumbnail
_CACHE: OrderedDict[str, bytes] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PagePicture:
    """Where one stored page's image comes from: its stored bytes, or (``stored`` None) its document's kept original
    (a PDF's page rendered, an image decoded) at ``size``. ``tag`` names the pixels (a hex digest): it changes
    when the document is replaced."""

    doc_id: str
    page: int
    stored: bytes | None
    size: tuple[int, int] | None  # (width, height) to render at (the layout's image_size); None when stored
    tag: str


def renders_from_original(original: OriginalFile | None) -> bool:
    """Whether a page document kept with ``original`` stores no page images (they are made again from it)."""
    return original is not None and _made_from(original.media_type)


def _made_from(media_type: str) -> bool:
    return media_type == PDF_MEDIA_TYPE or media_type in IMAGE_MEDIA_TYPES


def encode_stored(image: Image.Image) -> bytes:
    """The bytes kept for a page image that cannot be rendered again: WebP, lossy, at :data:`WEBP_QUALITY`."""
    out = io.BytesIO()
    image.convert("RGB").save(out, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue()


def media_type_of(data: bytes) -> str:
    """The media type of stored page image bytes, from their signature (PNG before, WebP now)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"


def as_png(data: bytes) -> bytes:
    """``data`` as PNG bytes (unchanged when it is PNG already)."""
    if data.startswith(b"\x89PNG"):
        return data
    with Image.open(io.BytesIO(data)) as image:
        return _png(image.convert("RGB"))


def locate(store: Store, doc_id: str, page: int) -> PagePicture | None:
    """The page's image source (blocking; reads no original bytes), or None when the document has no such page or
    the page has no image (a text chunk, a page indexed without one and no kept PDF)."""
    stored = store.get_image(doc_id, page)
    if stored is not None:
        return PagePicture(doc_id, page, stored, None, hashlib.sha256(stored).hexdigest()[:32])
    info = store.get_document(doc_id)
    if info is None or info.file is None or not _made_from(info.file.media_type):
        return None
    record = store.get_unit(doc_id, page)
    layout = None if record is None else PageLayout.from_metadata(record.metadata)
    if layout is None:
        return None
    width, height = layout.image_size
    tag = hashlib.sha256(f"{info.file.sha256}/{page}/{width}x{height}".encode()).hexdigest()[:32]
    return PagePicture(doc_id, page, None, (width, height), tag)


def load(store: Store, picture: PagePicture, limits: PageLimits) -> bytes:
    """The page image's bytes (blocking): the stored ones, or made again from the kept original at
    ``picture.size``, as PNG (404 ``page_not_found`` when the document was replaced meanwhile)."""
    if picture.stored is not None:
        return picture.stored
    with _CACHE_LOCK:
        cached = _CACHE.get(picture.tag)
        if cached is not None:
            _CACHE.move_to_end(picture.tag)
            return cached
    original = store.get_original(picture.doc_id)
    if original is None or picture.size is None or not _made_from(original.media_type):
        raise NotFoundError(
            f"document {picture.doc_id!r} no longer has a kept original to make page {picture.page}'s image from "
            "(it was replaced or deleted meanwhile): search again",
            code="page_not_found",
        )
    image = _as_indexed(original, picture.page, limits)
    if image.size != picture.size:  # as indexing's resize to the layout (service.collections.indexing._as_seen)
        image = image.resize(picture.size, Image.Resampling.BICUBIC)
    data = _png(image)
    with _CACHE_LOCK:
        _CACHE[picture.tag] = data
        while len(_CACHE) > _CACHED_RENDERS:
            _CACHE.popitem(last=False)
    return data


def _as_indexed(original: OriginalFile, page: int, limits: PageLimits) -> Image.Image:
    """The page as indexing had it before the resize: the PDF's page rendered at ``limits.dpi``, or the image
    decoded (as :mod:`service.collections.converters.image` does)."""
    if original.media_type != PDF_MEDIA_TYPE:
        with naming((ImageTooLargeError, "max_decoded_pixels")):
            return load_image(original.data, max_decoded_pixels=limits.max_decoded_pixels)
    (rendered,) = render_pages(
        original.data,
        dpi=limits.dpi,
        pages=[page],
        max_pages=1,
        max_bytes=limits.max_bytes,
        max_pixels_per_page=limits.max_decoded_pixels,
        pool=limits.render_pool,
    )
    return rendered.image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()
