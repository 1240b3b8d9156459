"""A collection being opened (slow for a large one) holds up no other collection's requests; one open per name;
a delete or close racing with an open leaves no handle open and hands no getter a closed store; a warm-up opens
every collection with what its first stage holds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from colbert.catalog import Catalog
from colbert.errors import CollectionNotFoundError, IndexFormatError, StoreClosedError
from colbert.local import LocalOptions
from colbert.quantize import Codec
from colbert.store import CollectionConfig, Store
from tests.colbert.test_residual_store import DENSE, D, record, topic_pages

CFG = CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32)
WAIT_S = 10.0  # far above any real wait here; reached only when something is stuck


class GatedOpens:
    """The catalog's backend ``open`` of ``gated`` held until :meth:`release` (what loading a large collection
    does for seconds); every open is counted and every store it made of ``gated`` is kept."""

    def __init__(self, catalog: Catalog, gated: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gated = gated
        self.started = threading.Event()
        self._release = threading.Event()
        self.calls: list[str] = []
        self.made: list[Store] = []
        self.fail_next: BaseException | None = None
        real = catalog.backend.open

        def open_(name: str) -> Store:
            self.calls.append(name)
            if name == gated:
                self.started.set()
                assert self._release.wait(WAIT_S), "the gated open was never released"
                if self.fail_next is not None:
                    failure, self.fail_next = self.fail_next, None
                    raise failure
            store = real(name)
            if name == gated:
                self.made.append(store)
            return store

        monkeypatch.setattr(catalog.backend, "open", open_)

    def release(self) -> None:
        self._release.set()


class Call:
    """``fn()`` in a thread of its own; its result or error once joined."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = WAIT_S) -> bool:
        """Whether it finished within ``timeout``."""
        self.thread.join(timeout)
        return not self.thread.is_alive()


def _closed(store: Store) -> bool:
    try:
        store.count()
    except StoreClosedError:
        return True
    return False


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    """A catalog over two existing collections, neither open yet (a restarted server); no thread outlives it."""
    before = set(threading.enumerate())
    with Catalog(tmp_path) as first:
        first.create("big", CFG)
        first.create("small", CFG)
    cat = Catalog(tmp_path)
    try:
        yield cat
    finally:
        cat.close()
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        assert not left, f"threads left running: {left}"


def test_another_collection_is_served_while_one_opens(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = GatedOpens(catalog, "big", monkeypatch)
    big = Call(lambda: catalog.get("big"))
    try:
        assert gate.started.wait(WAIT_S)
        small = Call(lambda: catalog.get("small"))
        assert small.join(2.0), "get('small') waited for the open of 'big'"
        assert small.error is None
        assert isinstance(small.result, Store)
        assert small.result.count() == (0, 0)
        assert big.thread.is_alive()  # still opening
    finally:
        gate.release()
    assert big.join()
    assert big.error is None
    assert catalog.get("big") is big.result
    assert gate.calls == ["big", "small"]


def test_concurrent_gets_of_one_name_share_one_open(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = GatedOpens(catalog, "big", monkeypatch)
    first = Call(lambda: catalog.get("big"))
    assert gate.started.wait(WAIT_S)
    others = [Call(lambda: catalog.get("big")) for _ in range(3)]
    assert not others[0].join(0.3)  # they wait for the open under way
    gate.release()
    calls = [first, *others]
    assert all(c.join() for c in calls)
    assert [c.error for c in calls] == [None] * 4
    assert all(c.result is first.result for c in calls)
    assert gate.calls == ["big"]  # opened once: no second handle made and leaked
    assert catalog.get("big") is first.result
    assert not _closed(first.result)


def test_a_failed_open_is_tried_again_by_the_next_getter(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = GatedOpens(catalog, "big", monkeypatch)
    gate.fail_next = OSError("disk hiccup")
    first = Call(lambda: catalog.get("big"))
    assert gate.started.wait(WAIT_S)
    waiting = Call(lambda: catalog.get("big"))
    assert not waiting.join(0.3)
    gate.release()
    assert first.join()
    assert isinstance(first.error, OSError)
    assert waiting.join()
    assert waiting.error is None
    assert gate.calls == ["big", "big"]
    assert catalog.get("big") is waiting.result


def test_a_delete_during_the_open_wins(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The getters of a collection deleted while it was being opened get ``CollectionNotFoundError`` (the delete
    waits for the open, then drops the collection); the handle the open made is closed, none is kept."""
    gate = GatedOpens(catalog, "big", monkeypatch)
    getter = Call(lambda: catalog.get("big"))
    assert gate.started.wait(WAIT_S)
    deleter = Call(lambda: catalog.delete("big"))
    assert not deleter.join(0.3)  # it waits for the open: the files are not removed under an opening handle
    late = Call(lambda: catalog.get("big"))  # a get after the delete began
    gate.release()
    assert deleter.join()
    assert deleter.error is None
    assert deleter.result is True
    assert getter.join()
    assert isinstance(getter.error, CollectionNotFoundError)
    assert late.join()
    assert isinstance(late.error, CollectionNotFoundError)
    assert len(gate.made) == 1
    assert _closed(gate.made[0])
    with pytest.raises(CollectionNotFoundError):
        catalog.get("big")
    assert [c.name for c in catalog.list()] == ["small"]
    catalog.create("big", CFG)  # the name is free again, no stale handle in the way
    assert catalog.get("big").count() == (0, 0)


def test_close_during_the_open_closes_what_it_opened(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = GatedOpens(catalog, "big", monkeypatch)
    small = catalog.get("small")
    getter = Call(lambda: catalog.get("big"))
    assert gate.started.wait(WAIT_S)
    closer = Call(catalog.close)
    assert not closer.join(0.3)  # it waits for the open, as it waited for the lock held by one
    gate.release()
    assert closer.join()
    assert closer.error is None
    assert getter.join()
    assert isinstance(getter.error, StoreClosedError)
    assert len(gate.made) == 1
    assert _closed(gate.made[0])
    assert _closed(small)


def test_warm_opens_every_collection_with_what_its_first_stage_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    options = LocalOptions(first_stage="pooled_ivf")
    with Catalog(tmp_path, local_options=options) as first:
        store = first.create("cells", CollectionConfig(DENSE, D, codec=Codec.INT8))
        for i, page in enumerate(topic_pages(2, 40)):
            store.add_document(f"d{i}", [record(page)])
        first.train_cells("cells", 8)
        first.create("empty", CFG)
    with Catalog(tmp_path, local_options=options) as cold:
        assert cold.get("cells").stats().ivf_memory_bytes == 0  # without a warm-up, the first search loads them
    with Catalog(tmp_path, local_options=options) as cat:
        opened: list[str] = []
        real = cat.backend.open

        def counted(name: str) -> Store:
            opened.append(name)
            return real(name)

        monkeypatch.setattr(cat.backend, "open", counted)
        assert cat.warm(threading.Event()) == ["cells", "empty"]
        assert cat.get("cells").stats().ivf_memory_bytes > 0
        cat.get("empty")
        assert opened == ["cells", "empty"]  # the requests find them open
    with Catalog(tmp_path, local_options=options) as cat:
        stop = threading.Event()
        stop.set()
        assert cat.warm(stop) == []

        def damaged(name: str) -> Store:
            raise IndexFormatError(f"{name}: bad")

        monkeypatch.setattr(cat.backend, "open", damaged)
        with caplog.at_level(logging.WARNING, logger="colbert.catalog"):
            assert cat.warm(threading.Event()) == []  # each is logged and left for its first request
        assert "collection 'cells' not warmed up: cells: bad" in caplog.text
        assert "collection 'empty' not warmed up" in caplog.text
