"""App lifecycle in-process: 503 while the model loads, ready after warm-up; load errors and --tiny."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.engine.loading import TINY_WARNING, ModelLoadError, ModelSource, load_encoder
from service.engine.runtime import model_source
from service.http.app import create_app
from service.settings import Settings


def test_503_until_the_model_is_loaded_and_warm(tmp_path: Path, tiny_encoder: Any) -> None:
    gate = threading.Event()

    def slow_loader(_: ModelSource) -> Any:
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
    def broken_loader(_: ModelSource) -> Any:
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
        load_encoder(model_source(settings))
    message = str(info.value)
    assert "--model /path/to/jina-embeddings-v4" in message
    assert "hf download" in message
    assert "--tiny" in message


def test_tiny_option_builds_the_checkpoint_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jev4.loading"):
        encoder = load_encoder(model_source(Settings(tiny=True, data_dir=tmp_path)))
    assert (tmp_path / "tiny-checkpoint" / "config.json").is_file()
    assert TINY_WARNING in caplog.text
    assert "NO meaning" in TINY_WARNING
    assert encoder.info.multivector_dim > 0


def test_cuda_graphs_are_captured_in_the_warm_up_before_ready(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """JEV4_CUDA_GRAPHS=1: on a CPU device the load says in the log that it runs eager; with a capture that runs on
    any device (the tests' stand-in for a GPU's), the warm-up captures every bucket before ``/ready`` and requests
    afterwards replay them without capturing again."""
    from model.graphs import EagerCapture

    used: list[int] = []
    loaded: list[Any] = []

    def loader(source: ModelSource) -> Any:
        encoder = load_encoder(source)
        loaded.append(encoder)
        assert encoder.network.graphs is None  # a CPU device: no CUDA graphs (the warning below)
        runner = encoder.network.enable_graphs(EagerCapture())
        run = runner.run

        def counting(static: Any, tokens: int) -> Any:
            used.append(tokens)
            return run(static, tokens)

        runner.run = counting  # type: ignore[method-assign]
        return encoder

    settings = Settings(tiny=True, cuda_graphs=True, cuda_graph_max_tokens=128, data_dir=tmp_path)
    with caplog.at_level(logging.INFO), TestClient(create_app(settings, loader=loader)) as client:
        deadline = time.monotonic() + 120
        while (ready := client.get("/ready")).status_code != 200:
            assert "failed" not in ready.json()["status"], ready.json()
            assert time.monotonic() < deadline, "model never became ready"
            time.sleep(0.05)
        graphs = loaded[0].network.graphs
        assert graphs.captured == (64, 128)  # by the warm-up, before /ready
        response = client.post(
            "/v1/embeddings", json={"input": ["a short query", "another one"], "task": "retrieval.query"}
        )
        assert response.status_code == 200, response.text
    assert "but the model runs on cpu" in caplog.text
    assert "captured 2 CUDA graphs (token buckets (64, 128))" in caplog.text
    assert used  # the request went through a graph
    assert graphs.captures == 2  # and captured nothing more


@pytest.mark.slow
def test_compile_runs_in_the_warm_up_before_ready(tmp_path: Path) -> None:
    """JEV4_COMPILE=1: the compiled kernels are compiled by the warm-up (after the load, before ``/ready``), and
    requests after ``/ready`` (texts, an image of another size, both) compile nothing more."""
    import torch._dynamo
    import torch._dynamo.utils as dynamo_utils

    from tests.service.helpers import b64, png_bytes

    def graphs() -> int:
        return int(dynamo_utils.counters["stats"]["unique_graphs"])

    torch._dynamo.reset()  # as a fresh process: kernels compiled by earlier tests must compile again
    seen: dict[str, int] = {"start": graphs()}

    def loader(source: ModelSource) -> Any:
        encoder = load_encoder(source)
        seen["loaded"] = graphs()
        return encoder

    settings = Settings(tiny=True, compile=True, data_dir=tmp_path)
    with TestClient(create_app(settings, loader=loader)) as client:
        deadline = time.monotonic() + 1200  # a cold compile on a loaded 2-core machine takes minutes
        while (ready := client.get("/ready")).status_code != 200:
            assert "failed" not in ready.json()["status"], ready.json()
            assert time.monotonic() < deadline, "model never became ready"
            time.sleep(0.2)
        seen["ready"] = graphs()
        bodies = [
            {"input": ["a query about kernels", "a much longer passage " * 30]},
            {"input": [{"image": b64(png_bytes(150, 90, seed=3))}]},
            {"input": ["mixed", {"image": b64(png_bytes(70, 200, seed=4))}], "return_multivector": True},
        ]
        for body in bodies:
            response = client.post("/v1/embeddings", json=body)
            assert response.status_code == 200, response.text
    assert seen["loaded"] == seen["start"]  # loading compiles nothing (torch.compile is lazy)
    assert seen["ready"] - seen["loaded"] >= 5  # norm, add+norm, both rotaries, SiLU·up: compiled in the warm-up
    assert graphs() == seen["ready"]  # nothing compiled after /ready
