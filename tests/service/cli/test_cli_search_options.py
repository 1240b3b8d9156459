"""``search --candidates N --first-stage S``: the request's options (the API's ``candidates`` / ``first_stage``),
checked once as the route checks its body (:class:`SearchRequest`), before a model loads or a server is asked, and
sent to a server given by ``--url`` (``--first-stage`` was the process's ``JEV4_FIRST_STAGE`` flag, refused with
``--url``; that setting still applies through the environment)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import service.cli.remote as remote
from service.__main__ import build_parser, main
from service.cli.search import _request
from service.collections.search_schemas import MAX_CANDIDATES


def test_the_flags_become_the_requests_options() -> None:
    parse = build_parser().parse_args
    asked = _request(parse(["search", "q", "--collection", "c", "--candidates", "800", "--first-stage", "pooled_ivf"]))
    assert (asked.candidates, asked.first_stage) == (800, "pooled_ivf")
    plain = _request(parse(["search", "q", "--collection", "c"]))
    assert (plain.candidates, plain.first_stage) == (None, None)  # the defaults of whoever answers
    with pytest.raises(SystemExit):
        parse(["search", "q", "--collection", "c", "--first-stage", "plaid"])


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("candidates", [0, MAX_CANDIDATES + 1])
@pytest.mark.parametrize("where", ["local", "remote"])
def test_candidates_out_of_range_stop_before_the_model_or_the_server(
    candidates: int, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.engine.loading as loading

    def never(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the model was loaded for a request that is refused")

    monkeypatch.setattr(loading, "load_encoder", never)
    door = ["--data-dir", str(tmp_path), "--tiny"] if where == "local" else ["--url", "http://127.0.0.1:9"]
    code = main(["search", "q", "--collection", "c", "--candidates", str(candidates), *door])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: invalid search: "), err  # not "no server answers": nothing was sent
    assert "candidates" in err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("clean_env")
def test_a_remote_search_sends_them(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from service.client import AsyncClient

    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        usage = {"total_tokens": 1, "prompt_tokens": 1}
        return httpx.Response(200, json={"model": "m", "collection": "c", "usage": usage, "results": []})

    @asynccontextmanager
    async def recorded(server: remote.Server) -> AsyncIterator[remote.RemoteCollections]:
        async with AsyncClient(server.url, "k", transport=httpx.MockTransport(answer)) as client:
            yield remote.RemoteCollections(client)

    monkeypatch.setattr(remote, "open_remote", recorded)
    flags = ["--candidates", "800", "--first-stage", "pooled_ivf", "--url", "http://server.test"]
    assert main(["search", "q", "--collection", "c", *flags]) == 0, capsys.readouterr().err
    assert main(["search", "q", "--collection", "c", "--url", "http://server.test"]) == 0
    asked, plain = sent
    assert (asked["candidates"], asked["first_stage"]) == (800, "pooled_ivf")
    assert (plain.get("candidates"), plain.get("first_stage")) == (None, None)
