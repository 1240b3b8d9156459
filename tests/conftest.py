"""Shared test configuration: slow/gpu markers and the tiny checkpoint (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One intra-op thread for torch and the OpenMP/BLAS pools, in this process and the ones it starts (CLI runs,
# writers; the test servers get JEV4_TORCH_THREADS=1), unless the caller set its own: the tiny checkpoint's
# tensors are small, and on cores shared with other work every parallel region of a small op waits for a thread
# that is not running — measured on 2 shared cores (load ~12): test_sketch + test_packing + test_invariance took
# 110 s with torch's default 2 threads, 28 s with 1.
_THREADS_CHOSEN = "OMP_NUM_THREADS" in os.environ
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    if not _THREADS_CHOSEN:
        import torch  # a plugin may have imported it before the variables above were set

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = os.environ.get("RUN_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="slow check: set RUN_SLOW=1 to run it")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none on this machine)")
    has_cuda = _has_cuda()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random checkpoint in the published layout, built once per test session."""
    from model.testing import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny")
