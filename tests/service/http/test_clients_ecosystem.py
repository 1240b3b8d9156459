"""The published Jina integrations against the live server: LlamaIndex (embeddings + rerank postprocessor),
LangChain (embeddings + rerank compressor) and Haystack (text, document and image embedders + ranker).

They live in ``.clients-venv`` (``scripts/setup.sh --test`` makes it: they pull LangChain/LlamaIndex/Haystack's
dependency trees, which the project venv does not want) and run there as one subprocess,
``tests/service/http/clients_driver.py``, which prints what every client call returned. Each value must equal what
the server answers to the equivalent plain HTTP request (itself checked against the library elsewhere), so a
parameter a client sends that the server ignored or misread would show here. Without the venv the test skips
locally and FAILS under CI (``CI`` set), where setup.sh must have made it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.service.conftest import LiveServer
from tests.service.helpers import b64, png_bytes

REPO = Path(__file__).resolve().parents[3]
CLIENTS_PYTHON = REPO / ".clients-venv" / "bin" / "python"
TEXTS = ["the cat sat on the mat", "stock prices fell sharply", "a kitten sleeping"]
QUERY = "cats"
ATOL = 1e-5


@pytest.fixture(scope="module")
def driven(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not CLIENTS_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CLIENTS_PYTHON} missing: scripts/setup.sh --test must create .clients-venv")
        pytest.skip("no .clients-venv (run bash scripts/setup.sh --test to install the Jina client integrations)")
    image = tmp_path_factory.mktemp("clients") / "picture.png"
    image.write_bytes(png_bytes(56, 56, seed=4))
    env = {
        **os.environ,
        "JEV4_URL": live_server.url,
        "JEV4_KEY": live_server.api_key,
        "JEV4_IMAGE": str(image),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("PYTHONPATH", None)  # the driver imports only the clients, never the project
    done = subprocess.run(
        [str(CLIENTS_PYTHON), str(Path(__file__).with_name("clients_driver.py")), "all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    result["_image"] = b64(image.read_bytes())
    return result


def _embed(client: httpx.Client, **body: Any) -> list[Any]:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    return [item["embedding"] for item in response.json()["data"]]


def _rerank(client: httpx.Client, **body: Any) -> list[list[Any]]:
    response = client.post("/v1/rerank", json={"query": QUERY, "documents": TEXTS, **body})
    assert response.status_code == 200, response.text
    return [[r["index"], r["relevance_score"]] for r in response.json()["results"]]


def _close(got: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.array(got, dtype=np.float64), np.array(expected, dtype=np.float64), atol=ATOL)


def _same_ranking(got: list[list[Any]], expected: list[list[Any]]) -> None:
    assert [g[0] for g in got] == [e[0] for e in expected]
    _close([g[1] for g in got], [e[1] for e in expected])


def test_llamaindex_embeddings_every_parameter(driven: dict[str, Any], client: httpx.Client) -> None:
    out = driven["llamaindex_embed"]
    docs = _embed(client, input=TEXTS, task="retrieval.passage", dimensions=32)
    _close(out["docs_float"], docs)
    bits = (np.array(docs) > 0).astype(int).tolist()  # the client unpacks binary/ubinary back to sign bits
    assert out["docs_ubinary"] == bits
    assert out["docs_binary"] == bits  # needs binary = byte - 128 (the client adds 128 back)
    query = _embed(client, input=[QUERY], task="retrieval.query")[0]
    _close(out["query"], query)
    _close(out["query_async"], query)
    _close(out["image"], _embed(client, input=[{"image": driven["_image"]}])[0])  # sent as {"bytes": ...}
    _close(out["late"], _embed(client, input=TEXTS, task="retrieval.passage", late_chunking=True))


def test_llamaindex_rerank(driven: dict[str, Any], client: httpx.Client) -> None:
    _same_ranking(driven["llamaindex_rerank"]["results"], _rerank(client, top_n=2))


def test_langchain_embeddings(driven: dict[str, Any], client: httpx.Client) -> None:
    out = driven["langchain_embed"]
    # LangChain's JinaEmbeddings sends no task: documents AND queries get the server's default_task (passage)
    _close(out["docs"], _embed(client, input=TEXTS))
    _close(out["query"], _embed(client, input=[QUERY])[0])
    _close(out["images"], _embed(client, input=[{"image": driven["_image"]}]))


def test_langchain_rerank(driven: dict[str, Any], client: httpx.Client) -> None:
    out = driven["langchain_rerank"]
    everything = _rerank(client, top_n=None)
    _same_ranking(out["all"], everything)
    assert [t[0] for t in out["top"]] == [TEXTS[i] for i, _ in everything[:2]]
    _close([t[1] for t in out["top"]], [s for _, s in everything[:2]])


def test_haystack_embedders_and_ranker(driven: dict[str, Any], client: httpx.Client) -> None:
    out = driven["haystack"]
    response = client.post("/v1/embeddings", json={"input": [QUERY], "task": "retrieval.query", "dimensions": 32})
    _close(out["query"], response.json()["data"][0]["embedding"])
    assert out["query_usage"] == response.json()["usage"]
    _close(out["late_docs"], _embed(client, input=TEXTS, task="retrieval.passage", late_chunking=True))
    # the image embedder sends a bare "data:image/png;base64,..." string
    _close(out["image"], _embed(client, input=[{"image": driven["_image"]}], dimensions=32)[0])
    ranked = _rerank(client, top_n=2)
    assert [r[0] for r in out["ranked"]] == [TEXTS[i] for i, _ in ranked]
    _close([r[1] for r in out["ranked"]], [s for _, s in ranked])


def test_client_errors_carry_the_server_message(driven: dict[str, Any]) -> None:
    message = driven["errors"]["langchain"]
    assert message is not None
    assert "jina-embeddings-v3" in message
    assert "jina-embeddings-v4" in message
