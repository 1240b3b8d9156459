"""``service.client`` against the live test server: every route the client wraps, typed results, progress of
an upload followed through its job, errors carried from the server's JSON body, env configuration, and the
async client giving the same answers as the sync one."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.client import AsyncClient, Client, ClientError, Document, Job, Region, SearchResults
from service.client.types import Collection, build
from tests.service.conftest import LiveServer
from tests.service.helpers import pdf_bytes


@pytest.fixture(scope="module")
def api(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.api_key) as c:
        yield c


@pytest.fixture(scope="module")
def reports(api: Client) -> str:
    """A collection with one 2-page PDF (uploaded through the job flow)."""
    api.create_collection("client-reports", codec="float16")
    seen: list[Job] = []
    doc = api.upload(
        "client-reports", pdf_bytes(2), filename="q1.pdf", metadata={"year": 2024}, on_progress=seen.append
    )
    assert doc.id == "q1.pdf"
    assert doc.pages == 2
    assert doc.metadata["year"] == 2024
    assert seen, "on_progress sees the job after each poll"
    assert all(isinstance(j, Job) for j in seen)
    return "client-reports"


def test_collections_roundtrip(api: Client, reports: str) -> None:
    names = [c.name for c in api.list_collections()]
    assert reports in names
    got = api.get_collection(reports)
    assert isinstance(got, Collection)
    assert got.documents == 1
    assert got.pages == 2
    assert got.codec == "float16"
    assert got.cells is None  # no pooled_ivf cells until train_cells
    api.create_collection("client-tmp")
    assert api.vacuum("client-tmp").collection == "client-tmp"
    with pytest.raises(ClientError) as empty:
        api.train_cells("client-tmp")
    assert (empty.value.status, empty.value.code) == (422, "invalid_document")
    trained = api.train_cells(reports, cells=2)
    assert (trained.collection, trained.cells, trained.units_filed) == (reports, 2, 2)
    assert api.get_collection(reports).cells == 2
    assert api.delete_collection("client-tmp").deleted is True
    with pytest.raises(ClientError) as caught:
        api.get_collection("client-tmp")
    assert (caught.value.status, caught.value.code) == (404, "collection_not_found")
    assert "client-tmp" in caught.value.message


def test_documents(api: Client, reports: str) -> None:
    listing = api.list_documents(reports, limit=10)
    assert listing.total == 1
    assert [d.id for d in listing.data] == ["q1.pdf"]
    doc = api.get_document(reports, "q1.pdf")
    assert doc.page_numbers == [1, 2]
    patched = api.patch_document(reports, "q1.pdf", {"lang": "en"})
    assert (patched.metadata["lang"], patched.metadata["year"]) == ("en", 2024)  # merged, not replaced
    jobs = api.list_jobs(reports)
    assert jobs
    assert jobs[0].document_id == "q1.pdf"
    assert jobs[0].status == "succeeded"
    assert api.get_job(reports, jobs[0].id).id == jobs[0].id
    assert api.document_file(reports, "q1.pdf").startswith(b"%PDF-")  # originals are kept by default


def test_upload_a_path_and_delete(api: Client, reports: str, tmp_path: Path) -> None:
    path = tmp_path / "one.pdf"
    path.write_bytes(pdf_bytes(1))
    doc = api.upload(reports, path, document_id="from-path", metadata={"k": 1})
    assert isinstance(doc, Document)
    assert doc.id == "from-path"
    assert doc.pages == 1
    assert api.delete_document(reports, "from-path").deleted
    with pytest.raises(ClientError) as caught:
        api.get_document(reports, "from-path")
    assert caught.value.code == "document_not_found"


def test_a_failed_job_raises_its_error(api: Client, reports: str) -> None:
    with pytest.raises(ClientError) as caught:
        api.upload(reports, b"%PDF-1.4 not really a pdf", filename="broken.pdf")
    assert caught.value.code in {"invalid_pdf", "pdf_damaged", "unsupported_media_type"}


def test_search_with_options(api: Client, reports: str) -> None:
    found = api.search(
        reports,
        "quarterly report",
        mode="hybrid",
        top_k=2,
        include_text=True,
        include_similarity_map=True,
        highlight=True,
        regions=True,
        filter={"year": 2024},
    )
    assert isinstance(found, SearchResults)
    assert found.collection == reports
    assert {(h.document_id, h.page) for h in found.results} == {("q1.pdf", 1), ("q1.pdf", 2)}
    hit = found.results[0]
    assert hit.text is not None
    assert "Quarterly report" in hit.text
    assert hit.similarity_map is not None
    assert len(hit.similarity_map.maps) == len(hit.similarity_map.tokens)
    assert hit.highlights
    assert {b.word.lower() for b in hit.highlights} >= {"quarterly"}
    assert hit.regions  # typed: Region, text ones (lines holding query words) first
    assert isinstance(hit.regions[0], Region)
    assert hit.regions[0].source == "text"
    assert "Quarterly report" in hit.regions[0].text
    assert hit.regions[0].bbox is not None
    assert len(hit.regions[0].bbox) == 4
    assert api.search(reports, "quarterly", filter={"year": 1999}).results == []
    like = api.search(reports, like=("q1.pdf", 1), top_k=1)
    assert (like.results[0].document_id, like.results[0].page) == ("q1.pdf", 1)  # a page is most like itself
    with pytest.raises(ClientError) as caught:
        api.search(reports, "x", top_k=0)
    assert caught.value.status == 422


def test_pages(api: Client, reports: str) -> None:
    page = api.page_image(reports, "q1.pdf", 1)
    full = Image.open(io.BytesIO(page))
    assert full.format == "PNG"  # rendered from the kept PDF (originals are kept by default: page_images)
    thumb = Image.open(io.BytesIO(api.page_image(reports, "q1.pdf", 1, size="thumbnail")))
    assert thumb.format == "JPEG"
    assert max(thumb.size) <= max(full.size)
    sim = api.page_similarity(reports, "q1.pdf", 2, "report", highlight=True, regions=True)
    assert sim.page == 2
    assert sim.regions is not None
    assert sim.regions[0].source == "text"
    assert "report" in sim.regions[0].text.lower()
    assert api.page_similarity(reports, "q1.pdf", 2, "report").regions is None  # only when asked
    assert sim.similarity_map.rows * 28 == full.size[1]
    assert sim.highlights is not None
    assert [b.word for b in sim.highlights] == ["report"]


def test_embeddings_and_rerank(api: Client) -> None:
    out = api.embed(["hello", "world"], task="retrieval.query", dimensions=32)
    assert [e.index for e in out.data] == [0, 1]
    assert len(out.data[0].embedding) == 32
    multi = api.embed(["hello"], task="retrieval.query", return_multivector=True)
    assert len(multi.data[0].embeddings) >= 1
    ranked = api.rerank("hello", ["hello", "something else entirely"], top_n=2)
    assert sorted(r.index for r in ranked.results) == [0, 1]


def test_key_and_url_from_the_environment(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JEV4_URL", live_server.url)
    monkeypatch.setenv("JEV4_API_KEY", live_server.api_key)
    with Client() as c:
        assert isinstance(c.list_collections(), list)
    monkeypatch.setenv("JEV4_API_KEY", "wrong")
    with Client() as c, pytest.raises(ClientError) as caught:
        c.list_collections()
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")


def test_unreachable_server_is_a_client_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with Client("http://127.0.0.1:9", "k", transport=httpx.MockTransport(refuse)) as c, pytest.raises(ClientError) as e:
        c.list_collections()
    assert e.value.status is None
    assert e.value.code == "unreachable"


def test_unknown_fields_are_kept_not_fatal() -> None:
    raw = {"name": "a", "dimensions": 8, "multivector_dimensions": 4, "codec": "int8", "pool_factor": 1,
           "documents": 0, "pages": 0, "new_field_of_a_later_server": [1]}  # fmt: skip
    got = build(Collection, raw)
    assert got.name == "a"
    assert got.extra == {"new_field_of_a_later_server": [1]}


def test_async_client_matches_sync(api: Client, live_server: LiveServer, reports: str) -> None:
    async def run() -> tuple[list[str], list[tuple[str, int]], Document]:
        async with AsyncClient(live_server.url, live_server.api_key) as a:
            names = [c.name for c in await a.list_collections()]
            hits = await a.search(reports, "quarterly report", mode="text", top_k=5)
            doc = await a.upload(reports, pdf_bytes(1), document_id="async-doc")
            return names, [(h.document_id, h.page) for h in hits.results], doc

    sync_hits = [(h.document_id, h.page) for h in api.search(reports, "quarterly report", mode="text", top_k=5).results]
    names, hits, doc = asyncio.run(run())
    assert names == [c.name for c in api.list_collections()]
    assert hits == sync_hits
    assert doc.id == "async-doc"
    assert api.delete_document(reports, "async-doc").deleted
