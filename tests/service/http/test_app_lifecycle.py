"""App lifecycle in-process: 503 while the model loads, ready after warm-up; load errors and --tiny."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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


def _two_collections(data_dir: Path) -> None:
    from colbert.catalog import Catalog
    from colbert.quantize import Codec
    from colbert.store import CollectionConfig

    with Catalog(data_dir) as catalog:
        for name in ("big", "small"):
            catalog.create(name, CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32))


def _model_loading(loaded: threading.Event) -> Callable[[ModelSource], Any]:
    """A loader that loads nothing: it fails once ``loaded`` is set (these tests need no model)."""

    def loader(_: ModelSource) -> Any:
        loaded.wait(30)
        raise ModelLoadError("not needed here")

    return loader


def test_warm_collections_opens_them_while_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """JEV4_WARM_COLLECTIONS=1: every collection is opened (and searched once) in the background at start-up,
    before the model is even loaded; the requests then find it open."""
    from colbert.local.backend import LocalBackend

    _two_collections(tmp_path)
    opened: list[str] = []
    real = LocalBackend.open

    def counted(self: LocalBackend, name: str) -> Any:
        opened.append(name)
        return real(self, name)

    monkeypatch.setattr(LocalBackend, "open", counted)
    model = threading.Event()
    app = create_app(Settings(data_dir=tmp_path, warm_collections=True), loader=_model_loading(model))
    try:
        with caplog.at_level(logging.INFO, logger="jev4.runtime"), TestClient(app) as client:
            deadline = time.monotonic() + 30
            while "warmed up 2 collections" not in caplog.text:
                assert time.monotonic() < deadline, "the collections were never warmed up"
                time.sleep(0.05)
            assert client.get("/ready").json()["status"] == "loading"
            assert app.state.runtime.catalog.get("small") is not None
            assert opened == ["big", "small"]  # once each, by the warm-up
            model.set()  # the server stops only once its loader returns
    finally:
        model.set()


def test_shutdown_waits_for_the_collection_being_warmed_and_opens_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colbert.errors import StoreClosedError
    from colbert.local.backend import LocalBackend

    _two_collections(tmp_path)
    started, release = threading.Event(), threading.Event()
    made: dict[str, Any] = {}
    real = LocalBackend.open

    def slow(self: LocalBackend, name: str) -> Any:
        started.set()
        release.wait(30)  # a large collection's held rows being loaded
        made[name] = store = real(self, name)
        return store

    monkeypatch.setattr(LocalBackend, "open", slow)
    model = threading.Event()
    client = TestClient(create_app(Settings(data_dir=tmp_path, warm_collections=True), loader=_model_loading(model)))
    client.__enter__()
    try:
        assert started.wait(30)
        closing = threading.Thread(target=client.__exit__, args=(None, None, None))
        closing.start()
        closing.join(0.3)
        assert closing.is_alive()  # the catalog is closed only once the warm-up has stopped
    finally:
        release.set()
        model.set()
    closing.join(30)
    assert not closing.is_alive()
    assert list(made) == ["big"]  # stopped before the next collection
    with pytest.raises(StoreClosedError):
        made["big"].count()  # closed with the catalog: no handle left open
