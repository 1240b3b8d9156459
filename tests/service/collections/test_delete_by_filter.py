"""``POST /v1/collections/{name}/delete``: delete the documents a metadata filter selects (issue 25). A filter on
a key no document holds is refused (422 ``invalid_filter``) — ``{"typo": {"$ne": 1}}`` would match every
document; ``dry_run`` answers the ids and deletes nothing; an empty filter is refused; the route does not shadow
a document whose id is ``delete``."""

from __future__ import annotations

import httpx

from tests.service.helpers import b64, png_bytes

NAME = "delete-by-filter"


def _collection(client: httpx.Client) -> str:
    client.delete(f"/v1/collections/{NAME}")
    assert client.post("/v1/collections", json={"name": NAME}).status_code == 201
    docs = f"/v1/collections/{NAME}/documents"
    documents = {"a": {"lang": "en", "year": 2019}, "b": {"lang": "de", "year": 2021}, "c": {"lang": "en"}}
    documents["delete"] = {"lang": "fr"}  # the id the route must not shadow
    for i, (doc_id, metadata) in enumerate(documents.items()):
        body = {"image": b64(png_bytes(seed=100 + i)), "document_id": doc_id, "metadata": metadata}
        assert client.post(docs, json=body).status_code == 201
    return f"/v1/collections/{NAME}"


def _ids(client: httpx.Client, path: str) -> list[str]:
    return sorted(d["id"] for d in client.get(f"{path}/documents").json()["data"])


def test_delete_by_filter_dry_run_then_delete(client: httpx.Client) -> None:
    path = _collection(client)
    dry = client.post(f"{path}/delete", json={"filter": {"lang": "en"}, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"object": "documents.deletion", "collection": NAME, "ids": ["a", "c"], "count": 2,
                          "dry_run": True}  # fmt: skip
    assert _ids(client, path) == ["a", "b", "c", "delete"]  # a dry run deletes nothing

    done = client.post(f"{path}/delete", json={"filter": {"year": {"$gte": 2020}}})
    assert (done.status_code, done.json()["ids"], done.json()["dry_run"]) == (200, ["b"], False)
    assert _ids(client, path) == ["a", "c", "delete"]
    none = client.post(f"{path}/delete", json={"filter": {"lang": "xx"}})
    assert (none.status_code, none.json()["ids"]) == (200, [])

    # the route sits beside /search: a document with the id "delete" stays reachable
    assert client.get(f"{path}/documents/delete").json()["id"] == "delete"
    assert client.delete(f"{path}/documents/delete").status_code == 200
    client.delete(path)


def test_delete_by_filter_refuses_what_would_empty_the_collection(client: httpx.Client) -> None:
    path = _collection(client)
    for flt in ({"no_such_key": {"$ne": 1}}, {"no_such_key": {"$exists": False}}, {"lang": "en", "knd": "x"}):
        refused = client.post(f"{path}/delete", json={"filter": flt})
        assert refused.status_code == 422, (flt, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "invalid_filter"
        assert "no document of this collection has the metadata key" in error["message"]
    for body in ({"filter": {}}, {"filter": {"lang": {"$bogus": 1}}}, {}, {"filter": {"lang": "en"}, "x": 1}):
        assert client.post(f"{path}/delete", json=body).status_code == 422, body
    assert _ids(client, path) == ["a", "b", "c", "delete"]  # nothing went
    missing = client.post("/v1/collections/no-such-collection/delete", json={"filter": {"lang": "en"}})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "collection_not_found")
    client.delete(path)


def test_openapi_states_the_filter_language(client: httpx.Client) -> None:
    """The schema states what the filter parser accepts, so a schema-valid filter is accepted (schemathesis)."""
    spec = client.get("/docs/openapi.json").json()
    assert "/v1/collections/{name}/delete" in spec["paths"]
    flt = spec["components"]["schemas"]["DeleteByFilterRequest"]["properties"]["filter"]
    assert flt["minProperties"] == 1
    assert flt["propertyNames"]["pattern"] == r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$"
    operators = flt["additionalProperties"]["anyOf"][1]
    assert set(operators["properties"]) == {"$eq", "$ne", "$in", "$gt", "$gte", "$lt", "$lte", "$exists"}
    assert operators["additionalProperties"] is False
    search = spec["components"]["schemas"]["SearchRequest"]["properties"]["filter"]
    assert any(m.get("propertyNames") == flt["propertyNames"] for m in search["oneOf"])
    create = spec["components"]["schemas"]["CreateCollectionRequest"]
    code_pages, chunks_ocr, code_ocr = create["not"]["anyOf"]  # what service.collections.tasks refuses
    assert code_pages["properties"] == {"task": {"const": "code"}, "unit_kind": {"const": "page"}}
    assert chunks_ocr["properties"]["unit_kind"] == {"const": "chunk"}
    assert (code_ocr["properties"]["task"], code_ocr["properties"]["unit_kind"]) == (
        {"const": "code"},
        {"type": "null"},
    )
