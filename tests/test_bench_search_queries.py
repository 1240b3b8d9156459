"""``bench/search_queries.py`` adds queries to a kept ``bench.search`` store and the measure phase reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import first_use, search, search_queries

FLAGS = ["--pages", "60", "--vectors", "48", "--topics", "6", "--edge-pages", "0", "--footprint-pages", "0"]
PLANS = ["--candidates", "20", "--pooled", "", "--pooled-grouped", "", "--ivf", "", "--exhaustive-max-pages", "0"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("search") / "data"
    search.main(["--phase", "build", "--data-dir", str(data), "--queries", "3", *FLAGS, *PLANS])
    return data


def test_new_queries_are_measured_beside_the_build_ones(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "more"
    search_queries.main(["--data-dir", str(built), "--out", str(out), "--queries", "2", "--check", "3"])
    saved = np.load(out / "truth.npz")
    assert saved["queries"].shape[0] == 5
    assert saved["truth"].shape == (5, 10)
    np.testing.assert_array_equal(saved["truth"][:3], np.load(built / "truth.npz")["truth"])
    capsys.readouterr()
    search.main(["--phase", "measure", "--data-dir", str(out), "--queries", "5", *FLAGS, *PLANS])
    printed = capsys.readouterr().out
    assert "dense first stage, 20 candidates" in printed
    assert "5 q)" in printed


def test_a_top_k_the_scan_does_not_repeat_stops_the_run(built: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "ours").symlink_to(built / "ours")
    (wrong / "build.json").write_text((built / "build.json").read_text())
    saved = dict(np.load(built / "truth.npz"))
    saved["truth"] = saved["truth"].copy()
    saved["truth"][0, 0] = 59 if saved["truth"][0, 0] != 59 else 58  # a page outside the true top-10
    np.savez(wrong / "truth.npz", **saved)
    with pytest.raises(SystemExit, match="is not the build's"):
        search_queries.main(["--data-dir", str(wrong), "--out", str(tmp_path / "o"), "--queries", "1", "--check", "1"])


def test_the_default_candidates_plan_and_a_process_s_first_use(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``default`` in a plan list asks the store's own count (colbert.search.default_candidates); bench.first_use
    opens the kept store and times its first and next searches."""
    plans = ["--candidates", "default", "--pooled-ivf", "default", *PLANS[2:]]
    search.main(["--phase", "measure", "--data-dir", str(built), "--queries", "3", *FLAGS, *plans])
    printed = capsys.readouterr().out
    assert "dense first stage, the default 200 candidates" in printed
    assert "pooled_ivf first stage, the default 200 candidates" in printed
    first_use.main(["--store", str(built / "ours"), "--once"])
    line = capsys.readouterr().out
    assert line.startswith("pooled_ivf: open ")
    assert "first search" in line
