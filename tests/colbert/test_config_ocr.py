"""A collection's ``ocr`` label (``CollectionConfig.ocr``, the service's OCR default for its uploads) over every
backend: kept from creation, read back after a reopen, carried by export/import; a collection created without
one (every index written before it existed) reads None."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.errors import InvalidDocumentError
from colbert.transfer import export_collection, import_collection
from tests.colbert.store_backends import F32, Backend

SCANS = dataclasses.replace(F32, ocr="always")


def test_the_label_is_kept_and_absent_reads_none(backend: Backend) -> None:
    scans, plain = backend.make(SCANS), backend.make(F32)
    assert (backend.reopen(scans).config.ocr, backend.reopen(plain).config.ocr) == ("always", None)
    assert F32.as_json() == {k: v for k, v in SCANS.as_json().items() if k != "ocr"}  # no key when unset


@pytest.mark.parametrize("kind", ["local", "qdrant"])
def test_export_and_import_carry_it(tmp_path: Path, kind: str) -> None:
    def catalog(root: Path) -> Catalog:
        return (
            Catalog(root)
            if kind == "local"
            else Catalog(root, backend="qdrant", qdrant_client=QdrantClient(":memory:"))
        )

    with catalog(tmp_path / "a") as source, catalog(tmp_path / "b") as target:
        source.create("scans", SCANS)
        export_collection(source, "scans", tmp_path / "scans.tar")
        import_collection(target, tmp_path / "scans.tar")
        assert target.get("scans").config.ocr == "always"


def test_a_malformed_label_is_refused(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog, pytest.raises(InvalidDocumentError, match="ocr"):
        catalog.create("bad", dataclasses.replace(F32, ocr=""))
