"""Every row of the error table against the real server: status, JSON body, no stack traces, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.service.conftest import SERVER_ENV, LiveServer
from tests.service.helpers import b64, pdf_bytes, png_bytes, solid_png


def check_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}  # detail: the message again, as Jina's API and its clients have it
    assert set(body["error"]) == {"message", "type", "code"}
    assert body["detail"] == body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    assert response.headers.get("x-request-id")
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"input": ["x"], "task": "summarize"}, "invalid_task", "retrieval.query"),
        # bare adapter names are refused, not read as queries (an omitted task means passage)
        ({"input": ["x"], "task": "retrieval"}, "invalid_task", "'retrieval.passage' (documents)"),
        ({"input": ["x"], "task": "code"}, "invalid_task", "'code.query' (queries)"),
        ({"input": ["x"], "dimensions": 7}, "invalid_dimensions", "got 7"),
        (
            {"input": ["x"], "dimensions": 128, "return_multivector": True},
            "invalid_dimensions",
            "multi-vectors",
        ),
        ({"input": ["x"], "embedding_type": "int4"}, "invalid_encoding", "int4"),
        ({"input": ["x"], "encoding_format": "bytes"}, "invalid_encoding", "bytes"),
        (
            {"input": ["x"], "encoding_format": "float", "embedding_type": "base64"},
            "invalid_encoding",
            "differ",
        ),
        ({"input": ["x", {"image": b64(png_bytes())}], "late_chunking": True}, "invalid_input", "input[1]"),
        ({"input": [{"image": "http://10.0.0.1/a.png"}]}, "url_not_allowed", "not in the server's allowed"),
        ({"input": [{"image": "file:///etc/passwd"}]}, "url_not_allowed", "scheme 'file'"),
        ({"input": [{"pdf": b64(pdf_bytes(2)), "pages": "5"}]}, "invalid_pages", ""),
    ],
)
def test_invalid_values_are_422(client: httpx.Client, body: dict[str, Any], code: str, needle: str) -> None:
    # Policy (docs/errors.md): the body was read, a value in it is wrong -> 422 (400 only for unreadable bodies).
    error = check_error(client.post("/v1/embeddings", json=body), 422, code)
    assert needle in error["message"]


def test_413_too_long_names_index_and_count(client: httpx.Client) -> None:
    limit = int(SERVER_ENV["JEV4_MAX_TEXT_TOKENS"])
    body = {"input": ["short", "word " * (limit + 10)]}
    error = check_error(client.post("/v1/embeddings", json=body), 413, "input_too_long")
    assert "input 1 has" in error["message"]
    assert f"limit of {limit}" in error["message"]


def test_422_loopback_refused_after_dns_resolution(client: httpx.Client, live_server: LiveServer) -> None:
    # "localhost" IS on the allow-list, but it resolves to a loopback address: refused (SSRF guard).
    port = live_server.url.rsplit(":", 1)[1]
    body = {"input": [{"image": f"http://localhost:{port}/health"}]}
    error = check_error(client.post("/v1/embeddings", json=body), 422, "url_not_allowed")
    assert "loopback" in error["message"]


def test_400_malformed_json(client: httpx.Client) -> None:
    response = client.post("/v1/embeddings", content=b'{"input": [', headers={"content-type": "application/json"})
    check_error(response, 400, "invalid_json")


def test_401_rows(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as anon:
        check_error(anon.post("/v1/embeddings", json={"input": "x"}), 401, "missing_api_key")
        check_error(anon.post("/v1/rerank", json={"query": "q", "documents": ["d"]}), 401, "missing_api_key")
        bad = {"Authorization": "Bearer wrong"}
        check_error(anon.post("/v1/embeddings", json={"input": "x"}, headers=bad), 401, "invalid_api_key")
        basic = {"Authorization": "Basic abc"}
        check_error(anon.post("/v1/embeddings", json={"input": "x"}, headers=basic), 401, "invalid_auth_format")
        # health endpoints and docs stay open; /metrics is behind the keys (issue 25 item 7)
        for path in ("/health", "/ready", "/docs/openapi.json"):
            assert anon.get(path).status_code == 200, path
        check_error(anon.get("/metrics"), 401, "missing_api_key")


def test_404_rows(client: httpx.Client) -> None:
    check_error(client.get("/v1/nothing-here"), 404, "not_found")
    error = check_error(client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}), 404)
    assert error["code"] == "model_not_found"


def test_405(client: httpx.Client) -> None:
    check_error(client.get("/v1/embeddings"), 405, "method_not_allowed")


def test_413_rows(client: httpx.Client) -> None:
    # every limit error names the setting that raises it
    limit = int(SERVER_ENV["JEV4_MAX_ITEMS_PER_REQUEST"])
    error = check_error(client.post("/v1/embeddings", json={"input": ["x"] * (limit + 1)}), 413, "too_many_items")
    assert "JEV4_MAX_ITEMS_PER_REQUEST" in error["message"]
    body_limit = int(SERVER_ENV["JEV4_MAX_BODY_BYTES"])
    huge = json.dumps({"input": ["y" * (body_limit + 10)]}).encode()
    response = client.post("/v1/embeddings", content=huge, headers={"content-type": "application/json"})
    assert "JEV4_MAX_BODY_BYTES" in check_error(response, 413)["message"]
    many_pages = b64(pdf_bytes(int(SERVER_ENV["JEV4_MAX_PDF_PAGES"]) + 1))
    error = check_error(client.post("/v1/embeddings", json={"input": [{"pdf": many_pages}]}), 413, "too_many_pages")
    assert "JEV4_MAX_PDF_PAGES" in error["message"]
    per_request = int(SERVER_ENV["JEV4_MAX_PAGES_PER_REQUEST"])
    pdf = b64(pdf_bytes(int(SERVER_ENV["JEV4_MAX_PDF_PAGES"])))
    copies = per_request // int(SERVER_ENV["JEV4_MAX_PDF_PAGES"]) + 1
    response = client.post("/v1/embeddings", json={"input": [{"pdf": pdf}] * copies})
    assert "JEV4_MAX_PAGES_PER_REQUEST" in check_error(response, 413, "too_many_pages")["message"]
    big_image = b64(solid_png(2100, 2000))  # small file, 4.2 MP decoded > the 4 MP cap
    error = check_error(client.post("/v1/embeddings", json={"input": [{"image": big_image}]}), 413, "image_too_large")
    assert "JEV4_MAX_DECODED_PIXELS" in error["message"]
    too_long = {"input": ["word " * (int(SERVER_ENV["JEV4_MAX_TEXT_TOKENS"]) + 10)]}
    assert "JEV4_MAX_TEXT_TOKENS" in check_error(client.post("/v1/embeddings", json=too_long), 413)["message"]


def test_415_rows(client: httpx.Client) -> None:
    response = client.post("/v1/embeddings", content=b'{"input": "x"}', headers={"content-type": "text/plain"})
    check_error(response, 415, "unsupported_media_type")
    not_an_image = b64(b"this is plain text, not a picture")
    check_error(client.post("/v1/embeddings", json={"input": [{"image": not_an_image}]}), 415, "invalid_image")
    check_error(client.post("/v1/embeddings", json={"input": [{"pdf": not_an_image}]}), 415, "invalid_pdf")


def test_415_pdf_or_code_sent_as_image_says_what_to_send(client: httpx.Client) -> None:
    # Before: "<bytes>: not an image format PIL can read" -- no input named, no hint.
    pdf = {"input": ["fine", {"image": b64(pdf_bytes(1))}]}
    error = check_error(client.post("/v1/embeddings", json=pdf), 415, "pdf_sent_as_image")
    assert "input[1].image" in error["message"]
    assert "PDF document" in error["message"]
    assert '{"pdf":' in error["message"]
    code = {"input": [{"image": b64(b"def main() -> int:\n    return 0\n")}]}
    error = check_error(client.post("/v1/embeddings", json=code), 415, "invalid_image")
    assert "input[0].image" in error["message"]
    assert "text (UTF-8)" in error["message"]
    assert '{"text":' in error["message"]
    junk = {"input": [{"image": b64(bytes([0, 159, 146, 150, 1, 2, 3, 4]))}]}
    error = check_error(client.post("/v1/embeddings", json=junk), 415, "invalid_image")
    assert "00 9f 92 96" in error["message"]
    assert "PNG, JPEG" in error["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"inputs": ["x"]}, "unknown_field"),
        ({"input": 5}, "validation_error"),
        ({"input": ["x"], "dimensions": "big"}, "validation_error"),
        ({"input": ["x"], "late_chunking": "yes"}, "validation_error"),
        ({"input": []}, "empty_input"),
        ({"input": [[1, 2, 3]]}, "validation_error"),
        ({"input": [{"txt": "x"}]}, "invalid_input"),
        ({"input": [{"image": "!!!not base64!!!"}]}, "invalid_base64"),
    ],
)
def test_422_rows(client: httpx.Client, body: dict[str, Any], code: str) -> None:
    check_error(client.post("/v1/embeddings", json=body), 422, code)


def test_rerank_errors(client: httpx.Client) -> None:
    check_error(client.post("/v1/rerank", json={"query": "q", "documents": []}), 422, "empty_input")
    check_error(client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "scoring": "bm25"}), 422)
    check_error(client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "task": "x"}), 422, "invalid_task")
    check_error(client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "top_n": 0}), 422)
    pdf = {"pdf": b64(pdf_bytes(1))}
    check_error(client.post("/v1/rerank", json={"query": "q", "documents": [pdf]}), 422, "invalid_input")


GARBAGE: list[Any] = [
    None,
    [],
    "string",
    {"input": None},
    {"input": {"image": None}},
    {"input": [{"pdf": ""}]},
    {"input": [{"image": ""}]},
    {"input": [""]},
    {"input": ["x"], "dimensions": -1},
    {"input": ["x"], "dimensions": 10**12},
    {"input": ["x"], "embedding_type": []},
    {"input": ["x"], "embedding_type": [5]},
    {"input": [{"image": "data:image/png;base64,"}]},
    {"input": [{"image": "https://"}]},
    {"input": [{"image": "http://[::1]:1/x"}]},
    {"input": [{"pdf": "JVBERi0xLjQK"}]},
    {"input": ["x"], "task": ""},
    {
        "input": ["x"],
        "late_chunking": True,
        "return_multivector": True,
        "embedding_type": ["binary", "ubinary"],
    },
]


@pytest.mark.parametrize("body", GARBAGE)
def test_bad_input_never_500(client: httpx.Client, body: Any) -> None:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        check_error(response, response.status_code)
