"""POST /v1/embeddings against the real server process (tiny checkpoint); vectors compared with the library
(the same checkpoint loaded in-process)."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.embeddings.encoding import decode_base64
from tests.service.conftest import SERVER_ENV
from tests.service.helpers import as_array, b64, data_uri, pdf_bytes, png_bytes, vectors

IMAGE_MAX_PIXELS = int(SERVER_ENV["JEV4_IMAGE_MAX_PIXELS"])
ATOL = 1e-5  # batching pads rows differently; float32 differences stay ~1e-7


def embed(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_response_shape_and_usage(client: httpx.Client, tiny_encoder: Any) -> None:
    out = embed(client, model="jina-embeddings-v4", input=["hello world", {"text": "bonjour"}])
    assert out["object"] == "list"
    assert out["model"] == "jina-embeddings-v4"
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in out["data"])
    assert all("input_index" not in d for d in out["data"])
    spec_tokens = [
        tiny_encoder.processor.prepare_text(t, _spec("retrieval.passage")).num_tokens
        for t in ["hello world", "bonjour"]
    ]
    assert out["usage"] == {"total_tokens": sum(spec_tokens), "prompt_tokens": sum(spec_tokens)}
    assert len(out["data"][0]["embedding"]) == tiny_encoder.info.hidden_size


def _spec(task: str) -> Any:
    from model.types import parse_task

    return parse_task(task)


@pytest.mark.parametrize(
    ("task", "lib_task", "prompt"),
    [
        (None, "retrieval", "passage"),  # documented default: retrieval.passage
        ("retrieval.query", "retrieval", "query"),
        ("code.passage", "code", "passage"),
        ("text-matching", "text-matching", None),
    ],
)
def test_text_vectors_equal_library(
    client: httpx.Client, tiny_encoder: Any, task: str | None, lib_task: str, prompt: str | None
) -> None:
    texts = ["def add(a, b): return a + b", "a short sentence", "Ein wunderschöner Sonnenuntergang am Strand"]
    body: dict[str, Any] = {"input": texts}
    if task is not None:
        body["task"] = task
    got = vectors(embed(client, **body))
    expected = as_array(tiny_encoder.encode_text(texts, task=lib_task, prompt_name=prompt, return_numpy=True))
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_image_and_multivector_equal_library(client: httpx.Client, tiny_encoder: Any) -> None:
    png = png_bytes(120, 80, seed=3)
    out = embed(
        client,
        task="retrieval.passage",
        input=[{"image": b64(png)}, {"image": data_uri(png)}, "caption"],
        return_multivector=True,
    )
    image = Image.open(io.BytesIO(png)).convert("RGB")
    lib = tiny_encoder.encode_image(
        [image], task="retrieval", return_multivector=True, max_pixels=IMAGE_MAX_PIXELS, return_numpy=True
    )
    lib_mv = as_array(lib[0] if isinstance(lib, list) else lib)
    for item in out["data"][:2]:
        assert "embedding" not in item
        got = np.array(item["embeddings"], dtype=np.float32)
        assert got.shape[1] == tiny_encoder.info.multivector_dim
        np.testing.assert_allclose(got, lib_mv.reshape(got.shape), atol=ATOL)
    text_mv = np.array(out["data"][2]["embeddings"], dtype=np.float32)
    lib_text = tiny_encoder.encode_text(["caption"], task="retrieval", prompt_name="passage", return_multivector=True)
    np.testing.assert_allclose(text_mv, as_array(lib_text[0]), atol=ATOL)
    image_tokens = tiny_encoder.processor.prepare_image(image, _spec("retrieval.passage"), max_pixels=IMAGE_MAX_PIXELS)
    assert out["data"][0]["embeddings"].__len__() == image_tokens.num_tokens
    text_tokens = tiny_encoder.processor.prepare_text("caption", _spec("retrieval.passage")).num_tokens
    assert out["usage"]["total_tokens"] == 2 * image_tokens.num_tokens + text_tokens


def test_dense_image_equals_library(client: httpx.Client, tiny_encoder: Any) -> None:
    png = png_bytes(50, 70, seed=5)
    got = vectors(embed(client, task="retrieval.query", input=[{"image": b64(png)}]))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    expected = as_array(
        tiny_encoder.encode_image([image], task="retrieval", max_pixels=IMAGE_MAX_PIXELS, return_numpy=True)
    )
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_dimensions_truncate_and_renormalise(client: httpx.Client, tiny_encoder: Any) -> None:
    dims = sorted(tiny_encoder.info.matryoshka_dims)[0]
    got = vectors(embed(client, input=["matryoshka"], dimensions=dims))
    assert got.shape == (1, dims)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    expected = as_array(
        tiny_encoder.encode_text(
            ["matryoshka"], task="retrieval", prompt_name="passage", truncate_dim=dims, return_numpy=True
        )
    )
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_embedding_types_exact(client: httpx.Client) -> None:
    texts = ["alpha", "beta"]
    floats = vectors(embed(client, input=texts))
    b64_out = embed(client, input=texts, embedding_type="base64")
    for i, item in enumerate(b64_out["data"]):
        raw = base64.b64decode(item["embedding"])
        assert raw == floats[i].astype("<f4").tobytes()  # little-endian float32, bit for bit
    ub = embed(client, input=texts, embedding_type="ubinary")
    bi = embed(client, input=texts, embedding_type="binary")
    for i in range(2):
        packed = np.packbits(floats[i] > 0)  # MSB first
        assert ub["data"][i]["embedding"] == packed.tolist()
        assert bi["data"][i]["embedding"] == (packed.astype(np.int16) - 128).tolist()  # offset binary
    multi = embed(client, input=texts, embedding_type=["float", "base64", "ubinary"])
    for i, item in enumerate(multi["data"]):
        assert set(item["embedding"]) == {"float", "base64", "ubinary"}
        np.testing.assert_array_equal(np.array(item["embedding"]["float"], np.float32), floats[i])
        np.testing.assert_array_equal(decode_base64(item["embedding"]["base64"]), floats[i])


def test_multivector_base64_rows(client: httpx.Client) -> None:
    floats = embed(client, input=["rows"], return_multivector=True)["data"][0]["embeddings"]
    rows = embed(client, input=["rows"], return_multivector=True, embedding_type="base64")["data"][0]["embeddings"]
    assert len(rows) == len(floats)
    np.testing.assert_array_equal(np.stack([decode_base64(r) for r in rows]), np.array(floats, np.float32))


def test_pdf_yields_one_item_per_page(client: httpx.Client, tiny_encoder: Any) -> None:
    pdf = pdf_bytes(3)
    out = embed(
        client,
        input=[
            "before",
            {"pdf": b64(pdf), "pages": "1,3"},
            {"pdf": data_uri(pdf, "application/pdf")},
            "after",
        ],
    )
    items = out["data"]
    assert [d["index"] for d in items] == list(range(len(items)))
    assert [(d["input_index"], d.get("page")) for d in items] == [
        (0, None),
        (1, 1),
        (1, 3),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, None),
    ]
    from model.pdf import render_pages

    pages = render_pages(pdf, dpi=int(SERVER_ENV["JEV4_PDF_DPI"]))
    lib = as_array(
        tiny_encoder.encode_image(
            [p.image for p in pages], task="retrieval", max_pixels=IMAGE_MAX_PIXELS, return_numpy=True
        )
    )
    got = vectors({"data": items[3:6]})
    np.testing.assert_allclose(got, lib, atol=ATOL)
    np.testing.assert_allclose(vectors({"data": items[1:3]}), lib[[0, 2]], atol=ATOL)


def test_late_chunking_equals_library(client: httpx.Client, tiny_encoder: Any) -> None:
    chunks = [
        "Berlin is the capital of Germany.",
        "It has 3.8 million inhabitants.",
        "The city is also a state.",
    ]
    got = vectors(embed(client, task="retrieval.passage", late_chunking=True, input=chunks))
    expected = as_array(
        tiny_encoder.encode_text(chunks, task="retrieval", prompt_name="passage", late_chunking=True, return_numpy=True)
    )
    assert got.shape == (3, tiny_encoder.info.hidden_size)
    np.testing.assert_allclose(got, expected, atol=ATOL)
    single = vectors(embed(client, task="retrieval.passage", late_chunking=True, input=[chunks[0]]))
    plain = vectors(embed(client, task="retrieval.passage", input=[chunks[0]]))
    np.testing.assert_allclose(single, plain, atol=ATOL)  # one input with late chunking == its plain encoding


def test_truncate_true_cuts_to_the_limit(client: httpx.Client, tiny_encoder: Any) -> None:
    limit = int(SERVER_ENV["JEV4_MAX_TEXT_TOKENS"])
    long_text = "token " * (limit + 50)
    out = embed(client, input=[long_text], truncate=True)
    assert out["usage"]["total_tokens"] == limit
    expected = as_array(
        tiny_encoder.encode_text(
            [long_text], task="retrieval", prompt_name="passage", max_length=limit, return_numpy=True
        )
    )
    np.testing.assert_allclose(vectors(out), expected, atol=ATOL)


def test_single_object_input_and_user_ignored(client: httpx.Client) -> None:
    a = embed(client, input={"text": "solo"}, user="someone")
    b = embed(client, input="solo")
    np.testing.assert_array_equal(vectors(a), vectors(b))


# ---- Jina's published curl examples (request bodies replayed as sent) ----------------------------------

# The model card's text-matching example: five languages plus two images by URL.
JINA_TEXT_MATCHING = {
    "model": "jina-embeddings-v4",
    "task": "text-matching",
    "input": [
        {"text": "غروب جميل على الشاطئ"},
        {"text": "海滩上美丽的日落"},
        {"text": "A beautiful sunset over the beach"},
        {"text": "Un beau coucher de soleil sur la plage"},
        {"text": "Ein wunderschöner Sonnenuntergang am Strand"},
        {"image": "https://i.ibb.co/nQNGqL0/beach1.jpg"},
        {"image": "https://i.ibb.co/r5w8hG8/beach2.jpg"},
    ],
}


def test_jina_text_matching_example(client: httpx.Client, tiny_encoder: Any) -> None:
    # As published: the image hosts are not on this server's allow-list -> a clear 422 naming the input.
    refused = client.post("/v1/embeddings", json=JINA_TEXT_MATCHING)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "url_not_allowed"
    assert "input[5]" in refused.json()["error"]["message"]
    # The same body with the two images sent inline (no internet here): 7 vectors, texts equal the library.
    body = {**JINA_TEXT_MATCHING, "input": [*JINA_TEXT_MATCHING["input"][:5]]}
    body["input"] += [{"image": b64(png_bytes(64, 48, seed=11))}, {"image": b64(png_bytes(48, 64, seed=12))}]
    out = embed(client, **body)
    assert len(out["data"]) == 7
    texts = [item["text"] for item in JINA_TEXT_MATCHING["input"][:5]]  # type: ignore[index]
    expected = as_array(tiny_encoder.encode_text(texts, task="text-matching", return_numpy=True))
    np.testing.assert_allclose(vectors({"data": out["data"][:5]}), expected, atol=ATOL)


def test_jina_late_chunking_example(client: httpx.Client) -> None:
    body = {
        "model": "jina-embeddings-v4",
        "task": "text-matching",
        "late_chunking": True,
        "input": [
            "Organic skincare for sensitive skin with aloe vera and chamomile.",
            "New makeup trends focus on bold colors and innovative techniques.",
            "Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille.",
        ],
    }
    out = embed(client, **body)
    assert [d["index"] for d in out["data"]] == [0, 1, 2]


def test_jina_dimensions_example(client: httpx.Client, tiny_encoder: Any) -> None:
    dims = sorted(tiny_encoder.info.matryoshka_dims)[1]
    body = {
        "model": "jina-embeddings-v4",
        "task": "retrieval.query",
        "dimensions": dims,
        "embedding_type": "float",
        "input": ["What is late interaction?", "Was ist späte Interaktion?"],
    }
    out = embed(client, **body)
    assert [len(d["embedding"]) for d in out["data"]] == [dims, dims]


# Two mistakes in one request: the first of them in the validation order is the one answered (model, task,
# encoding, normalized, dimensions, input). A client fixing one error at a time sees them in this order.
_TWO_MISTAKES = [
    ({"model": "nope", "task": "retrieval"}, "model_not_found", "not served here"),
    ({"task": "retrieval", "encoding_format": "int8"}, "invalid_task", "names an adapter"),
    ({"encoding_format": "int8", "embedding_type": "binary"}, "invalid_encoding", "'float' or 'base64'"),
    ({"embedding_type": "binary", "encoding_type": "ubinary", "normalized": False}, "invalid_encoding", "differ"),
    ({"embedding_type": "int8", "normalized": False}, "invalid_encoding", "unknown embedding_type"),
    ({"normalized": False, "dimensions": 3}, "invalid_normalized", "normalized=false"),
    ({"dimensions": 3, "return_multivector": True, "input": []}, "invalid_dimensions", "single vectors"),
    ({"dimensions": 3, "input": []}, "invalid_dimensions", "must be one of"),
    ({"input": ["ok", {"foo": "x"}, ""]}, "invalid_input", "input[1]"),
]


@pytest.mark.parametrize(("patch", "code", "fragment"), _TWO_MISTAKES)
def test_the_first_mistake_in_validation_order_is_answered(
    client: httpx.Client, patch: dict[str, Any], code: str, fragment: str
) -> None:
    response = client.post("/v1/embeddings", json={"input": ["hello"], **patch})
    assert response.status_code in (404, 422), response.text
    error = response.json()["error"]
    assert (error["code"], fragment in error["message"]) == (code, True), error
