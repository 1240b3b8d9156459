"""``bench.codec_speed`` runs end to end on a few pages (its survivors part had stopped working when the residual
codecs' API changed, unnoticed: nothing ran it)."""

from __future__ import annotations

import pytest

from bench.codec_speed import main


def test_codec_speed_runs_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--pages", "6", "--ld", "64", "--repeats", "1", "--k", "16", "--codecs", "binary,residual1"]
    assert main([*args, "--survivor-pages", "30", "--queries", "2", "--survivor-k", "3"]) in (0, None)
    out = capsys.readouterr().out
    assert "binary     fast-scan" in out
    assert "fast-scan pruning, top-3" in out
    assert "residual1  exhaustive" in out
