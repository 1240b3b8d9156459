"""Concurrent clients get their own results; a full queue answers 429 with Retry-After."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from tests.service.conftest import SERVER_ENV, LiveServer
from tests.service.helpers import as_array, vectors


def test_concurrent_clients_see_their_own_results(live_server: LiveServer, tiny_encoder: Any) -> None:
    requests = [[f"client {i} text {j} " + "word " * (i * 3 + j) for j in range(1 + i % 3)] for i in range(12)]

    def call(texts: list[str]) -> np.ndarray:
        with live_server.client() as c:
            response = c.post("/v1/embeddings", json={"input": texts, "task": "retrieval.query"})
            assert response.status_code == 200, response.text
            return vectors(response.json())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, requests))
    for texts, got in zip(requests, results, strict=True):
        expected = as_array(tiny_encoder.encode_text(texts, task="retrieval", prompt_name="query", return_numpy=True))
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_full_queue_answers_429(live_server: LiveServer) -> None:
    rows = int(SERVER_ENV["JEV4_MAX_QUEUE_ROWS"])
    limit = int(SERVER_ENV["JEV4_MAX_TEXT_TOKENS"])
    body = {"input": ["busy " * (limit - 10)] * rows}  # a full queue's worth of long rows per request

    def call(_: int) -> httpx.Response:
        with live_server.client() as c:
            return c.post("/v1/embeddings", json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(call, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected, f"expected at least one 429 with {len(responses)} concurrent full-queue requests"
    assert rejected[0].headers["retry-after"] == "1"
    assert rejected[0].json()["error"]["code"] == "queue_full"
