"""The fast-scan pruning of binary and residual pages (``_fastscan.c``, :mod:`colbert.fastscan`).

Three levels: (1) the kernel's uint16 maxima are exactly the integer sums its contract states, on the AVX2 and the
portable build, around every 32-token block tail and at the uint16 limit; (2) the stated bound holds: every page's
exact-kernel score lies within ``fast ± bound``, for every codec with a fast scan, on random and adversarial queries;
(3) pruning changes nothing: the embedded index's top-k (ids, order and float32 scores) is bit for bit the one
without pruning, with ties and with k at or above the number of pages — and pages really are pruned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import colbert._kernel as kernel_mod
from colbert import fastscan
from colbert.codebook import Codebook, train
from colbert.fastscan import FastScan, Pruner, take_pages
from colbert.local import LocalStore
from colbert.local.scan import PageScorer
from colbert.quantize import encode
from colbert.residual import ResidualDocs, ResidualScorer
from colbert.scoring import PackedDocs, maxsim
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

BUILDS = {"native": kernel_mod._FLAGS, "portable": ("-O2", "-shared", "-fPIC", "-march=x86-64")}
LENGTHS = [1, 2, 31, 32, 33, 0, 5, 63, 64, 65, 0, 100, 17, 96]  # every tail of the 32-token block, empty pages


@pytest.fixture(params=list(BUILDS))
def built(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> kernel_mod.Kernel:
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    k = kernel_mod.kernel(BUILDS[request.param])
    if k is None:
        pytest.skip("no C compiler")
    return k


def integer_reference(
    tables: np.ndarray, ctq: np.ndarray | None, ids: np.ndarray | None, codes: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """(N, lanes): per token and lane ctq[id][l] + Σ_i tables[l, 2i, hi nibble] + tables[l, 2i + 1, lo nibble] in
    int64, max over each page's tokens (empty pages 0)."""
    lanes, tables = tables.shape[0], tables.astype(np.int64)
    sums = np.zeros((codes.shape[0], lanes), dtype=np.int64) if ctq is None else ctq[ids][:, :lanes].astype(np.int64)
    for i in range(codes.shape[1]):
        sums += tables[:, 2 * i, codes[:, i] >> 4].T + tables[:, 2 * i + 1, codes[:, i] & 15].T
    out = np.zeros((offsets.shape[0] - 1, lanes), dtype=np.int64)
    for p in range(out.shape[0]):
        if offsets[p + 1] > offsets[p]:
            out[p] = sums[offsets[p] : offsets[p + 1]].max(axis=0)
    return out


def run_kernel(
    k: kernel_mod.Kernel, tables: np.ndarray, ctq: np.ndarray | None, ids: np.ndarray | None, codes: np.ndarray,
    offsets: np.ndarray, ranges: list[tuple[int, int]],
) -> np.ndarray:  # fmt: skip
    lanes = tables.shape[0]
    out = np.full((offsets.shape[0] - 1, lanes), 0xBEEF, dtype=np.uint16)
    ptr = lambda a: None if a is None else int(a.ctypes.data)  # noqa: E731
    for p0, p1 in ranges:
        k.fastscan(
            ptr(tables), ptr(ctq), 0 if ctq is None else ctq.shape[1], lanes, codes.shape[1], ptr(ids), ptr(codes),
            ptr(offsets), p0, p1, ptr(out),
        )  # fmt: skip
    return out


@pytest.mark.parametrize("centroids", [False, True])
@pytest.mark.parametrize("nbytes", [3, 16, 32])  # 3: the scalar transpose; 16, 32: the 16 × 16 byte transposes
@pytest.mark.parametrize("lanes", [1, 7, 32, 33])
def test_kernel_sums_are_the_stated_integers(
    built: kernel_mod.Kernel, centroids: bool, nbytes: int, lanes: int
) -> None:
    rng = np.random.default_rng(nbytes * 100 + lanes * 2 + centroids)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    n = int(offsets[-1])
    tables = rng.integers(0, 256, (lanes, 2 * nbytes, 16)).astype(np.uint8)
    codes = rng.integers(0, 256, (n, nbytes)).astype(np.uint8)
    ctq = ids = None
    if centroids:
        room = 65535 - 255 * 2 * nbytes  # the largest centroid term the contract allows
        ctq = np.zeros((9, -(-lanes // 8) * 8), dtype=np.uint16)
        ctq[:, :lanes] = rng.integers(0, room + 1, (9, lanes))
        ctq[3, :lanes] = room
        ids = rng.integers(0, 9, n).astype(np.uint16)
    want = integer_reference(tables, ctq, ids, codes, offsets)
    np.testing.assert_array_equal(run_kernel(built, tables, ctq, ids, codes, offsets, [(0, len(LENGTHS))]), want)
    cuts = [(0, 3), (3, 4), (4, 11), (11, len(LENGTHS))]  # ranges as the thread pool splits them
    np.testing.assert_array_equal(run_kernel(built, tables, ctq, ids, codes, offsets, cuts), want)


def test_the_uint16_limit_does_not_wrap(built: kernel_mod.Kernel) -> None:
    """Every term at its largest: 65,535 exactly (the saturation-free bound is tight)."""
    nbytes = 16
    tables = np.full((32, 2 * nbytes, 16), 255, dtype=np.uint8)
    ctq = np.full((2, 32), 65535 - 255 * 2 * nbytes, dtype=np.uint16)
    codes = np.full((70, nbytes), 0xFF, dtype=np.uint8)
    ids = np.ones(70, dtype=np.uint16)
    offsets = np.array([0, 33, 70], dtype=np.int64)
    got = run_kernel(built, tables, ctq, ids, codes, offsets, [(0, 2)])
    np.testing.assert_array_equal(got, np.full((2, 32), 65535, dtype=np.uint16))


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out


def _queries(rng: np.random.Generator, d: int) -> list[np.ndarray]:
    """Unit queries, a long one, one with a zero and a huge token, one with a single hot dimension per token."""
    hot = np.zeros((5, d), np.float32)
    hot[np.arange(5), rng.integers(0, d, 5)] = 1.0
    mixed = _unit(rng.standard_normal((6, d)))
    mixed[0] = 0.0
    mixed[1] *= 1e4
    return [_unit(rng.standard_normal((32, d))), _unit(rng.standard_normal((70, d))), mixed, hot]


BOOKS: dict[tuple[int, int], Codebook] = {}


def _book(levels: int, d: int) -> Codebook:
    if (levels, d) not in BOOKS:
        sample = _unit(np.random.default_rng(levels + d).standard_normal((600, d)))
        BOOKS[levels, d] = train(sample, levels, k=16)
    return BOOKS[levels, d]


def _exact_and_docs(
    q: np.ndarray, pages: list[np.ndarray], levels: int | None
) -> tuple[np.ndarray, PackedDocs | ResidualDocs, Codebook | None]:
    d, counts = q.shape[1], [p.shape[0] for p in pages]
    if levels is None:
        packed = PackedDocs.from_encoded(counts, [encode(p, "binary") for p in pages], d, "binary")
        return maxsim(q, packed)[0], packed, None
    book = _book(levels, d)
    docs = ResidualDocs.from_encoded(counts, [book.encode(p) for p in pages], book)
    return ResidualScorer(q, book).scores(docs), docs, book


CODECS = [None, 2, 4, 16]  # binary, then residual bucket levels with 4-bit nibbles


@pytest.mark.parametrize("levels", CODECS)
@pytest.mark.parametrize("d", [128, 20])
def test_every_page_lies_within_the_bound(levels: int | None, d: int) -> None:
    rng = np.random.default_rng(d + (levels or 0))
    pages = [_unit(rng.standard_normal((n, d))) for n in LENGTHS]
    for q in _queries(rng, d):
        exact, docs, book = _exact_and_docs(q, pages, levels)
        scan = FastScan.build(q, d, book)
        assert scan is not None
        lower, upper = scan.bounds(docs)
        assert (lower <= exact).all(), (levels, d, scan.bound)
        assert (exact <= upper).all(), (levels, d, scan.bound)
        assert lower[5] == exact[5] == upper[5] == 0  # an empty page


def test_bound_holds_on_many_random_tables() -> None:
    """Random codes and many random queries (scales from 1e-3 to 1e3): never outside fast ± bound."""
    rng = np.random.default_rng(7)
    d = 128
    offsets = np.arange(0, 40 * 50 + 1, 50, dtype=np.int64)
    bits = rng.integers(0, 256, (int(offsets[-1]), d // 8)).astype(np.uint8)
    book = _book(4, d)
    ids = np.asarray(rng.integers(0, book.k, bits.shape[0]), dtype=np.uint16)
    rdocs = ResidualDocs(ids, bits.repeat(2, axis=1), offsets)
    bdocs = PackedDocs(bits, offsets, dims=d)
    for trial in range(30):
        q = rng.standard_normal((int(rng.integers(1, 40)), d)).astype(np.float32) * np.float32(
            10.0 ** rng.uniform(-3, 3)
        )
        for docs, exact, b in (
            (bdocs, maxsim(q, bdocs)[0], None),
            (rdocs, ResidualScorer(q, book).scores(rdocs), book),
        ):
            lower, upper = FastScan.build(q, d, b).bounds(docs)  # type: ignore[union-attr]
            assert (lower <= exact).all(), trial
            assert (exact <= upper).all(), trial


def test_no_fast_scan_where_bytes_do_not_split_into_nibbles() -> None:
    q = np.ones((2, 20), np.float32)
    assert FastScan.build(q, 20, _book(3, 20)) is None  # ternary: 5 base-3 digits a byte
    assert FastScan.build(np.full((2, 20), np.nan, np.float32), 20) is None
    assert FastScan.build(np.zeros((0, 20), np.float32), 20) is None


def test_take_pages_keeps_the_chosen_pages_in_order() -> None:
    rng = np.random.default_rng(3)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    docs = ResidualDocs(
        np.arange(offsets[-1], dtype=np.uint16), rng.integers(0, 256, (offsets[-1], 2)).astype(np.uint8), offsets
    )
    keep = rng.random(len(LENGTHS)) < 0.5
    got = take_pages(docs, keep)
    want = [p for p in range(len(LENGTHS)) if keep[p]]
    assert len(got) == len(want)
    for i, p in enumerate(want):
        np.testing.assert_array_equal(
            got.ids[got.offsets[i] : got.offsets[i + 1]], docs.ids[offsets[p] : offsets[p + 1]]
        )


# ---- pruning keeps the exact answers --------------------------------------------------------------------------


def _topic_pages(rng: np.random.Generator, n: int, d: int) -> list[np.ndarray]:
    """Pages about 2 of 12 topics (so that scores spread and pruning bites), some repeated (exact ties)."""
    centres = _unit(np.random.default_rng(99).standard_normal((12, d)))
    pages = []
    for _ in range(n):
        mine = rng.choice(12, 2, replace=False)
        length = int(rng.integers(1, 80))
        pages.append(
            _unit(centres[mine[rng.integers(0, 2, length)]] + 0.5 * rng.standard_normal((length, d)) / np.sqrt(d))
        )
    for i in range(0, n, 9):  # duplicates: identical stored codes, identical scores, ties broken by page id
        pages[(i * 7 + 3) % n] = pages[i]
    return pages


def _blocks(config: CollectionConfig, pages: list[np.ndarray], book: Codebook | None, size: int) -> list:  # type: ignore[type-arg]
    blobs = [book.encode(p) if book is not None else encode(p, config.codec) for p in pages]
    ids = np.arange(len(pages), dtype=np.int64) * 3 + 1
    return [
        (ids[s : s + size], [p.shape[0] for p in pages[s : s + size]], blobs[s : s + size])
        for s in range(0, len(pages), size)
    ]


@pytest.mark.parametrize("codec", ["binary", "residual2", "residual1"])
@pytest.mark.parametrize("k", [1, 3, 10, 120, 200])  # 120: every page; 200: more than there are
def test_pruned_top_k_is_the_exact_top_k(codec: str, k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    d, n = 64, 120
    rng = np.random.default_rng(k)
    pages = _topic_pages(rng, n, d)
    config = CollectionConfig(8, d, codec=codec)  # type: ignore[arg-type]
    book = None if codec == "binary" else _book(4 if codec == "residual2" else 2, d)
    scans: list[FastScan] = []
    real_build = FastScan.build

    def spy(*args: object, **kwargs: object) -> FastScan | None:
        scan = real_build(*args, **kwargs)  # type: ignore[arg-type]
        scans.append(scan)  # type: ignore[arg-type]
        return scan

    for size in (7, 50, n):  # block sizes: the floor from earlier blocks and the k-th lower bound within one
        blocks = _blocks(config, pages, book, size)
        for query in (pages[4][:9] + 0.01, pages[40][:32] + 0.01, _unit(rng.standard_normal((5, d)))):
            scorer = PageScorer(config, size, lambda: book)
            monkeypatch.setattr(fastscan.FastScan, "build", classmethod(lambda cls, *a, **kw: None))
            want_ids, want_scores = scorer.top_of(query, k, blocks)
            monkeypatch.setattr(fastscan.FastScan, "build", staticmethod(spy))
            got_ids, got_scores = scorer.top_of(query, k, blocks)
            np.testing.assert_array_equal(got_ids, want_ids)
            assert got_scores.dtype == want_scores.dtype == np.float32
            np.testing.assert_array_equal(got_scores.view(np.uint32), want_scores.view(np.uint32))  # bit for bit
    assert scans
    assert all(s is not None for s in scans)
    if k <= 10:  # the fast scan pruned pages (this test is not vacuous)
        assert sum(s.pages_kept for s in scans) < sum(s.pages_seen for s in scans)


@pytest.mark.parametrize("codec", ["binary", "residual2"])
def test_store_search_is_unchanged_by_pruning(tmp_path: Path, codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    d = 32
    pages = _topic_pages(np.random.default_rng(5), 60, d)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(8, d, codec=codec))  # type: ignore[arg-type]
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [UnitRecord(0, np.ones(8, np.float32), p)])
    results: list[list[tuple[str, float]]] = []
    for build in (classmethod(lambda cls, *a, **kw: None), FastScan.__dict__["build"]):
        monkeypatch.setattr(fastscan.FastScan, "build", build)
        for exhaustive in (True, False):
            hits = store.search(Query(pages[11][:8], None), SearchOptions(k=5, exhaustive=exhaustive))
            results.append([(h.doc_id, h.score) for h in hits])
    store.close()
    assert results[:2] == results[2:]


def test_pruner_passes_other_codecs_through() -> None:
    q = np.ones((2, 4), np.float32)
    assert not Pruner(q, 10, "float16", 4).active
    assert not Pruner(q, 10, "int8", 4).active
    assert not Pruner(q, 0, "binary", 4).active
    assert Pruner(q, 10, "binary", 4).active
