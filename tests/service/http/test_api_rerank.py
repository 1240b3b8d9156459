"""POST /v1/rerank against the real server: MaxSim and cosine scores equal the library computation."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.ranking import assert_ranked
from tests.service.conftest import SERVER_ENV
from tests.service.helpers import as_array, b64, png_bytes


def _maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float((q @ d.T).max(axis=1).sum())  # (Lq, Ld) -> max over doc tokens, summed over query tokens


def test_rerank_maxsim_matches_library(client: httpx.Client, tiny_encoder: Any) -> None:
    docs = ["the cat sat on the mat", "stock prices fell sharply", "a kitten sleeping"]
    png = png_bytes(64, 64, seed=9)
    body = {"query": "cats", "documents": [*docs, {"image": b64(png)}], "top_n": 3}
    response = client.post("/v1/rerank", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    q = as_array(tiny_encoder.encode_text(["cats"], task="retrieval", prompt_name="query", return_multivector=True)[0])
    lib_docs = [
        as_array(m)
        for m in tiny_encoder.encode_text(docs, task="retrieval", prompt_name="passage", return_multivector=True)
    ]
    image = Image.open(io.BytesIO(png)).convert("RGB")
    max_pixels = int(SERVER_ENV["JEV4_IMAGE_MAX_PIXELS"])
    lib_docs.append(as_array(tiny_encoder.encode_image([image], return_multivector=True, max_pixels=max_pixels)[0]))
    expected = np.array([_maxsim(q, d) for d in lib_docs])
    got = [r["index"] for r in out["results"]]
    np.testing.assert_allclose([r["relevance_score"] for r in out["results"]], expected[got], rtol=1e-4, atol=1e-4)
    # the order: the library's where its scores differ by more than the tolerance (the tiny checkpoint's are often
    # ~1e-7 apart, and the two computations sum in different orders)
    assert_ranked(got, dict(enumerate(expected.tolist())), atol=1e-4)
    first = out["results"][0]
    assert first["document"] == ({"text": docs[first["index"]]} if first["index"] < 3 else {"image": b64(png)})
    assert out["usage"]["total_tokens"] > 0


def test_rerank_cosine_without_documents(client: httpx.Client, tiny_encoder: Any) -> None:
    docs = ["alpha", "beta", "gamma"]
    body = {"query": {"text": "alpha"}, "documents": docs, "scoring": "cosine", "return_documents": False}
    out = client.post("/v1/rerank", json=body).json()
    q = as_array(tiny_encoder.encode_text(["alpha"], task="retrieval", prompt_name="query", return_numpy=True))[0]
    d = as_array(tiny_encoder.encode_text(docs, task="retrieval", prompt_name="passage", return_numpy=True))
    expected = d @ q
    assert len(out["results"]) == 3
    assert all("document" not in r for r in out["results"])
    got = {r["index"]: r["relevance_score"] for r in out["results"]}
    np.testing.assert_allclose([got[i] for i in range(3)], expected, atol=1e-5)
    scores = [r["relevance_score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
