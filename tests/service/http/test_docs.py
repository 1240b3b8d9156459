"""``/docs`` works offline: the Swagger UI page names no outside host and its assets come from this server;
the schema documents the real error body and the upload route's multipart form."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from tests.service.conftest import LiveServer


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_page_loads_everything_from_this_server(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as anon:  # docs stay open when API keys are set
        for path in ("/docs", "/docs/swagger"):
            page = anon.get(path)
            assert page.status_code == 200
            parser = _Links()
            parser.feed(page.text)
            assert parser.urls, "the page loads no assets at all"
            # Before: swagger-ui-bundle.js, its CSS and the favicon came from cdn.jsdelivr.net (blank offline).
            assert not re.search(r"(src|href)=['\"](https?:)?//", page.text), parser.urls
            for url in parser.urls:
                assert url.startswith("/docs/assets/"), url
                asset = anon.get(url)
                assert asset.status_code == 200, url
                assert len(asset.content) > 100, url
            scripts = [u for u in parser.urls if u.endswith(".js")]
            assert any(u.endswith("/swagger-ui-bundle.js") for u in scripts)
            assert b"SwaggerUIBundle" in anon.get(scripts[0]).content


def test_schema_documents_the_real_error_body(client: httpx.Client) -> None:
    schema = client.get("/docs/openapi.json").json()
    components = schema["components"]["schemas"]
    assert set(components["ErrorResponse"]["required"]) == {"error", "detail"}
    detail = components["ErrorDetail"]
    assert set(detail["properties"]) == {"message", "type", "code"}
    errors = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if int(status) < 400:
                    continue
                errors += 1
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorResponse", (path, method, status)
    assert errors >= 10
    # the error body the schema promises is the one the server sends
    real = client.post("/v1/embeddings", json={"input": ["x"], "dimensions": 7})
    assert real.status_code == 422
    assert set(real.json()) == {"error", "detail"}
    assert real.json()["detail"] == real.json()["error"]["message"]
    assert set(real.json()["error"]) == set(detail["required"])


def test_upload_route_documents_multipart_and_json(client: httpx.Client) -> None:
    schema = client.get("/docs/openapi.json").json()
    body = schema["paths"]["/v1/collections/{name}/documents"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    file_part = {"type": "string", "format": "binary", "minLength": 1, "description": "The PDF or image"}
    assert form["properties"]["file"] == file_part  # an empty file is refused (422 empty_input)
    assert form["required"] == ["file"]
    assert {"metadata", "document_id", "pages", "replace"} <= set(form["properties"])
    assert {"pdf", "image", "metadata"} <= set(body["content"]["application/json"]["schema"]["properties"])
