"""``python -m service index|search`` in-process on the tiny checkpoint: files and folders, ids, skipping and
replacing, exit codes, and agreement with the HTTP search over the same data directory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.__main__ import main
from service.cli.files import collect_documents
from service.collections.page_walk import PageWalkReport
from service.http.app import create_app
from service.settings import Settings
from tests.ranking import assert_ranked
from tests.service.helpers import pdf_bytes, png_bytes

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


@pytest.fixture
def small_pages(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared ``clean_env`` (conftest) with a low DPI and a small image cap: the tiny model embeds few tokens
    per page."""
    monkeypatch.setenv("JEV4_PDF_DPI", "36")
    monkeypatch.setenv("JEV4_IMAGE_MAX_PIXELS", str(64 * 28 * 28))


def test_collect_documents_walks_folders_and_makes_ids(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "report.pdf").write_bytes(b"%PDF-")
    (root / "sub" / "scan 1.PNG").write_bytes(png_bytes())
    (root / "notes.txt").write_text("plain text becomes pages")
    (root / "setup.exe").write_bytes(b"MZ" + bytes(100))
    (root / "tool.py").write_text("print('code goes to a text collection')")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.pdf").write_bytes(b"%PDF-")  # never entered
    single = tmp_path / ".hidden.jpg"
    single.write_bytes(b"x")
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.pdf").write_bytes(b"%PDF-")
    report = PageWalkReport()
    found = collect_documents([root, single, other], report)
    assert [(f.document_id, f.source) for f in found] == [
        ("notes.txt", "notes.txt"),
        ("report.pdf", "report.pdf"),
        ("sub_scan_1.PNG", "sub/scan 1.PNG"),
        ("d.hidden.jpg", ".hidden.jpg"),  # a file named explicitly is tried whatever it holds
        ("report.pdf-2", "report.pdf"),
    ]
    assert report.summary(5) == (
        "5 indexed, 2 skipped: 1 × .exe (not a document), 1 × .py (code: index it into a text collection with --text)"
    )
    explicit = tmp_path / "notes.txt"
    explicit.write_text("a file named explicitly is taken whatever its suffix")
    assert [f.document_id for f in collect_documents([explicit])] == ["notes.txt"]
    with pytest.raises(FileNotFoundError):
        collect_documents([tmp_path / "missing"])


def _search_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["search", *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_index_then_search(
    tmp_path: Path,
    service_checkpoint: Path,
    small_pages: None,
    capsys: pytest.CaptureFixture[str],
    tiny_encoder: Any,
) -> None:
    data = tmp_path / "data"
    common = ["--collection", "demo", "--model", str(service_checkpoint), "--data-dir", str(data)]
    assert main(["index", str(SAMPLES), *common, "--codec", "float32", "--no-progress"]) == 0
    err = capsys.readouterr().err
    # report.pdf and dashboard.png; the scripts are code, the JSON requests no document
    assert "2 indexed, 20 skipped: " in err, err
    assert "5 × .sh (code: index it into a text collection with --text)" in err
    assert "12 × .json (data or configuration, not prose: name the file to index it as pages)" in err
    hits = _search_json(capsys, "quarterly revenue", *common, "--top-k", "10")
    assert sorted((h["document_id"], h["page"]) for h in hits) == [
        ("dashboard.png", 1),
        ("report.pdf", 1),
        ("report.pdf", 2),
        ("report.pdf", 3),
    ]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    report = next(h for h in hits if h["document_id"] == "report.pdf")
    assert report["metadata"] == {"source": "report.pdf", "kind": "pdf"}

    # again: both exist -> skipped, nothing changes; --replace re-indexes; filters work
    assert main(["index", str(SAMPLES / "report.pdf"), *common, "--no-progress"]) == 0
    assert "exists" in capsys.readouterr().err
    extra = ["--replace", "--pages", "1", "--metadata", '{"team": "finance"}', "--no-progress"]
    assert main(["index", str(SAMPLES / "report.pdf"), *common, *extra]) == 0
    hits = _search_json(capsys, "revenue", *common, "--filter", '{"team": "finance"}')
    assert [(h["document_id"], h["page"]) for h in hits] == [("report.pdf", 1)]

    # the server on the same data directory sees the same collection and ranks the same way
    settings = Settings(data_dir=data, pdf_dpi=36, image_max_pixels=64 * 28 * 28)
    with TestClient(create_app(settings, encoder=tiny_encoder)) as client:
        _wait_ready(client)
        served = client.post("/v1/collections/demo/search", json={"query": "quarterly revenue", "top_k": 10})
        cli_hits = _search_json(capsys, "quarterly revenue", *common, "--top-k", "10")
        cli_scores = {(h["document_id"], h["page"]): h["score"] for h in cli_hits}
        ours = [((h["document_id"], h["page"]), h["score"]) for h in served.json()["results"]]
        assert len(ours) == len(cli_hits)
        for key, score in ours:
            assert score == pytest.approx(cli_scores[key], abs=1e-5)
        assert_ranked([key for key, _ in ours], cli_scores, atol=1e-5)  # two encoders: near-ties in either order


def _wait_ready(client: TestClient[Any]) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_exit_codes(
    tmp_path: Path, service_checkpoint: Path, small_pages: None, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--collection", "codes", "--model", str(service_checkpoint), "--data-dir", str(tmp_path)]
    assert main(["index", str(tmp_path / "missing.pdf"), *common]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["search", "x", *common]) == 1  # no such collection: 404 -> 1, as every command
    assert "codes" in capsys.readouterr().err
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes())
    assert main(["index", str(broken), str(good), *common, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "failed broken.pdf" in err
    assert "1 indexed, 1 failed or refused, 0 skipped" in err
    long = tmp_path / "long.pdf"
    long.write_bytes(pdf_bytes(3))
    assert main(["index", str(long), *common, "--no-progress", "--pages", "7"]) == 1
    assert "page 7" in capsys.readouterr().err
    # the CLI streams pages in steps: its cap is JEV4_MAX_JOB_PDF_PAGES, not the synchronous JEV4_MAX_PDF_PAGES
    assert main(["index", str(long), *common, "--no-progress", "--max-pdf-pages", "2"]) == 0
    assert main(["index", str(long), *common, "--no-progress", "--replace", "--max-job-pdf-pages", "2"]) == 1
    assert "(JEV4_MAX_JOB_PDF_PAGES)" in capsys.readouterr().err
    assert main(["index", str(good), *common, "--dimensions", "7"]) == 2
