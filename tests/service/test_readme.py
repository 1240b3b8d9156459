"""The README as a new user reads it: its marked code blocks run, its limits table is the server's, every
``JEV4_*`` name it (or the docs and scripts) mentions exists, and every file its code map names exists.

A block preceded by ``<!-- readme-test: python -->`` or ``<!-- readme-test: bash -->`` runs here from the
repository root (python blocks in order, in one namespace; the hub id replaced by the tiny checkpoint; ``--tiny``
commands find that checkpoint in a temporary data directory). ``<!-- readme-test: bash, needs the server -->``
blocks run against the test server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from service.flags import field_docs, markdown_table, settings_page, with_readme_table
from service.settings import CLIENT_VARIABLES, Settings, env_name
from tests.service.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
_BLOCK = re.compile(r"<!-- readme-test: (?P<kind>[a-z, ]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [m["code"] for m in _BLOCK.finditer(README) if m["kind"] == kind]


def test_the_readme_marks_its_runnable_blocks() -> None:
    assert len(_blocks("python")) >= 2
    assert len(_blocks("bash")) >= 1
    assert len(_blocks("bash, needs the server")) >= 1


def test_python_blocks_run(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "readme"}
    for code in _blocks("python"):
        exec(compile(code.replace("jinaai/jina-embeddings-v4", str(tiny_checkpoint)), "README.md", "exec"), namespace)
    hits = namespace["hits"]
    assert isinstance(hits, list)
    assert [(h.doc_id, h.unit) for h in hits] == [("dashboard", 1)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **extra)
    return env


def test_cli_blocks_run(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "tiny-checkpoint").symlink_to(tiny_checkpoint, target_is_directory=True)
    for code in _blocks("bash"):
        script = code.replace(".venv/bin/python", sys.executable)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=_env(JEV4_DATA_DIR=str(data), JEV4_PDF_DPI="36"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    assert "page" in result.stdout  # the search printed ranked pages


def test_http_blocks_run_against_the_server(live_server: LiveServer) -> None:
    for code in _blocks("bash, needs the server"):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=ROOT,
            env=_env(JEV4_URL=live_server.url, JEV4_API_KEYS=live_server.api_key),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]


def test_cli_and_http_samples_use_separate_collections() -> None:
    # the trap: both wrote into "samples", so the same files came back twice in its hits
    cli = set(re.findall(r"--collection (\S+)", "".join(_blocks("bash"))))
    http = set(re.findall(r"/v1/collections/([a-z0-9-]+)/", (ROOT / "samples" / "index.sh").read_text()))
    assert cli
    assert http
    assert not cli & http


def test_readme_limits_are_the_servers() -> None:
    assert markdown_table(("limits",)) in README
    assert with_readme_table(README) == README, "run: .venv/bin/python -m service.flags"
    assert (ROOT / "docs" / "settings.md").read_text() == settings_page(), "run: .venv/bin/python -m service.flags"
    # and the values are what a server started without configuration uses
    defaults, docs = Settings(), field_docs()
    for f in fields(Settings):
        if docs[f.name].section == "limits" and f.name.startswith("max_"):
            assert (
                f"| `{env_name(f.name)}` | `--{f.name.replace('_', '-')}` | `{getattr(defaults, f.name)}` |" in README
            )


def test_every_mentioned_variable_exists() -> None:
    known = {env_name(f.name) for f in fields(Settings)} | CLIENT_VARIABLES
    texts = [README, *(p.read_text() for p in (ROOT / "docs").glob("*.md"))]
    texts += [p.read_text() for p in (ROOT / "samples").glob("*.sh")] + [(ROOT / "scripts" / "setup.sh").read_text()]
    mentioned = {name.rstrip("_") for text in texts for name in re.findall(r"JEV4_[A-Z0-9_]+", text)}
    misspelt_on_purpose = {"JEV4_API_KEY"}  # the README's example of what start-up refuses
    assert mentioned - known - misspelt_on_purpose == set()


def test_the_licence_is_an_spdx_expression() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # a table here makes setuptools print a deprecation banner
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_every_path_in_the_code_map_exists() -> None:
    section = README.split("## Code map", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`((?:model|colbert|service|bench|tests|docs)/[\w./-]*)`", section))
    assert len(paths) > 40
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
