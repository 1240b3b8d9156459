"""The CLI tests' shared fixtures."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``JEV4_*`` variable of the machine running the tests reaches the CLI; the hub is never asked."""
    for name in list(os.environ):
        if name.startswith("JEV4_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
