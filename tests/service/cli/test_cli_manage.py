"""``python -m service collections|documents``: the API's list/show/delete from the command line, human text
(never a Python repr), ``--json`` lines, the API's error messages; no model is loaded."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.quantize import Codec
from colbert.store import CollectionConfig, OriginalFile, UnitRecord
from service.__main__ import main

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40  # bytes of every value: written back exactly


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("JEV4_"):
            monkeypatch.delenv(name)
    rng = np.random.default_rng(0)

    def page(n: int) -> UnitRecord:
        return UnitRecord(n, rng.standard_normal(16).astype(np.float32), rng.standard_normal((5, 8)).astype(np.float32))

    catalog = Catalog(tmp_path)
    store = catalog.create("lib", CollectionConfig(dense_dim=16, multivector_dim=8, codec=Codec.FLOAT16))
    store.add_document("report.pdf", [page(0), page(1)], {"source": "report.pdf", "lang": "en"})
    store.add_document("scan", [page(0)], {})
    original = OriginalFile(PDF, "application/pdf", "Q3 report (final).pdf")
    store.add_document("kept", [page(1)], {}, original=original, warnings=["no text found: visual search only"])
    catalog.create("empty", CollectionConfig(dense_dim=16, multivector_dim=8))
    catalog.close()
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    for text in (out, err):  # human text: no reprs, no tracebacks
        assert "Object(" not in text
        assert "Traceback" not in text
    return code, out, err


def test_collections_list_show_delete(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, _ = _run(capsys, data_dir, "collections", "list")
    assert code == 0
    lines = out.splitlines()
    lib = re.compile(r"^lib  3 documents, 4 pages, [0-9.]+ KiB on disk  \(dimensions 16, codec float16")
    assert any(lib.match(line) for line in lines), out
    assert any(line.startswith("empty  0 documents, 0 pages") for line in lines), out
    code, out, _ = _run(capsys, data_dir, "collections", "show", "lib", "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["name"], shown["documents"], shown["pages"]) == ("lib", 3, 4)
    code, out, _ = _run(capsys, data_dir, "collections", "delete", "empty", "--yes")
    assert (code, out.strip()) == (0, "deleted collection empty")
    code, out, err = _run(capsys, data_dir, "collections", "show", "empty")
    assert code == 1
    assert err.strip() == "error: no collection named 'empty'"
    assert out == ""


def test_documents_list_show_delete(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, err = _run(capsys, data_dir, "documents", "list", "--collection", "lib")
    assert code == 0
    assert "report.pdf  2 pages  added " in out
    assert '{"lang": "en", "source": "report.pdf"}' in out
    assert "scan  1 page  added " in out
    assert "1-3 of 3 documents in lib" in err
    assert '    original file "Q3 report (final).pdf": application/pdf, 10.0 KiB' in out
    assert "    warning: no text found: visual search only" in out
    code, out, _ = _run(capsys, data_dir, "documents", "show", "kept", "--collection", "lib", "--json")
    assert json.loads(out)["warnings"] == ["no text found: visual search only"]
    code, out, _ = _run(capsys, data_dir, "documents", "list", "--collection", "lib", "--json", "--limit", "1")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1
    assert rows[0]["id"] in ("report.pdf", "scan", "kept")
    assert rows[0]["collection"] == "lib"
    code, out, _ = _run(capsys, data_dir, "documents", "delete", "scan", "--collection", "lib")
    assert (code, out.strip()) == (0, "deleted document scan from lib")
    code, out, err = _run(capsys, data_dir, "documents", "show", "scan", "--collection", "lib")
    assert code == 1
    assert err.strip() == "error: no document 'scan' in collection 'lib'"
    code, _, err = _run(capsys, data_dir, "documents", "list", "--collection", "nope")
    assert code == 1
    assert err.strip() == "error: no collection named 'nope'"


def test_documents_get_file(capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "q3.pdf"
    target.parent.mkdir()
    code, out, err = _run(capsys, data_dir, "documents", "get-file", "kept", "--collection", "lib", "-o", str(target))
    assert (code, err) == (0, "")
    assert target.read_bytes() == PDF
    assert out.strip() == f'wrote {target}: 10.0 KiB, application/pdf ("Q3 report (final).pdf")'
    assert list(target.parent.iterdir()) == [target]  # no partial file left beside it
    code, out, _ = _run(
        capsys, data_dir, "documents", "get-file", "kept", "--collection", "lib", "-o", str(target), "--json"
    )
    assert json.loads(out) == {
        "document_id": "kept",
        "file": str(target),
        "bytes": len(PDF),
        "media_type": "application/pdf",
        "name": "Q3 report (final).pdf",
    }
    code, out, err = _run(capsys, data_dir, "documents", "get-file", "scan", "--collection", "lib", "-o", str(target))
    assert code == 1
    assert err.startswith("error: document 'scan' in collection 'lib' has no original file")
    assert "JEV4_KEEP_ORIGINALS=true (it is on now)" in err
    code, _, err = _run(capsys, data_dir, "documents", "get-file", "nope", "--collection", "lib", "-o", str(target))
    assert (code, err.strip()) == (1, "error: no document 'nope' in collection 'lib'")
    code, _, err = _run(
        capsys, data_dir, "documents", "get-file", "kept", "--collection", "lib", "-o", str(tmp_path / "no" / "x")
    )
    assert code == 1
    assert err.startswith(f"error: cannot write {tmp_path / 'no' / 'x'}: ")
    assert target.read_bytes() == PDF


def test_collections_vacuum_reports_bytes(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, _ = _run(capsys, data_dir, "collections", "show", "lib", "--json")
    assert code == 0
    assert json.loads(out)["disk_bytes"] > 0
    code, out, _ = _run(capsys, data_dir, "collections", "list")
    assert " on disk  (dimensions 16" in out
    assert _run(capsys, data_dir, "documents", "delete", "report.pdf", "--collection", "lib")[0] == 0
    code, out, _ = _run(capsys, data_dir, "collections", "vacuum", "lib")
    assert code == 0
    assert out.startswith("lib: ")
    assert " reclaimed; " in out
    code, out, _ = _run(capsys, data_dir, "collections", "vacuum", "lib", "--json")
    done = json.loads(out)
    assert done["bytes_after"] <= done["bytes_before"]
    assert (
        done["bytes_after"]
        == json.loads(_run(capsys, data_dir, "collections", "show", "lib", "--json")[1])["disk_bytes"]
    )
    code, _, err = _run(capsys, data_dir, "collections", "vacuum", "nope")
    assert (code, err.strip()) == (1, "error: no collection named 'nope'")


def test_collections_export_import_and_migrate(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    file = tmp_path / "lib.tar.gz"
    code, out, _ = _run(capsys, data_dir, "collections", "export", "lib", str(file))
    assert code == 0
    assert out.startswith(f"exported lib: 3 documents, 4 units to {file} (")
    code, out, _ = _run(capsys, data_dir, "collections", "import", str(file), "--name", "lib2")
    assert (code, out.split(" from ")[0]) == (0, "imported lib2: 3 documents, 4 units")
    code, _, err = _run(capsys, data_dir, "collections", "import", str(file))
    assert (code, err.strip()) == (1, "error: collection 'lib' already exists")
    # migration: the same file into the Qdrant backend (qdrant-client's local mode under the data directory)
    code, out, _ = _run(capsys, data_dir, "collections", "import", str(file), "--collection-backend", "qdrant")
    assert code == 0
    assert "now on qdrant" in out
    code, out, _ = _run(capsys, data_dir, "documents", "list", "--collection", "lib", "--collection-backend", "qdrant")
    assert "report.pdf  2 pages" in out
    assert '{"lang": "en", "source": "report.pdf"}' in out
    target = tmp_path / "from-qdrant.pdf"  # the original file went along
    code, _, _ = _run(
        capsys,
        data_dir,
        "documents",
        "get-file",
        "kept",
        "--collection",
        "lib",
        "--collection-backend",
        "qdrant",
        "-o",
        str(target),
    )
    assert (code, target.read_bytes()) == (0, PDF)
    (tmp_path / "junk.tar").write_bytes(b"not a tar file")
    code, _, err = _run(capsys, data_dir, "collections", "import", str(tmp_path / "junk.tar"), "--name", "x")
    assert code == 1
    assert err.startswith("error: cannot read ")
    code, _, err = _run(capsys, data_dir, "collections", "export", "nope", str(tmp_path / "n.tar"))
    assert (code, err.strip()) == (1, "error: no collection named 'nope'")


def test_collection_delete_asks_first(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no terminal on stdin (a script, a pipe): refused, naming --yes; nothing deleted
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = _run(capsys, data_dir, "collections", "delete", "lib")
    assert (code, out) == (1, "")
    assert "pass --yes" in err
    assert _run(capsys, data_dir, "collections", "show", "lib")[0] == 0
    # a person at a terminal: the question names what goes; "n" (or just Enter) keeps it, "y" deletes
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or next(answers))
    code, _, err = _run(capsys, data_dir, "collections", "delete", "lib")
    assert code == 1
    assert "nothing was deleted" in err
    assert asked == ["delete collection 'lib' with its 3 documents (4 pages)? [y/N] "]
    code, out, _ = _run(capsys, data_dir, "collections", "delete", "lib")
    assert (code, out.strip()) == (0, "deleted collection lib")
    code, _, err = _run(capsys, data_dir, "collections", "delete", "lib", "--yes")
    assert (code, err.strip()) == (1, "error: no collection named 'lib'")  # 404 before any question


def test_documents_delete_by_filter(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = ["--collection", "lib"]
    # a key no document holds: refused before any question (it would match every document by absence)
    code, _, err = _run(capsys, data_dir, "documents", "delete", "--filter", '{"lnag": {"$ne": "de"}}', *lib, "--yes")
    assert code == 2
    assert err.startswith("error: no document of this collection has the metadata key(s) ['lnag']")
    code, out, _ = _run(capsys, data_dir, "documents", "delete", "--filter", '{"lang": "en"}', "--dry-run", *lib)
    assert (code, out.strip()) == (0, "would delete 1 document from lib: report.pdf")
    # no terminal on stdin: refused, naming --yes; a person answering n keeps it, y deletes
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = _run(capsys, data_dir, "documents", "delete", "--filter", '{"lang": "en"}', *lib)
    assert (code, out) == (1, "")
    assert "pass --yes" in err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or next(answers))
    assert _run(capsys, data_dir, "documents", "delete", "--filter", '{"lang": "en"}', *lib)[0] == 1
    assert asked == ["delete 1 document from 'lib' (report.pdf)? [y/N] "]
    assert _run(capsys, data_dir, "documents", "show", "report.pdf", *lib)[0] == 0
    code, out, _ = _run(capsys, data_dir, "documents", "delete", "--filter", '{"lang": "en"}', *lib, "--json")
    assert code == 0
    assert json.loads(out) == {
        "collection": "lib", "ids": ["report.pdf"], "count": 1, "dry_run": False, "object": "documents.deletion"
    }  # fmt: skip
    assert _run(capsys, data_dir, "documents", "show", "report.pdf", *lib)[0] == 1
    # an id or a filter, not both nor neither; the by-id delete takes no --yes
    for args in ((), ("scan", "--filter", '{"a": 1}'), ("scan", "--yes")):
        code, _, err = _run(capsys, data_dir, "documents", "delete", *args, *lib)
        assert code == 2, args
        assert err.startswith("error: "), err
