"""App lifecycle in-process: 503 while the model loads, ready after warm-up; load errors and --tiny."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.engine.loading import TINY_WARNING, ModelLoadError, load_encoder
from service.http.app import create_app
from service.settings import Settings


def test_503_until_the_model_is_loaded_and_warm(tmp_path: Path, tiny_encoder: Any) -> None:
    gate = threading.Event()

    def slow_loader(_: Settings) -> Any:
        gate.wait(30)
        return tiny_encoder

    app = create_app(Settings(data_dir=tmp_path), loader=slow_loader)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # live while loading
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "loading"
        response = client.post("/v1/embeddings", json={"input": "too early"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_ready"
        gate.set()
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "model never became ready"
            time.sleep(0.05)
        assert client.post("/v1/embeddings", json={"input": "now"}).status_code == 200


def test_failed_load_keeps_503_with_the_reason(tmp_path: Path) -> None:
    def broken_loader(_: Settings) -> Any:
        raise ModelLoadError("no weights here")

    with TestClient(create_app(Settings(data_dir=tmp_path), loader=broken_loader)) as client:
        deadline = time.monotonic() + 10
        while "failed" not in client.get("/ready").json()["status"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "no weights here" in client.get("/ready").json()["status"]
        assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 503


def test_missing_checkpoint_error_says_how_to_use_a_local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(model="jinaai/jina-embeddings-v4", data_dir=tmp_path)
    with pytest.raises(ModelLoadError) as info:
        load_encoder(settings)
    message = str(info.value)
    assert "--model /path/to/jina-embeddings-v4" in message
    assert "hf download" in message
    assert "--tiny" in message


def test_tiny_option_builds_the_checkpoint_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jev4.loading"):
        encoder = load_encoder(Settings(tiny=True, data_dir=tmp_path))
    assert (tmp_path / "tiny-checkpoint" / "config.json").is_file()
    assert TINY_WARNING in caplog.text
    assert "NO meaning" in TINY_WARNING
    assert encoder.info.multivector_dim > 0
