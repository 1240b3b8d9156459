"""The official ``openai`` client, unchanged, against the real server."""

from __future__ import annotations

from typing import Any

import numpy as np
import openai
import pytest

from tests.service.conftest import LiveServer
from tests.service.helpers import as_array


@pytest.fixture(scope="module")
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=live_server.api_key, max_retries=0)


def test_openai_default_base64_round_trip(oai: openai.OpenAI, tiny_encoder: Any) -> None:
    # the client sends encoding_format=base64 by default and decodes it back to floats
    result = oai.embeddings.create(model="jina-embeddings-v4", input=["first text", "second text"])
    got = np.array([d.embedding for d in result.data], dtype=np.float32)
    expected = as_array(
        tiny_encoder.encode_text(
            ["first text", "second text"], task="retrieval", prompt_name="passage", return_numpy=True
        )
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.total_tokens == result.usage.prompt_tokens > 0


def test_openai_string_input_float_and_dimensions(oai: openai.OpenAI, tiny_encoder: Any) -> None:
    dims = sorted(tiny_encoder.info.matryoshka_dims)[0]
    single = oai.embeddings.create(model="jina-embeddings-v4", input="just one", encoding_format="float", user="u1")
    assert len(single.data) == 1
    truncated = oai.embeddings.create(model="jina-embeddings-v4", input="just one", dimensions=dims)
    assert len(truncated.data[0].embedding) == dims
    np.testing.assert_allclose(np.linalg.norm(truncated.data[0].embedding), 1.0, atol=1e-5)


def test_openai_bad_dimensions_is_422(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oai.embeddings.create(model="jina-embeddings-v4", input="x", dimensions=3)
    assert info.value.status_code == 422
    assert "dimensions" in str(info.value)


def test_openai_models_list(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["jina-embeddings-v4"]
