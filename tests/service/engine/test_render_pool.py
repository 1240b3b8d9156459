"""The render pool (``service/engine/render_pool.py``): pages render in worker processes; a page over its budget
is refused naming the page and the setting, its worker is replaced, and errors come back with their types."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from model.errors import PageSelectionError, PdfError
from service.engine import render_pool
from service.engine.render_pool import RenderPool, RenderTimeoutError
from tests.service.helpers import pdf_bytes
from tests.service.http.test_hostile_work import _hostile_pdf


@pytest.fixture
def pool() -> Iterator[RenderPool]:
    made = RenderPool(1, page_timeout_s=2.0)
    try:
        yield made
    finally:
        made.close()


def test_pages_render_in_the_workers_like_in_process(pool: RenderPool) -> None:
    data = pdf_bytes(3)
    pages = render_pool.render_pages(data, pool=pool, dpi=36, pages="2-3")
    direct = render_pool.pdf_mod.render_pages(data, dpi=36, pages="2-3")
    assert [p.page_number for p in pages] == [2, 3]
    assert [p.image.tobytes() for p in pages] == [p.image.tobytes() for p in direct]
    assert render_pool.count_pages(data, pool=pool) == 3
    with pytest.raises(PageSelectionError):  # the worker's error, with its type
        render_pool.render_pages(data, pool=pool, pages="7")
    with pytest.raises(PdfError):
        render_pool.count_pages(b"%PDF-1.4 not really", pool=pool)


def test_a_page_over_budget_is_refused_and_its_worker_replaced(pool: RenderPool) -> None:
    render_pool.count_pages(pdf_bytes(1), pool=pool)  # the worker is started (its start is no page's budget)
    start = time.perf_counter()
    with pytest.raises(RenderTimeoutError) as info:
        render_pool.render_pages(_hostile_pdf(100_000), pool=pool, dpi=36)
    assert time.perf_counter() - start < 2.0 + 3.0
    assert info.value.code == "render_timeout"
    assert "page 1" in info.value.message
    assert "JEV4_RENDER_PAGE_TIMEOUT_S" in info.value.message
    assert len(render_pool.render_pages(pdf_bytes(2), pool=pool, dpi=36)) == 2  # a new worker took its place


def test_without_a_pool_pages_render_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_worker(*_args: object) -> None:
        raise AssertionError("a worker was asked although no pool was given")

    monkeypatch.setattr(RenderPool, "call", no_worker)
    assert len(render_pool.render_pages(pdf_bytes(1), pool=None, dpi=36)) == 1
    assert render_pool.count_pages(pdf_bytes(2), pool=None) == 2


def test_the_page_converter_renders_in_the_pool_it_is_given(pool: RenderPool, monkeypatch: pytest.MonkeyPatch) -> None:
    """No module global: the indexer's options carry the runtime's pool down to the PDF converter."""
    from service.collections.converters import pdf
    from service.collections.indexing import IndexOptions
    from service.limits import InputLimits
    from service.settings import Settings

    asked: list[str] = []
    real = RenderPool.call

    def call(self: RenderPool, op: str, *args: object) -> object:
        asked.append(op)
        return real(self, op, *args)

    monkeypatch.setattr(RenderPool, "call", call)
    s = Settings()
    options = IndexOptions.from_settings(s, InputLimits.from_settings(s), retry_after_s=1, render_pool=pool)
    limits = options.page_limits
    data = pdf_bytes(2)
    assert pdf.CONVERTER.count(data, limits) == 2
    assert len(pdf.CONVERTER.load(data, [2], limits)) == 1
    assert asked == ["count", "render"]
    assert not hasattr(render_pool, "installed")
