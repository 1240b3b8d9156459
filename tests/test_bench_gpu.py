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
