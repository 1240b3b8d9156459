"""``samples/``: the committed files are what ``make_samples.py`` makes, they stay small, and every example
request runs: the curl scripts (which send every ``requests/*.json``) are executed against the test server."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pymupdf
import pytest
from PIL import Image

from tests.service.conftest import LiveServer

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SCRIPTS = ["index.sh", "search.sh", "embed.sh", "code.sh"]


def _make_samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pdf_text(path: Path) -> list[str]:
    with pymupdf.open(path) as doc:
        return [page.get_text() for page in doc]


def test_generator_reproduces_the_committed_samples(tmp_path: Path) -> None:
    written = _make_samples().write_all(tmp_path)
    relative = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    committed = sorted(
        p.relative_to(SAMPLES).as_posix()
        for p in SAMPLES.rglob("*")
        if p.is_file() and (p.suffix in (".pdf", ".png", ".json") or p.parent.name == "code")
    )
    assert relative == committed
    # Text files are byte-identical; rendered files are compared by content (library versions may differ
    # in compression or font hinting).
    for name in relative:
        if name.endswith((".py", ".json")) and name != "requests/add_dashboard.json":
            assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
    assert _pdf_text(tmp_path / "report.pdf") == _pdf_text(SAMPLES / "report.pdf")
    assert len(_pdf_text(SAMPLES / "report.pdf")) == 3
    ours = np.asarray(Image.open(tmp_path / "dashboard.png"), dtype=np.float32)
    theirs = np.asarray(Image.open(SAMPLES / "dashboard.png"), dtype=np.float32)
    assert ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).mean()) < 2.0
    add = json.loads((SAMPLES / "requests" / "add_dashboard.json").read_text())
    prefix = "data:image/png;base64,"
    assert add["image"].startswith(prefix)
    assert base64.b64decode(add["image"][len(prefix) :]) == (SAMPLES / "dashboard.png").read_bytes()


def test_samples_are_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 300_000, total


def test_every_request_is_sent_by_a_script() -> None:
    scripts = "".join((SAMPLES / name).read_text() for name in SCRIPTS)
    for request in sorted((SAMPLES / "requests").glob("*.json")):
        assert f"requests/{request.name}" in scripts, f"{request.name} is not used by any sample script"


def _run(script: str, server: LiveServer) -> list[Any]:
    env = {**os.environ, "JEV4_URL": server.url, "JEV4_API_KEYS": server.api_key}
    done = subprocess.run(
        ["bash", str(SAMPLES / script)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the sample scripts use curl")
def test_scripts_run_against_the_server(live_server: LiveServer) -> None:
    indexed = _run("index.sh", live_server)
    collection = indexed[-1]
    assert collection["name"] == "samples"
    assert (collection["documents"], collection["pages"]) == (2, 4)
    job = next(o for o in indexed if o.get("object") == "indexing_job")
    assert job["document_id"] == "report"
    dashboard = next(o for o in indexed if o.get("id") == "dashboard")
    assert dashboard["pages"] == 1
    assert dashboard["metadata"] == {"kind": "screenshot", "title": "Support dashboard"}

    revenue, tickets, visual, text, hybrid = _run("search.sh", live_server)
    assert len(revenue["results"]) == 3
    assert {h["document_id"] for h in revenue["results"]} <= {"report", "dashboard"}
    (hit,) = tickets["results"]
    assert hit["document_id"] == "dashboard"
    assert hit["metadata"]["kind"] == "screenshot"
    assert base64.b64decode(hit["image"]).startswith(b"\x89PNG")
    grid = hit["similarity_map"]
    assert np.array(grid["maps"]).shape == (len(grid["tokens"]), grid["rows"], grid["cols"])
    assert len(visual["results"]) == 2
    assert all("text" not in h["signals"] for h in visual["results"])
    (margin,) = text["results"]  # only the report's first page says "operating margin"
    assert (margin["document_id"], margin["page"]) == ("report", 1)
    assert "operating margin" in margin["text"]
    assert {b["word"] for b in margin["highlights"]} >= {"operating", "margin."}
    best_text = [h for h in hybrid["results"] if h["signals"].get("text", {}).get("rank") == 1]
    assert [(h["document_id"], h["page"]) for h in best_text] == [("report", 2)]  # all four words on page 2
    assert all("maxsim" in h["signals"] for h in hybrid["results"])

    created, maxsim, readme, found = _run("code.sh", live_server)
    assert (created["task"], created["unit_kind"]) == ("code", "chunk")
    assert (maxsim["id"], maxsim["pages"]) == ("maxsim", 3)  # the module docstring + import, two functions
    assert maxsim["metadata"] == {"source": "maxsim.py", "path": "code/maxsim.py", "language": "python"}
    assert readme["pages"] == 2  # two Markdown sections
    assert len(found["results"]) == 3
    assert {h["kind"] for h in found["results"]} == {"chunk"}
    # the words of the query are in maxsim's docstring: the text side (BM25) ranks that function first
    (best,) = [h for h in found["results"] if h["signals"].get("text", {}).get("rank") == 1]
    chunk = best["chunk"]
    assert (chunk["path"], chunk["name"], chunk["chunk_kind"], chunk["lines"]) == (
        "code/maxsim.py",
        "maxsim",
        "function",
        [6, 12],
    )
    assert chunk["text"].startswith("def maxsim(")

    code, query = _run("embed.sh", live_server)
    assert len(code["data"]) == 1
    assert len(query["data"]) == 1
    assert len(code["data"][0]["embedding"]) == len(query["data"][0]["embedding"])
