"""The CLI says what the API says: the same mistake gets the route's message (one line, exit 2, no traceback);
plus what a person sees: help texts, the line for a new collection, a busy port, Ctrl-C."""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.__main__ import build_parser, main
from service.http.app import create_app
from service.settings import Settings
from tests.service.helpers import png_bytes


@pytest.fixture
def clean_env(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared ``clean_env`` (conftest) with a small image cap: the tiny model embeds few tokens per page."""
    monkeypatch.setenv("JEV4_IMAGE_MAX_PIXELS", str(64 * 28 * 28))


def _api_error(client: TestClient[Any], body: dict[str, Any]) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answer = client.post("/v1/collections", json=body)
    return answer.status_code, answer.json()["error"]["message"]


def test_bad_codec_is_the_routes_message_in_one_line(
    tmp_path: Path, service_checkpoint: Path, clean_env: None, capsys: pytest.CaptureFixture[str], tiny_encoder: Any
) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(png_bytes())
    common = ["--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data"), "--no-progress"]
    assert main(["index", str(image), "--collection", "c", "--codec", "foo", *common]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    with TestClient(create_app(Settings(data_dir=tmp_path / "api"), encoder=tiny_encoder)) as client:
        status, message = _api_error(client, {"name": "c", "codec": "foo"})
    assert status == 422
    assert lines[0] == f"error: {message}"  # codec must be one of float32, float16, int8, binary, got 'foo'
    assert "got 'foo'" in lines[0]
    no_model = ["--model", str(tmp_path / "no-model"), "--data-dir", str(tmp_path / "data"), "--no-progress"]
    assert main(["index", str(image), "--collection", "c", "--codec", "foo", *no_model]) == 2
    assert capsys.readouterr().err.strip() == lines[0]  # told before the model loads (it could not load here)
    assert main(["collections", "list", "--data-dir", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out == ""  # nothing was created


def test_new_collection_prints_a_readable_line(
    tmp_path: Path, service_checkpoint: Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(png_bytes())
    common = ["--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data"), "--no-progress"]
    assert main(["index", str(image), "--collection", "pics", "--codec", "int8", *common]) == 0
    err = capsys.readouterr().err
    assert "created collection pics: dimensions 64, codec int8, pool factor 1, task retrieval, holds pages" in err
    assert "CollectionConfig(" not in err
    # the flags of a new collection must match an existing one (or be left out)
    assert main(["index", str(image), "--collection", "pics", "--codec", "binary", *common]) == 2
    assert "error: collection 'pics' exists: --codec binary (it has int8)" in capsys.readouterr().err


def _help(*command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    target = sub.choices[command[0]]
    for name in command[1:]:
        nested = next(a for a in target._actions if isinstance(a, argparse._SubParsersAction))
        target = nested.choices[name]
    return target.format_help()


def test_help_texts_say_what_the_commands_do() -> None:
    top = build_parser().format_help()
    assert "text and code" in top  # index: not only PDFs/images
    assert all(word in top for word in ("export", "import", "vacuum"))  # collections
    search = _help("search")
    assert search.count("[env") == 22  # the settings that matter to a search, not the server's ~50 (45 before)
    for unrelated in ("--port", "--api-keys", "--max-batch-tokens", "--max-pdf-pages", "--duplicate-policy"):
        assert unrelated not in search
    for needed in ("--model", "--tiny", "--data-dir", "--collection-backend", "--search-fusion", "--first-stage"):
        assert needed in search
    jobs = _help("jobs")
    assert "memory" not in jobs
    assert "stored" in jobs
    assert "--yes" in _help("collections", "delete")
    index = _help("index")
    assert all(flag in index for flag in ("--text", "--task", "--prune", "code"))


def test_busy_port_stops_before_the_model_loads(
    tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.engine.loading as loading

    def never(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the model was loaded although the port is busy")

    monkeypatch.setattr(loading, "load_encoder", never)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path), "--tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (another server?): stop it, or pass --port N (JEV4_PORT)"
    )


def test_ctrl_c_says_what_was_cancelled_and_how_to_resume(
    tmp_path: Path,
    service_checkpoint: Path,
    clean_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import service.cli.index_pages as pages

    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(3):
        (folder / f"p{n}.png").write_bytes(png_bytes(seed=n))
    real = pages._index_one

    async def interrupted(c: Any, args: Any, settings: Any, file: Any, bar: Any) -> str | None:
        if file.source == "p1.png":
            raise KeyboardInterrupt
        return await real(c, args, settings, file, bar)

    monkeypatch.setattr(pages, "_index_one", interrupted)
    common = ["--collection", "c", "--model", str(service_checkpoint), "--data-dir", str(tmp_path / "data")]
    assert main(["index", str(folder), *common, "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "cancelled while indexing p1.png into 'c' (1 of 3 files done; nothing of p1.png was stored)" in err
    assert "run the same command again: files already stored are skipped" in err
    monkeypatch.setattr(pages, "_index_one", real)
    assert main(["index", str(folder), *common, "--no-progress"]) == 0  # the resume: p0 skipped, p1 and p2 indexed
    err = capsys.readouterr().err
    assert "skipped p0.png: document 'p0.png' exists" in err
    assert "2 indexed, 1 already stored, 0 skipped (collection 'c')" in err


def test_an_invalid_search_is_refused_before_the_model_loads(
    tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.cli.session as session

    def never(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the model was loaded for a request that cannot run")

    monkeypatch.setattr(session, "open_collections", never)
    assert main(["search", "x", "--collection", "c", "--top-k", "0", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: invalid search: Expected `int` >= 1 - at `$.top_k`"
