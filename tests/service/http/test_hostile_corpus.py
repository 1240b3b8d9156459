"""A hostile corpus (issue 14 item 5): >= 200 generated requests across /v1/embeddings, /v1/rerank, collection
uploads and search, against the live server. Every response is < 500; every refusal is a typed JSON error
naming the problem; the server's peak RSS after the whole corpus stays under a bound (printed for the note).

Cases (``tests/service/hostile.py`` builds the files): PDF bombs (deep nesting, page trees claiming millions of
pages or cycling, giant embedded images, JBIG2/JPX garbage, broken and recursive fonts, a flate bomb in the
content, huge/zero/negative media boxes), image bombs in every format PIL reads plus forged headers, malformed
base64 and data URIs, deep and huge JSON, huge numbers, Unicode edge cases, path-like document ids, 1 MB
metadata, filters with thousands of keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import LiveServer
from tests.service.helpers import png_bytes
from tests.service.hostile import COLLECTION, MALFORMED_URLS, Case, b64, image_cases, pdf_cases

PEAK_RSS_BOUND_MIB = 3072
DOCS = f"/v1/collections/{COLLECTION}/documents"
PNG = b64(png_bytes(32, 32, seed=1))


def _media_cases() -> Iterator[Case]:
    for name, data in pdf_cases():
        yield Case(f"pdf/{name}/embed", "/v1/embeddings", {"input": [{"pdf": b64(data)}]}, refuse=False)
        yield Case(f"pdf/{name}/upload", DOCS, {"pdf": b64(data), "document_id": f"pdf-{name}"}, refuse=False)
    for name, data in image_cases():
        yield Case(f"image/{name}/embed", "/v1/embeddings", {"input": [{"image": b64(data)}]}, refuse=False)
        yield Case(
            f"image/{name}/rerank", "/v1/rerank", {"query": "q", "documents": [{"image": b64(data)}]}, refuse=False
        )
        yield Case(f"image/{name}/upload", DOCS, {"image": b64(data)}, refuse=False)
        yield Case(
            f"image/{name}/multipart",
            DOCS,
            files={"file": ("x.bin", data, "application/octet-stream")},
            refuse=False,
        )


BAD_SOURCES = {
    "no_comma": "data:image/png;base64",
    "no_base64_marker": "data:image/png," + PNG,
    "empty_mime": "data:;base64,",
    "empty_payload": "data:image/png;base64,",
    "bad_chars": "!!!!****",
    "bad_padding": "abc",
    "one_char": "A",
    "mixed_alphabets": PNG[:20] + "-_" + PNG[22:] + "+/",
    "non_ascii": "ümlaut€€",
    "whitespace_only": "   \n\t ",
    "nul_bytes": "\x00\x00\x00\x00",
    "percent_encoded": "data:image/png;base64,%89PNG",
    "javascript_uri": "javascript:alert(1)",
    "file_uri": "file:///etc/passwd",
    "ftp_uri": "ftp://example.com/x.png",
    "huge_declared": "A" * 6_000_000,
    "valid_base64_not_image": b64(b"just some text, not an image"),
    "data_uri_pdf_as_image": "data:application/pdf;base64," + b64(b"%PDF-1.7 nope"),
}


def _source_cases() -> Iterator[Case]:
    for name, value in BAD_SOURCES.items():
        yield Case(f"source/{name}/image", "/v1/embeddings", {"input": [{"image": value}]})
        yield Case(f"source/{name}/pdf", "/v1/embeddings", {"input": [{"pdf": value}]})
        yield Case(f"source/{name}/upload", DOCS, {"image": value})


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _json_cases() -> Iterator[Case]:
    raw = {"Content-Type": "application/json"}
    yield Case(
        "json/nested_list_100k",
        "/v1/embeddings",
        content=b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers=raw,
    )
    yield Case(
        "json/nested_obj_100k",
        "/v1/embeddings",
        content=b'{"input": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
        headers=raw,
    )
    yield Case("json/nested_input_500", "/v1/embeddings", {"input": _nested(500)})
    yield Case(
        "json/nested_metadata_5k",
        DOCS,
        content=b'{"image": "' + PNG.encode() + b'", "metadata": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        headers=raw,
    )
    yield Case("json/huge_string_5MB", "/v1/embeddings", {"input": ["a" * 5_000_000]})
    yield Case("json/100k_items", "/v1/embeddings", {"input": ["a"] * 100_000})
    yield Case("json/10k_rerank_docs", "/v1/rerank", {"query": "q", "documents": ["d"] * 10_000})
    yield Case("json/truncated", "/v1/embeddings", content=b'{"input": ["abc"', headers=raw)
    yield Case("json/trailing_garbage", "/v1/embeddings", content=b'{"input": ["abc"]} xyz', headers=raw)
    yield Case("json/not_utf8", "/v1/embeddings", content=b'{"input": ["\xff\xfe\xfa"]}', headers=raw)
    yield Case("json/utf16_body", "/v1/embeddings", content='{"input": ["a"]}'.encode("utf-16"), headers=raw)
    yield Case("json/top_level_array", "/v1/embeddings", content=b'[{"input": "a"}]', headers=raw)
    yield Case("json/top_level_string", "/v1/embeddings", content=b'"input"', headers=raw)
    yield Case("json/duplicate_keys", "/v1/embeddings", content=b'{"input": ["a"], "input": 5}', headers=raw)
    yield Case("json/nan_literal", "/v1/embeddings", content=b'{"input": ["a"], "dimensions": NaN}', headers=raw)
    yield Case("json/infinity", "/v1/embeddings", content=b'{"input": ["a"], "dimensions": Infinity}', headers=raw)
    yield Case(
        "json/wrong_content_type", "/v1/embeddings", content=b'{"input": ["a"]}', headers={"Content-Type": "text/plain"}
    )


def _number_cases() -> Iterator[Case]:
    for value in (10**30, -(10**30), 2**63, 2**64, -1, 0, 1e308, -1e308, 1.5, 33):
        yield Case(f"number/dimensions={value}", "/v1/embeddings", {"input": ["a"], "dimensions": value})
    for value in (10**30, 2**63, -1, 0, 1e308):
        # a top_n above the document count returns every document (Jina's behaviour)
        big = isinstance(value, int) and value > 0
        yield Case(
            f"number/top_n={value}", "/v1/rerank", {"query": "q", "documents": ["d"], "top_n": value}, refuse=not big
        )
        yield Case(f"number/top_k={value}", f"/v1/collections/{COLLECTION}/search", {"query": "q", "top_k": value})
    yield Case(
        "number/big_exponent_raw",
        "/v1/embeddings",
        content=b'{"input": ["a"], "dimensions": 1e99999}',
        headers={"Content-Type": "application/json"},
    )
    yield Case("number/bool_for_int", "/v1/embeddings", {"input": ["a"], "dimensions": True})
    yield Case("number/metadata_bigint", DOCS, {"image": PNG, "metadata": {"n": 10**400}}, refuse=False)


UNICODE = {
    "lone_high_surrogate": None,  # sent raw below: JSON "\ud800"
    "bom": "\ufeffhello",
    "rtl_override": "\u202eevil\u202c text",
    "zero_width": "\u200b\u200c\u200d\u2060",
    "combining_10k": "e" + "\u0301" * 10_000,
    "emoji_zwj": "👩‍👩‍👧‍👦" * 200,
    "nul_char": "a\x00b",
    "control_chars": "".join(chr(c) for c in range(1, 32)),
    "private_use": "\ue000\U000f0000",
    "noncharacters": "\ufffe\uffff\U0010ffff",
    "mixed_scripts": "Ελληνικά русский 中文 العربية हिन्दी",
    "long_word": "x" * 2000,
    "newlines_only": "\n" * 100,
    "prompt_like": "Query: Passage: <|image_pad|><|vision_start|>",
}


def _unicode_cases() -> Iterator[Case]:
    raw = {"Content-Type": "application/json"}
    yield Case(
        "unicode/lone_surrogate_embed", "/v1/embeddings", content=b'{"input": ["a\\ud800b"]}', headers=raw, refuse=False
    )
    yield Case(
        "unicode/lone_surrogate_id",
        DOCS,
        content=b'{"image": "' + PNG.encode() + b'", "document_id": "a\\udfffb"}',
        headers=raw,
    )
    for name, text in UNICODE.items():
        if text is None:
            continue
        yield Case(f"unicode/{name}/embed", "/v1/embeddings", {"input": [text], "truncate": True}, refuse=False)
        yield Case(
            f"unicode/{name}/rerank", "/v1/rerank", {"query": text, "documents": [text], "truncate": True}, refuse=False
        )
        yield Case(f"unicode/{name}/search", f"/v1/collections/{COLLECTION}/search", {"query": text}, refuse=False)


DOC_IDS = [
    "../../etc/passwd",
    "..",
    ".",
    "/abs/path",
    "a/b",
    "a\\b",
    "C:\\Windows",
    "%2e%2e%2f",
    "con",
    "nul",
    "a\x00b",
    "x" * 10_000,
    "-leading-dash",
    " spaced ",
    "ünïcode",
    "a\nb",
    "*",
    "?",
    "#frag",
    "",
]


def _id_cases() -> Iterator[Case]:
    for i, doc_id in enumerate(DOC_IDS):
        valid = doc_id in ("con", "nul")  # plain ids on every OS the server runs on (ids are never file names)
        yield Case(f"doc_id/{i}:{doc_id[:20]!r}", DOCS, {"image": PNG, "document_id": doc_id}, refuse=not valid)
        yield Case(
            f"doc_id/{i}:{doc_id[:20]!r}/multipart",
            DOCS,
            files={"file": ("x.png", b"", "image/png")},
            data={"document_id": doc_id},
        )


def _size_cases() -> Iterator[Case]:
    yield Case("metadata/1MB_value", DOCS, {"image": PNG, "metadata": {"blob": "x" * 1_000_000}}, refuse=False)
    yield Case("metadata/50k_keys", DOCS, {"image": PNG, "metadata": {f"k{i}": i for i in range(50_000)}}, refuse=False)
    yield Case("metadata/not_object", DOCS, {"image": PNG, "metadata": ["a", "b"]})
    yield Case(
        "metadata/multipart_not_json", DOCS, files={"file": ("x.png", b"", "image/png")}, data={"metadata": "{nope"}
    )
    search = f"/v1/collections/{COLLECTION}/search"
    yield Case("filter/64_keys", search, {"query": "q", "filter": {f"k{i}": i for i in range(64)}}, refuse=False)
    yield Case("filter/5k_keys", search, {"query": "q", "filter": {f"k{i}": i for i in range(5000)}})
    yield Case("filter/50k_keys", search, {"query": "q", "filter": {f"k{i}": i for i in range(50_000)}})
    yield Case(
        "filter/nested_values", search, {"query": "q", "filter": {"a": {"b": {"c": [1, {"d": 2}]}}}}, refuse=False
    )
    yield Case("filter/sql_like_key", search, {"query": "q", "filter": {"a') OR 1=1 --": "x"}}, refuse=False)
    yield Case("filter/json_path_key", search, {"query": "q", "filter": {"$.a[0]": 1, "a.b": 2}}, refuse=False)
    yield Case("filter/not_object", search, {"query": "q", "filter": [1, 2]})


def _url_cases() -> Iterator[Case]:
    """Malformed URLs are a 422 invalid_url on every route that takes one (they were 500s)."""
    search = f"/v1/collections/{COLLECTION}/search"
    for name, url in MALFORMED_URLS.items():
        code = "invalid_url"
        yield Case(f"url/{name}/embed", "/v1/embeddings", {"input": [{"image": url}]}, code=code)
        yield Case(f"url/{name}/embed_pdf", "/v1/embeddings", {"input": [{"pdf": url}]}, code=code)
        yield Case(f"url/{name}/rerank", "/v1/rerank", {"query": "q", "documents": [{"image": url}]}, code=code)
        yield Case(f"url/{name}/upload", DOCS, {"image": url}, code=code)
        yield Case(f"url/{name}/upload_pdf", DOCS, {"pdf": url}, code=code)
        yield Case(f"url/{name}/search", search, {"query_image": url}, code=code)


BIG = 2**70  # beyond 64 bits: SQLite cannot bind it (was an OverflowError -> 500)


def _malformed_cases() -> Iterator[Case]:
    search = f"/v1/collections/{COLLECTION}/search"
    for op in ("$gte", "$lt", "$in", "$eq"):
        for sign, suffix in ((1, ""), (-1, "_neg")):
            value = [sign * BIG] if op == "$in" else sign * BIG
            flt = {"n": {op: value}}
            yield Case(f"bigint/filter_{op}{suffix}", search, {"query": "q", "filter": flt}, code="invalid_filter")
    yield Case(
        "bigint/filter_10e400", search, {"query": "q", "filter": {"n": {"$gte": 10**400}}}, code="invalid_filter"
    )
    yield Case("bigint/offset", f"{DOCS}?offset={BIG}", method="GET", code="validation_error")
    yield Case("bigint/page_image", f"{DOCS}/x/pages/{BIG}/image", method="GET", code="validation_error")
    yield Case("bigint/page_similarity", f"{DOCS}/x/pages/{BIG}/similarity", {"query": "q"}, code="validation_error")
    yield Case("bigint/like_page", search, {"like": {"document_id": "x", "page": BIG}}, code="validation_error")
    png = base64.b64decode(PNG)
    yield Case("multipart/empty_filename", DOCS, files={"file": ("", png, "image/png")}, code="invalid_multipart")
    nested = '{"a":' * 5000 + "1" + "}" * 5000
    yield Case(
        "multipart/metadata_nested_5k",
        DOCS,
        files={"file": ("x.png", png, "image/png")},
        data={"metadata": nested},
        code="invalid_input",
    )
    for name, text in (("newline", "abc\n"), ("crlf", "abc\r\n"), ("tab", "a\tb"), ("nul", "a\x00b"), ("del", "a\x7f")):
        yield Case(f"name/collection_{name}", "/v1/collections", {"name": text}, code="invalid_collection_name")
        yield Case(f"name/document_{name}", DOCS, {"image": PNG, "document_id": text}, code="validation_error")
        yield Case(
            f"name/document_{name}/multipart",
            DOCS,
            files={"file": ("x.png", png, "image/png")},
            data={"document_id": text},
            code="validation_error",
        )


def all_cases() -> list[Case]:
    return [
        *_media_cases(),
        *_source_cases(),
        *_json_cases(),
        *_number_cases(),
        *_unicode_cases(),
        *_id_cases(),
        *_size_cases(),
        *_url_cases(),
        *_malformed_cases(),
    ]


CASES = all_cases()


def test_corpus_has_at_least_200_cases() -> None:
    assert len(CASES) >= 200
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def hostile_collection(client: httpx.Client) -> str:
    response = client.post("/v1/collections", json={"name": COLLECTION})
    assert response.status_code in (201, 409), response.text
    return COLLECTION


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(client: httpx.Client, hostile_collection: str, case: Case) -> None:
    if case.method != "POST":
        response = client.request(case.method, case.path)
    elif case.files is not None or case.content is not None:
        response = client.post(case.path, files=case.files, data=case.data, content=case.content, headers=case.headers)
    else:
        response = client.post(case.path, json=case.json)
    assert response.status_code < 500, f"{case.name}: {response.status_code} {response.text[:500]}"
    if case.refuse:
        assert 400 <= response.status_code < 500, f"{case.name} accepted: {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        error = body["error"]
        assert set(error) == {"message", "type", "code"}
        assert error["code"], body
        assert len(error["message"]) > 10, body
        assert "Traceback" not in response.text
    if case.code is not None:
        assert response.json()["error"]["code"] == case.code, f"{case.name}: {response.text[:300]}"


def test_peak_rss_bounded(live_server: LiveServer, hostile_collection: str) -> None:
    """Runs after the corpus (same module, defined last): the server's peak resident memory (VmHWM)."""
    status = Path(f"/proc/{live_server.process.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    peak_mib = int(fields["VmHWM"].split()[0]) // 1024
    now_mib = int(fields["VmRSS"].split()[0]) // 1024
    print(json.dumps({"hostile_corpus_cases": len(CASES), "server_peak_rss_mib": peak_mib, "server_rss_mib": now_mib}))
    assert peak_mib < PEAK_RSS_BOUND_MIB
