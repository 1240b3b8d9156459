"""Operational routes and cross-cutting behaviour: health, readiness, metrics, request ids, logs, docs."""

from __future__ import annotations

import json

import httpx

from tests.service.conftest import LiveServer


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["test_checkpoint"] is True  # the session server runs model.testing's random checkpoint
    assert body["multivector_dimensions"] == 128 or body["multivector_dimensions"] > 0
    assert body["matryoshka_dims"]


def test_models_list(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["jina-embeddings-v4"]


def test_request_id_echoed_or_generated(client: httpx.Client) -> None:
    given = client.post("/v1/embeddings", json={"input": "id"}, headers={"X-Request-ID": "my-trace.42"})
    assert given.headers["x-request-id"] == "my-trace.42"
    fresh = client.post("/v1/embeddings", json={"input": "id"}, headers={"X-Request-ID": "bad id with spaces"})
    assert fresh.headers["x-request-id"] != "bad id with spaces"
    assert len(fresh.headers["x-request-id"]) == 32
    assert client.get("/nowhere").headers["x-request-id"]


def test_json_logs_carry_request_id(client: httpx.Client, live_server: LiveServer) -> None:
    client.post("/v1/embeddings", json={"input": "log me"}, headers={"X-Request-ID": "log-check-7"})
    lines = [json.loads(line) for line in live_server.log().splitlines() if line.startswith("{")]
    access = [r for r in lines if r.get("request_id") == "log-check-7" and r.get("logger") == "jev4.access"]
    assert access, "no access log line with the request id"
    assert access[-1]["status"] == 200
    assert access[-1]["path"] == "/v1/embeddings"
    assert "duration_ms" in access[-1]
    assert not any("test-key" in json.dumps(r) for r in lines)  # the API key never reaches the log
    # start-up says whether auth is on, and where a person should go once it is ready
    messages = [r["msg"] for r in lines]
    assert any(m.startswith("auth is on: 1 API key(s)") for m in messages), messages[:20]
    ready = next(m for m in messages if m.startswith("ready: "))
    assert f"{live_server.url}/docs" in ready
    assert f"{live_server.url}/ui/" in ready


def test_metrics_exposition(client: httpx.Client) -> None:
    client.post("/v1/embeddings", json={"input": ["metrics one", "metrics two"]})
    text = client.get("/metrics").text
    for family in (
        "jev4_requests_total",
        "jev4_request_duration_seconds_bucket",
        "jev4_queue_rows",
        "jev4_batch_rows_bucket",
        "jev4_batch_tokens_bucket",
        "jev4_tokens_total",
        "jev4_pdf_pages_total",
        "jev4_images_total",
        "jev4_model_ready 1.0",
        "jev4_maxsim_kernel 1.0",  # built at start-up (cc is on every machine the suite runs on)
        "jev4_maxsim_fallback_total 0.0",
    ):
        assert family in text, family
    # per-request stage histograms (as TEI's te_request_*), each observed by the request above
    for stage in ("prepare", "queue", "forward"):
        count = next(line for line in text.splitlines() if line.startswith(f"jev4_request_{stage}_seconds_count"))
        assert float(count.split()[-1]) >= 1, count
    assert 'route="/v1/embeddings"' in text
    assert 'kind="text"' in text


def test_openapi_and_docs(client: httpx.Client) -> None:
    schema = client.get("/docs/openapi.json").json()
    assert {"/v1/embeddings", "/v1/rerank", "/health", "/ready", "/metrics"} <= set(schema["paths"])
    props = schema["components"]["schemas"]["EmbeddingsRequest"]["properties"]
    assert {"input", "task", "dimensions", "late_chunking", "embedding_type", "encoding_format"} <= set(props)
    page = client.get("/docs")
    assert page.status_code == 200
    assert "html" in page.headers["content-type"]
