"""A collection deleted (or re-created) by another process while a document is being written into the handle this
process holds: the upload — or its job — fails with 404 ``collection_not_found`` instead of reporting a document
that no longer exists (issue 25: the CLI deleted a collection under a running HTTP job, which then said
``succeeded``). The other process is a second :class:`~colbert.catalog.Catalog` over the same index, as the CLI's
is."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from colbert.errors import CollectionNotFoundError
from service.collections.manager import still_there
from service.errors import error_info
from tests.colbert.test_catalog import CFG, _page, _two_catalogs


@pytest.mark.parametrize(("backend", "recreate"), [("local", False), ("local", True), ("qdrant", False)])
def test_a_write_into_a_collection_deleted_meanwhile_fails(tmp_path: Path, backend: str, recreate: bool) -> None:
    """(Qdrant + re-created: a handle notices only when a request fails, by design; see ``still_there``.)"""
    server, cli = _two_catalogs(tmp_path, backend)
    with server, cli:
        held = server.create("docs", CFG)
        still_there(server, "docs", held)  # nothing happened: no error
        assert cli.delete("docs") is True  # `collections delete docs --yes` in another process
        if recreate:
            cli.create("docs", CFG)
        with contextlib.suppress(CollectionNotFoundError):  # the write may fail by itself, or land where none sees it
            held.add_document("late", [_page()])
        with pytest.raises(CollectionNotFoundError, match=r"deleted .* by another process") as caught:
            still_there(server, "docs", held)
        info = error_info(caught.value)
        assert info is not None
        assert (info.status, info.code) == (404, "collection_not_found")
        if recreate:
            assert server.get("docs").get_document("late") is None
