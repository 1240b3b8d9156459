"""Request-shape policies and extensions of /v1/embeddings and /v1/rerank (issue 14, items 1-3):

- unknown request fields are refused (422 ``unknown_field`` naming the field), never silently ignored;
- ``return_dense`` + ``return_multivector``: both outputs from one request, equal to the separate requests;
- ``normalized`` (Jina v3/v5 shape): true is a no-op on v4's unit vectors, false a 422;
- ``{audio}`` / ``{video}`` inputs and other model names: typed 4xx naming what this server serves;
- jina-reranker-m0's request shape (image query, image and text documents, TextDoc ids) on /v1/rerank.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.service.helpers import b64, png_bytes


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(path, json=body)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/embeddings", {"input": ["a"], "normalise": True}, "normalise"),
        ("/v1/embeddings", {"input": ["a"], "dimension": 128}, "dimension"),
        ("/v1/embeddings", {"input": ["a"], "output_dtype": "int8"}, "output_dtype"),
        ("/v1/rerank", {"query": "a", "documents": ["b"], "top_k": 1}, "top_k"),
    ],
)
def test_unknown_fields_are_refused_by_name(client: httpx.Client, path: str, body: dict[str, Any], field: str) -> None:
    response = _post(client, path, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unknown_field"
    assert f"`{field}`" in error["message"]


def test_dense_and_multivector_from_one_request(client: httpx.Client) -> None:
    png = b64(png_bytes(56, 56, seed=3))
    inputs: list[Any] = ["a short passage", {"image": png}]
    both = _post(
        client,
        "/v1/embeddings",
        {"input": inputs, "return_multivector": True, "return_dense": True, "dimensions": 32},
    )
    assert both.status_code == 200, both.text
    dense = _post(client, "/v1/embeddings", {"input": inputs, "dimensions": 32}).json()
    multi = _post(client, "/v1/embeddings", {"input": inputs, "return_multivector": True}).json()
    for got, d, m in zip(both.json()["data"], dense["data"], multi["data"], strict=True):
        assert len(got["embedding"]) == 32
        np.testing.assert_allclose(got["embedding"], d["embedding"], atol=1e-5)
        np.testing.assert_allclose(np.array(got["embeddings"]), np.array(m["embeddings"]), atol=1e-5)
    assert both.json()["usage"] == dense["usage"]  # one forward's tokens, not two


def test_dimensions_with_multivector_alone_still_refused(client: httpx.Client) -> None:
    response = _post(client, "/v1/embeddings", {"input": ["a"], "return_multivector": True, "dimensions": 32})
    assert response.status_code == 422
    assert "return_dense" in response.json()["error"]["message"]


def test_normalized_true_is_a_no_op_and_false_refused(client: httpx.Client) -> None:
    plain = _post(client, "/v1/embeddings", {"input": ["x"], "dimensions": 32}).json()["data"][0]["embedding"]
    normed = _post(client, "/v1/embeddings", {"input": ["x"], "dimensions": 32, "normalized": True})
    assert normed.status_code == 200
    assert normed.json()["data"][0]["embedding"] == plain
    assert abs(np.linalg.norm(plain) - 1) < 1e-5
    refused = _post(client, "/v1/embeddings", {"input": ["x"], "normalized": False})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_normalized"


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_audio_and_video_inputs_name_what_is_served(client: httpx.Client, kind: str) -> None:
    for path, body in (
        ("/v1/embeddings", {"input": [{kind: "AAAA"}]}),
        ("/v1/rerank", {"query": "q", "documents": [{kind: "AAAA"}]}),
        ("/v1/rerank", {"query": {kind: "AAAA"}, "documents": ["d"]}),
    ):
        response = _post(client, path, body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "unsupported_input_type"
        assert kind in error["message"]
        assert "jina-embeddings-v4" in error["message"]


@pytest.mark.parametrize("model", ["jina-reranker-m0", "jina-embeddings-v5-text-small", "jina-clip-v2"])
def test_other_model_names_are_404_naming_the_served_model(client: httpx.Client, model: str) -> None:
    for path, body in (
        ("/v1/embeddings", {"model": model, "input": ["a"]}),
        ("/v1/rerank", {"model": model, "query": "a", "documents": ["b"]}),
    ):
        response = _post(client, path, body)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "model_not_found"
        assert model in error["message"]
        assert "jina-embeddings-v4" in error["message"]


def test_rerank_m0_shape_image_query_mixed_documents(client: httpx.Client) -> None:
    query_png, doc_png = b64(png_bytes(56, 56, seed=1)), b64(png_bytes(56, 56, seed=2))
    documents: list[Any] = [
        {"text": "a noisy picture", "id": "t1"},
        {"image": doc_png},
        {"image": query_png, "id": "same"},
        "plain string document",
    ]
    body = {"model": "jina-embeddings-v4", "query": {"image": query_png}, "documents": documents, "top_n": 3}
    response = _post(client, "/v1/rerank", body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    for result in results:
        sent = documents[result["index"]]
        assert result["document"] == (sent if isinstance(sent, dict) else {"text": sent})
    # identical image: its MaxSim is the query's own token count (each row is unit length), the maximum possible
    assert results[0]["index"] == 2
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    bare = _post(client, "/v1/rerank", {**body, "return_documents": False}).json()["results"]
    assert [r["index"] for r in bare] == [r["index"] for r in results]
    assert all("document" not in r for r in bare)


def test_rerank_document_id_must_be_a_string(client: httpx.Client) -> None:
    response = _post(client, "/v1/rerank", {"query": "q", "documents": [{"text": "d", "id": 3}]})
    assert response.status_code == 422
    assert "documents[0].id" in response.json()["error"]["message"]
