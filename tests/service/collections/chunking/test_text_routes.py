"""Text and code documents over HTTP (in-process app, tiny checkpoint) and through the CLI: task per collection,
multipart and JSON uploads, chunk hits, the one-kind rule, every bad-input answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.__main__ import main
from service.http.app import create_app
from service.settings import Settings
from tests.service.collections.chunking.conftest import DATA
from tests.service.helpers import b64, png_bytes
from tests.service.helpers import error_message as _error


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Any) -> Iterator[TestClient[Any]]:
    # small late-chunking windows: the 1-million-character line below runs in ~1 s windows on this CPU
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        max_text_bytes=2_000_000,
        late_chunk_window_tokens=1024,
        late_chunk_overlap_tokens=128,
        ui=False,
    )
    with TestClient(create_app(settings, encoder=tiny_encoder)) as c:
        deadline = time.monotonic() + 120
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield c


def test_code_collection_upload_and_search(client: TestClient[Any]) -> None:
    created = client.post("/v1/collections", json={"name": "code", "task": "code"})
    assert created.status_code == 201, created.text
    assert (created.json()["task"], created.json()["unit_kind"]) == ("code", "chunk")
    files = {"file": ("sample.go", (DATA / "sample.go").read_bytes(), "application/octet-stream")}
    go = client.post("/v1/collections/code/documents", files=files, data={"path": "store/sample.go"})
    assert go.status_code == 201, go.text
    # the id is the path (as the CLI names files); ``source`` is the uploaded file's name, as for pages
    assert go.json()["id"] == "store_sample.go"
    assert go.json()["metadata"] == {"source": "sample.go", "path": "store/sample.go", "language": "go"}
    readme = {"text": (DATA / "guide.md").read_text(), "path": "docs/guide.md", "document_id": "guide"}
    md = client.post("/v1/collections/code/documents", json=readme)
    assert md.status_code == 201, md.text
    assert md.json()["pages"] == 4  # four sections
    found = client.post("/v1/collections/code/search", json={"query": "value of key", "top_k": 20, "exhaustive": True})
    assert found.status_code == 200, found.text
    hits = found.json()["results"]
    assert len(hits) == 8
    assert {h["kind"] for h in hits} == {"chunk"}
    # a chunk hit names its ``unit`` (0-based, as the docs show), not a ``page``
    assert all("page" not in h and isinstance(h["unit"], int) for h in hits)
    assert {h["unit"] for h in hits if h["document_id"] == "guide"} == {0, 1, 2, 3}
    get = next(h for h in hits if h["chunk"].get("name") == "Store.Get")
    assert get["chunk"]["lines"] == [10, 17]
    assert get["chunk"]["chunk_kind"] == "method"
    assert get["chunk"]["path"] == "store/sample.go"
    assert get["chunk"]["text"].startswith("// Get returns the value of key.")
    section = next(h for h in hits if h["chunk"].get("name") == "From source")
    assert section["chunk"]["language"] == "markdown"
    filtered = client.post("/v1/collections/code/search", json={"query": "x", "filter": {"language": "markdown"}})
    assert {h["document_id"] for h in filtered.json()["results"]} == {"guide"}
    unnamed = client.post("/v1/collections/code/documents", json={"text": "def f():\n    pass\n", "path": "a/b.py"})
    assert unnamed.status_code == 201, unnamed.text
    assert (unnamed.json()["id"], unnamed.json()["metadata"]) == ("a_b.py", {"path": "a/b.py", "language": "python"})


def test_search_reads_no_hit_again(client: TestClient[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit carries its unit's text and metadata from the search's own read: the answer (chunk info, text,
    highlights) reads no unit again. Before: one ``get_unit`` per hit for ``chunk``, one more for text."""
    from colbert.local import LocalStore

    reads: list[tuple[str, int]] = []
    real = LocalStore.get_unit
    monkeypatch.setattr(LocalStore, "get_unit", lambda self, d, u: reads.append((d, u)) or real(self, d, u))
    body = {"query": "value of key", "top_k": 5, "include_text": True, "highlight": True}
    found = client.post("/v1/collections/code/search", json=body)
    assert found.status_code == 200, found.text
    hits = found.json()["results"]
    assert len(hits) == 5
    assert all(h["chunk"]["text"] and h["text"] == h["chunk"]["text"] for h in hits)
    assert reads == []


def test_an_identifier_query_finds_its_definition_first(client: TestClient[Any]) -> None:
    """Issue 25: callers and re-exports that repeat an identifier outrank its definition on BM25 and MaxSim; a
    query that is one identifier now ranks the chunk defining it first (colbert.definitions)."""
    assert client.post("/v1/collections", json={"name": "defs", "task": "code"}).status_code == 201
    files = {
        "pkg/__init__.py": "from pkg.util import get_app_dir\n\n__all__ = ['get_app_dir', 'get_app_dir_alias']\n"
        "get_app_dir_alias = get_app_dir\n",
        "pkg/util.py": "def get_app_dir(name):\n    return '/tmp/' + name\n\n\n"
        "def use():\n    a = get_app_dir('a')\n    b = get_app_dir('b')\n    return get_app_dir(a + b)\n",
    }
    for path, text in files.items():
        added = client.post("/v1/collections/defs/documents", json={"text": text, "path": path})
        assert added.status_code == 201, added.text
    for mode in ("text", "hybrid"):
        found = client.post("/v1/collections/defs/search", json={"query": "get_app_dir", "top_k": 3, "mode": mode})
        assert found.status_code == 200, found.text
        top = found.json()["results"][0]
        assert (top["document_id"], top["chunk"]["name"]) == ("pkg_util.py", "get_app_dir"), found.json()
        assert "definition" in top["signals"]


def test_pages_and_chunks_do_not_mix(client: TestClient[Any]) -> None:
    assert client.post("/v1/collections", json={"name": "pages"}).status_code == 201
    # code (Markdown and plain text become pages in a page collection: converters/test_web.py)
    text = client.post("/v1/collections/pages/documents", json={"text": "x = 1\n", "path": "a.py"})
    assert "unit_kind" in _error(text, 409, "mixed_units")
    assert client.post("/v1/collections", json={"name": "notes", "unit_kind": "chunk"}).status_code == 201

    image = client.post("/v1/collections/notes/documents", json={"image": b64(png_bytes(64, 64, seed=1))})
    _error(image, 409, "mixed_units")


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"file": ("tool.py", b"\x7fELF\x02\x00\x00", "application/octet-stream")}, 415, "binary_content", "binary"),
        ({"file": ("big.py", b"x = 1\n" * 400_000, "text/plain")}, 413, "text_too_large", "JEV4_MAX_TEXT_BYTES"),
        ({"file": ("data.bin", b"\x00\x01binary", "text/plain"), "language": "text"}, 415, "binary_content", "NUL"),
        ({"file": ("notes.weird", b"hi", "text/plain"), "language": "klingon"}, 422, "unknown_language", "one of"),
        ({"file": ("empty.md", b"\n\n", "text/plain")}, 422, "empty_input", "no text"),
    ],
)
def test_bad_text_uploads(client: TestClient[Any], body: dict[str, Any], status: int, code: str, words: str) -> None:
    client.post("/v1/collections", json={"name": "bad", "task": "code"})
    files = {"file": body.pop("file")}
    response = client.post("/v1/collections/bad/documents", files=files, data={**body, "document_id": "x"})
    assert words in _error(response, status, code)
    assert client.get("/v1/collections/bad/documents/x").status_code == 404  # nothing half-indexed


def _documents(client: TestClient[Any], name: str) -> tuple[int, int]:
    got = client.get(f"/v1/collections/{name}").json()
    return got["documents"], got["pages"]


def test_bad_input_over_http(client: TestClient[Any]) -> None:
    """Issue 16's bad-input list, each over HTTP: a clear 4xx (or a said decode), never a 500, nothing half-indexed."""
    assert client.post("/v1/collections", json={"name": "edge", "task": "code"}).status_code == 201
    url = "/v1/collections/edge/documents"
    # a binary file uploaded as text (its name says Python): 415, nothing stored
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64
    _error(client.post(url, files={"file": ("tool.py", elf, "application/octet-stream")}), 415, "binary_content")
    # a 50 MB file: 413 naming the setting (JEV4_MAX_TEXT_BYTES, here 2 MB), by multipart and as JSON
    big = b"print('x')\n" * (50 * 1024 * 1024 // 11)
    too_large = _error(client.post(url, files={"file": ("big.py", big, "text/plain")}), 413, "text_too_large")
    assert "JEV4_MAX_TEXT_BYTES" in too_large
    as_json = client.post(url, json={"text": big.decode(), "path": "big.py"})
    assert "JEV4_MAX_TEXT_BYTES" in _error(as_json, 413, "text_too_large")
    # an unknown extension: 415 saying how to send it (a known extension or "language"); JSON says the same
    unknown = _error(
        client.post(url, files={"file": ("notes.weird", b"plain words", "text/plain")}), 415, "invalid_image"
    )
    assert '"language"' in unknown
    assert "language" in _error(client.post(url, json={"text": "x", "path": "a.weird"}), 415, "unknown_language")
    assert _documents(client, "edge") == (0, 0)  # nothing half-indexed
    # invalid UTF-8 (Latin-1 comments): decoded with U+FFFD and said so in the answer (encoding_errors)
    latin = "# caf\u00e9 cr\u00e8me\ndef brew():\n    return 1\n".encode("latin-1")
    decoded = client.post(url, files={"file": ("brew.py", latin, "text/plain")})
    assert decoded.status_code == 201, decoded.text
    assert decoded.json()["metadata"]["encoding_errors"] == 2
    hits = client.post("/v1/collections/edge/search", json={"query": "brew", "mode": "text"}).json()["results"]
    assert hits[0]["chunk"]["text"].startswith("# caf\ufffd cr\ufffdme")
    # one line of 1 million characters (generated data in a string literal): indexed, cut at token boundaries
    line = 'BLOB = "' + "x" * (1_000_000 - 9) + '"'
    assert len(line) == 1_000_000
    minified = client.post(url, json={"text": line + "\n", "path": "gen/blob.py", "document_id": "blob"})
    assert minified.status_code == 201, minified.text
    chunks = minified.json()["pages"]
    assert chunks > 10
    assert _documents(client, "edge") == (2, chunks + decoded.json()["pages"])


def test_json_text_needs_a_path_or_language(client: TestClient[Any]) -> None:
    client.post("/v1/collections", json={"name": "bad2", "task": "code"})
    response = client.post("/v1/collections/bad2/documents", json={"text": "print(1)"})
    assert "path" in _error(response, 422, "invalid_input")
    unknown = client.post("/v1/collections/bad2/documents", json={"text": "print(1)", "path": "run.zz"})
    assert "language" in _error(unknown, 415, "unknown_language")
    latin = client.post("/v1/collections/bad2/documents", json={"text": "x = 1", "language": "python"})
    assert latin.status_code == 201, latin.text


def test_cli_indexes_a_repository_incrementally(
    tmp_path: Path, service_checkpoint: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "gen.py").write_text("def generated():\n    pass\n")
    (repo / "pkg" / "sample.py").write_bytes((DATA / "sample.py").read_bytes())
    (repo / "README.md").write_bytes((DATA / "guide.md").read_bytes())
    common = ["--collection", "code", "--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data")]
    assert main(["index", str(repo), *common, "--task", "code", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "2 indexed" in err
    assert "1 ignored" in err
    capsys.readouterr()
    assert main(["search", "encode one text", *common, "--json", "--top-k", "20", "--exhaustive"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 9  # 5 chunks of sample.py, 4 sections of README.md
    method = next(h for h in hits if h["chunk"].get("name") == "Encoder.encode_text")
    assert (method["document_id"], method["chunk"]["lines"]) == ("pkg_sample.py", [14, 17])
    # again: unchanged files are skipped; a changed file is replaced; --prune drops a deleted one
    (repo / "pkg" / "sample.py").write_text((DATA / "sample.py").read_text().replace("make_encoder", "new_encoder"))
    (repo / "README.md").unlink()
    assert main(["index", str(repo), *common, "--no-progress", "--prune"]) == 0
    err = capsys.readouterr().err
    assert "1 indexed" in err
    assert "1 deleted" in err
    assert main(["search", "encoder", *common, "--json", "--top-k", "20", "--exhaustive"]) == 0
    names = {json.loads(line)["chunk"].get("name") for line in capsys.readouterr().out.splitlines()}
    assert "new_encoder" in names
    assert "make_encoder" not in names
    assert "From source" not in names
