"""``python -m service collections vacuum NAME --recode CODEC`` (issue 26): every document kept under the new
codec; an unknown codec is one line and exit 2, the collection unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.cli.test_cli_manage import PDF, _run, data_dir

__all__ = ["data_dir"]  # the fixture, shared with test_cli_manage


def test_vacuum_recode(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, _ = _run(capsys, data_dir, "documents", "list", "--collection", "lib", "--json")
    assert code == 0
    before = out
    code, out, _ = _run(capsys, data_dir, "collections", "vacuum", "lib", "--recode", "int8")
    assert code == 0, out
    assert out.startswith("lib: ")
    assert "recoded 3 documents from float16 to int8" in out
    assert json.loads(_run(capsys, data_dir, "collections", "show", "lib", "--json")[1])["codec"] == "int8"
    assert _run(capsys, data_dir, "documents", "list", "--collection", "lib", "--json")[1] == before
    target = data_dir / "kept.pdf"
    assert _run(capsys, data_dir, "documents", "get-file", "kept", "--collection", "lib", "-o", str(target))[0] == 0
    assert target.read_bytes() == PDF
    code, out, err = _run(capsys, data_dir, "collections", "vacuum", "lib", "--recode", "residual9")
    assert code == 2
    assert err.strip().startswith("error: unknown codec 'residual9'; expected one of")
    assert len(err.strip().splitlines()) == 1
    assert json.loads(_run(capsys, data_dir, "collections", "show", "lib", "--json")[1])["codec"] == "int8"
