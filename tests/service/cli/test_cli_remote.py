"""``search``, ``index`` and ``documents`` over a running server (``--url`` / ``JEV4_URL``, ``--api-key`` /
``JEV4_API_KEY``): the session's live server; the same output and exit statuses as the same command run on the
server's data directory without ``--url`` (BM25 text search, so the scores are the same exactly)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from service.__main__ import main
from tests.service.conftest import LiveServer

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
QUERY = "Which region had the highest revenue?"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _remote(live: LiveServer) -> list[str]:
    return ["--url", live.url, "--api-key", live.api_key]


def _local(live: LiveServer) -> list[str]:
    """The same command without a server: on the server's data directory, loading its checkpoint."""
    return ["--data-dir", str(live.data_dir), "--model", str(live.checkpoint)]


@pytest.mark.usefixtures("clean_env")
def test_index_search_documents_over_url_print_what_the_local_commands_print(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    remote = _remote(live_server)
    pdf = str(SAMPLES / "report.pdf")
    code, _, err = _run(capsys, "index", pdf, "--collection", "cli-remote", "--no-progress", *remote)
    assert code == 0, err
    assert "created collection cli-remote" in err
    assert "1 indexed, 0 skipped (collection 'cli-remote')" in err
    code, _, err = _run(capsys, "index", pdf, "--collection", "cli-remote", "--no-progress", *remote)
    assert code == 0, err
    assert "skipped report.pdf: document 'report.pdf' exists (use --replace)" in err, err

    for extra in ([], ["--json"], ["--include-text"]):
        search = ["search", QUERY, "--collection", "cli-remote", "--mode", "text", *extra]
        code, over_http, _ = _run(capsys, *search, *remote)
        assert code == 0
        code_local, here, _ = _run(capsys, *search, *_local(live_server))
        assert (code_local, here) == (0, over_http)
    code, as_json, _ = _run(capsys, "search", QUERY, "--collection", "cli-remote", "--mode", "text", "--json", *remote)
    hits = [json.loads(line) for line in as_json.splitlines()]
    assert code == 0
    assert hits
    assert all(h["document_id"] == "report.pdf" for h in hits)

    for action in (["list"], ["show", "report.pdf"], ["list", "--json"]):
        command = ["documents", *action, "--collection", "cli-remote"]
        over_http = _run(capsys, *command, *remote)
        assert over_http[0] == 0
        assert "report.pdf" in over_http[1]
        assert _run(capsys, *command, "--data-dir", str(live_server.data_dir)) == over_http
    code, out, _ = _run(capsys, "documents", "delete", "report.pdf", "--collection", "cli-remote", *remote)
    assert code == 0
    assert out.strip() == "deleted document report.pdf from cli-remote"


@pytest.mark.usefixtures("clean_env")
def test_index_text_over_url_and_search_its_chunks(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "stats.py").write_text("def total(xs):\n    return sum(xs)\n\n\ndef mean(xs):\n    return 0\n")
    (repo / "README.md").write_text("# Stats\n\nTotals and means of lists.\n")
    remote = _remote(live_server)
    code, _, err = _run(capsys, "index", str(repo), "--collection", "cli-remote-code", "--task", "code", *remote)
    assert code == 0, err
    assert "'cli-remote-code': 2 indexed" in err, err
    search = ["search", "total", "--collection", "cli-remote-code", "--mode", "text", "--top-k", "1"]
    code, out, _ = _run(capsys, *search, *remote)
    assert code == 0, out
    assert "pkg/stats.py:1-" in out, out
    assert _run(capsys, *search, *_local(live_server))[:2] == (0, out)


@pytest.mark.usefixtures("clean_env")
def test_errors_over_url_are_the_local_lines_and_statuses(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, docs: str
) -> None:
    remote = _remote(live_server)
    missing = ["search", QUERY, "--collection", "no-such-collection", "--mode", "text"]
    code, _, err = _run(capsys, *missing, *remote)
    assert (code, err) == (1, "error: no collection named 'no-such-collection'\n")
    assert _run(capsys, *missing, *_local(live_server))[::2] == (code, err)
    bad_filter = ["search", QUERY, "--collection", docs, "--filter", '{"year": {"$near": 1}}']
    code, _, err = _run(capsys, *bad_filter, "--mode", "text", *remote)  # refused by the server: a 422
    assert code == 2, err
    assert err.startswith("error: "), err
    assert "$near" in err, err
    assert err.count("\n") == 1, err
    no_cells = ["search", QUERY, "--collection", docs, "--first-stage", "pooled_ivf", "--candidates", "800"]
    code, _, err = _run(capsys, *no_cells, *remote)  # the request's option, sent (no longer a setting refused here)
    assert code == 2, err
    assert err.startswith("error: first_stage 'pooled_ivf' needs the collection's cells"), err
    assert _run(capsys, *no_cells, *_local(live_server))[::2] == (code, err)
    code, _, err = _run(capsys, "documents", "show", "nope", "--collection", "no-such-collection", *remote)
    assert (code, err) == (1, "error: no collection named 'no-such-collection'\n")

    code, _, err = _run(capsys, *missing, "--url", live_server.url, "--api-key", "wrong")
    assert code == 1, err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "key" in err.lower(), err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{s.getsockname()[1]}"
    code, _, err = _run(capsys, *missing, "--url", nobody)
    assert code == 2, err
    assert err.startswith(f"error: no server answers at {nobody} ("), err
    assert err.count("\n") == 1, err
    code, _, err = _run(capsys, *missing, "--tiny", *remote)
    assert code == 2, err
    assert err.startswith("error: --tiny is a setting of this process, not of the server at"), err


@pytest.mark.usefixtures("clean_env")
def test_jev4_url_and_jev4_api_key_name_the_server(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JEV4_URL", live_server.url)
    monkeypatch.setenv("JEV4_API_KEY", live_server.api_key)  # the client's key: not refused as a misspelt setting
    code, _out, err = _run(capsys, "search", QUERY, "--collection", "no-such-collection")
    assert (code, err) == (1, "error: no collection named 'no-such-collection'\n")
    monkeypatch.setenv("JEV4_API_KEY", "wrong")
    code, _, err = _run(capsys, "documents", "list", "--collection", "no-such-collection")
    assert code == 1, err
    assert "key" in err.lower(), err
