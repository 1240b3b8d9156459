"""``bench.scan_speed`` runs end to end on a few pages, and a second run reuses the collections it built."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scan_speed import main


def test_scan_speed_builds_then_reuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data-dir", str(tmp_path), "--pages", "12", "--ld", "16", "--queries", "2", "--repeats", "1"]
    assert main([*args, "--codecs", "int8,binary"]) == 0
    first = capsys.readouterr().out
    assert "int8     exhaustive" in first
    assert "binary   rerank" in first
    assert main([*args, "--codecs", "int8", "--tree", str(Path(__file__).resolve().parents[1])]) == 0
    again = capsys.readouterr().out
    digests = {line.split()[1]: line.split()[-1] for line in first.splitlines() if line.startswith("int8")}
    assert {line.split()[1]: line.split()[-1] for line in again.splitlines() if line.startswith("int8")} == digests
