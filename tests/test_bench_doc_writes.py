"""``bench/doc_writes.py`` runs end to end on a small collection, and a kept fill is reused by the next run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import doc_writes


def test_doc_writes_runs_and_reuses_a_kept_fill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--pages", "40", "--tokens", "64", "--plans", "binary:dense", "--distinct", "2", "--repeats", "1"]
    doc_writes.main([*argv, "--keep", str(tmp_path)])
    first = capsys.readouterr().out
    assert "pages/s)" in first
    assert "= encoding its pages" in first
    doc_writes.main([*argv, "--keep", str(tmp_path)])
    second = capsys.readouterr().out
    assert "bulk fill reused" in second
    assert "delete" in second


def test_doc_writes_refuses_an_unfinished_fill(tmp_path: Path) -> None:
    (tmp_path / "binary-dense-40").mkdir()
    with pytest.raises(SystemExit, match="unfinished fill"):
        doc_writes.main(["--pages", "40", "--tokens", "64", "--plans", "binary:dense", "--keep", str(tmp_path)])
