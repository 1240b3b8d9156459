"""Page images of indexed documents, kept as PNG files beside the collections.

Search can return a hit's page image and a similarity map over it, so the image the model saw is kept at
indexing time (re-rendering later would need the original file, which is not stored). Layout::

    <data_dir>/page-images/<collection>/<sha256(document id)[:40]>/<page>.png

Each PNG is the page resized to exactly what the model embedded (``cols*28`` x ``rows*28`` pixels for its
merged patch grid), so the cells of a similarity map fall on the image without any rescaling.

A document's pages are written into a hidden staging folder first and swapped into place only after the
index has committed the document (:meth:`StagedPages.commit`), so a failed or replaced upload never leaves
a mix of old and new pages. Leftover staging folders (a crash mid-upload) are removed by :meth:`sweep`.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PageImageStore", "StagedPages"]

_STAGING = ".staging-"


def _doc_key(document_id: str) -> str:
    return hashlib.sha256(document_id.encode("utf-8")).hexdigest()[:40]


class StagedPages:
    """Pages of one document being written; :meth:`commit` or :meth:`discard` ends it."""

    def __init__(self, final: Path, staging: Path) -> None:
        self.final = final
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=False)

    def write(self, page: int, image: Image.Image) -> None:
        """Save one page (PNG). ``image`` is stored as given."""
        image.save(self.staging / f"{page}.png", format="PNG", compress_level=6)

    def commit(self) -> None:
        """Replace the document's committed pages by the staged ones."""
        if self.final.exists():
            trash = self.final.with_name(f"{_STAGING}old-{uuid.uuid4().hex}")
            self.final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        self.staging.rename(self.final)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class PageImageStore:
    """PNG page images of every collection under one root folder (thread-safe: files only)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _collection_dir(self, collection: str) -> Path:
        return self.root / collection

    def _document_dir(self, collection: str, document_id: str) -> Path:
        return self._collection_dir(collection) / _doc_key(document_id)

    def stage(self, collection: str, document_id: str) -> StagedPages:
        """A staging area for the pages of ``document_id`` (committed in place of any older pages)."""
        final = self._document_dir(collection, document_id)
        staging = final.with_name(f"{_STAGING}{final.name}-{uuid.uuid4().hex}")
        return StagedPages(final, staging)

    def read(self, collection: str, document_id: str, page: int) -> bytes | None:
        """The PNG bytes of one page, or None when none is stored."""
        path = self._document_dir(collection, document_id) / f"{page}.png"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete_document(self, collection: str, document_id: str) -> None:
        shutil.rmtree(self._document_dir(collection, document_id), ignore_errors=True)

    def delete_collection(self, collection: str) -> None:
        shutil.rmtree(self._collection_dir(collection), ignore_errors=True)

    def sweep(self) -> None:
        """Remove staging folders left by an interrupted upload."""
        if not self.root.is_dir():
            return
        for collection in self.root.iterdir():
            if collection.is_dir():
                for leftover in collection.glob(f"{_STAGING}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
