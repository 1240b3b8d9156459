"""``bench.bulk_load``'s one-command comparison (``--against``): every tree × threads × codec run once per round."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bulk_load

ROOT = Path(__file__).resolve().parent.parent


def test_workers_list_needs_against() -> None:
    with pytest.raises(SystemExit) as exc:
        bulk_load.main(["--pages", "10", "--codecs", "binary", "--batch-docs", "1", "--workers", "0,1"])
    assert exc.value.code == 2


def test_against_runs_each_tree_threads_and_codec(capsys: pytest.CaptureFixture[str]) -> None:
    small = ["--pages", "12", "--vectors", "40", "--dim", "16", "--pages-per-doc", "3", "--codecs", "binary"]
    bulk_load.main([*small, "--batch-docs", "2", "--workers", "0,1", "--against", str(ROOT)])
    table = capsys.readouterr().out.split("round  tree")[1].splitlines()[2:]
    cells = [line.split() for line in table]
    # this tree then the other (the same directory here), threads 0 then 1: 2 × 2 rows
    assert [(c[1] == "this", c[-6], c[-5]) for c in cells] == [
        (this, threads, "binary") for this in (True, False) for threads in ("0", "1")
    ]
    for c in cells:
        assert min(float(c[-4]), float(c[-3]), float(c[-2])) > 0  # pages/s, pages per CPU s, CPU/wall
        assert float(c[-1]) >= 0  # the load average
