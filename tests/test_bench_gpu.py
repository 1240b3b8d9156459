"""``bench/gpu.py`` releases each contestant before the next one loads (its peak memory is its own)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bench.gpu
from bench._worker import Output


class _Fake:
    """A contestant that embeds nothing; the bench only needs its outputs' shapes."""

    def __init__(self, name: str, alive: list[weakref.ref[Any]]) -> None:
        self.name = name
        # the bench must have dropped every earlier contestant by now (else its memory counts in this one's peak)
        gc.collect()
        self.earlier_alive = [ref() is not None for ref in alive]
        alive.append(weakref.ref(self))

    def _out(self, n: int) -> Output:
        return Output(np.ones((n, 4), np.float32), [np.ones((2, 4), np.float32)] * n, 2 * n)

    def texts(self, rows: list[Any], workload: str) -> Output:
        return self._out(len(rows))

    def pages(self, images: list[Any]) -> Output:
        return self._out(len(images))

    def _embed(self, items: list[Any]) -> Output:
        return self._out(len(items))


def test_each_contestant_is_released_before_the_next_loads(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive: list[weakref.ref[Any]] = []
    flags: list[list[bool]] = []  # per contestant: which earlier ones were still alive when it loaded

    def contestant(name: str, args: Any) -> _Fake:
        fake = _Fake(name, alive)
        flags.append(fake.earlier_alive)
        return fake

    monkeypatch.setattr(bench.gpu, "_contestant", contestant)
    monkeypatch.setattr(bench.gpu, "build_checkpoint", lambda config, directory, device: (tiny_checkpoint, 0.0))
    monkeypatch.setattr(bench.gpu, "gpu_matmul_rate", lambda dtype: 1e12)
    profile = tmp_path / "profile"
    argv = ["--config", "tiny", "--pages", "1", "--queries", "2", "--repeats", "1", "--work-dir", str(tmp_path)]
    argv += ["--contestants", "ours,colqwen2.5,reference-style", "--profile", str(profile)]
    assert bench.gpu.main(argv) == 0
    assert flags == [[], [False], [False, False]]
    assert "===== ours queries" in (profile / "profile-bfloat16.txt").read_text()


def test_ratios_and_goals_of_the_variants() -> None:
    def row(workload: str, name: str, rate: float) -> list[Any]:
        return [workload, name, "end to end", 8, 1.0, 1.0, rate]

    rows = [row("queries", "ours", 10.0), row("queries", "ours-graphs", 33.0), row("queries", "colqwen2.5", 20.0)]
    rows += [row("passages", "ours", 50.0), row("passages", "colqwen2.5", 20.0), row("pages", "ours", 40.0)]
    ratios = {r[1]: r[2] for r in bench.gpu._ratios(rows, ["queries"])}
    assert ratios == {"ours / colqwen2.5": 0.5, "ours-graphs / colqwen2.5": 1.65, "ours-graphs / ours": 3.3}
    goals = {(g[0], g[1]): g[4] for g in bench.gpu._goals(rows)}
    assert goals == {
        ("queries ≥ 1.5× colqwen2.5", "ours"): False,
        ("queries ≥ 1.5× colqwen2.5", "ours-graphs"): True,
        ("passages ≥ 2.0× colqwen2.5", "ours"): True,
        ("pages ≥ 35 pages/s", "ours"): True,
    }


def test_graphs_contestant_dry_run_on_cpu(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ours-graphs`` loads and runs the queries on a machine without CUDA (eager, and says so)."""
    monkeypatch.setattr(bench.gpu, "build_checkpoint", lambda config, directory, device: (tiny_checkpoint, 0.0))
    monkeypatch.setattr(bench.gpu, "gpu_matmul_rate", lambda dtype: 1e12)
    argv = ["--config", "tiny", "--dtype", "float32", "--queries", "4", "--repeats", "1", "--work-dir", str(tmp_path)]
    argv += ["--contestants", "ours,ours-graphs", "--workloads", "queries,passages", "--json", str(tmp_path / "r.json")]
    assert bench.gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert "ours-graphs: no CUDA device, CUDA graphs are off" in out
    assert "ours-graphs / ours" in out
    assert "ours-graphs passages" not in out  # queries only
