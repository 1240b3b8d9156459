"""The scorer's blocks never change a score: the kernel paths' page blocks, the token blocks walked before, small
blocks of either kind, and one prepared query reused over many batches (the index's scan) give the same float32
bits; the kernel paths' memory stays within the stated bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colbert._kernel as kernel_mod
import colbert.query_scorer as query_scorer
from colbert.local import LocalOptions, LocalStore
from colbert.quantize import CODEBOOK_FREE, Codec, encode
from colbert.query_scorer import QueryScorer
from colbert.scoring import PackedDocs, maxsim
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_maxsim_codecs import fill_pages

CODECS = [*CODEBOOK_FREE, "bfloat16"]


@pytest.fixture(params=["kernel", "portable", "torch"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "torch":
        monkeypatch.setattr(kernel_mod, "enabled", False)
    elif request.param == "portable":
        built = kernel_mod.kernel(("-O2", "-shared", "-fPIC", "-march=x86-64"))
        if built is None:
            pytest.skip("no C compiler")
        monkeypatch.setattr(kernel_mod, "kernel", lambda: built)
    elif kernel_mod.kernel() is None:
        pytest.skip("no C compiler")
    return str(request.param)


def _packed(codec: str, lengths: list[int], rng: np.random.Generator, d: int = 128) -> PackedDocs:
    docs = [rng.standard_normal((n, d)).astype(np.float32) for n in lengths]
    docs = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in docs]
    if codec == "bfloat16":
        return PackedDocs.from_list(docs, dtype="bfloat16")
    return PackedDocs.from_encoded(lengths, [encode(x, codec) for x in docs], d, codec)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("codec", CODECS)
def test_page_blocks_score_as_token_blocks(backend: str, codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 0–1,500 tokens (empty ones at block edges), queries of 32, 33 and 0 tokens: the default blocks,
    token blocks (the old walk's kind; 4,096 tokens here, several blocks: a page's score depends only on its own
    tokens, whatever the block size, and the portable build is too slow for the old 32k-token blocks' page count),
    blocks of 7 pages and blocks of 1,000 tokens all give the same bits."""
    rng = np.random.default_rng(11)
    lengths = [int(n) for n in rng.integers(0, 1500, size=24)]
    lengths[6] = lengths[7] = lengths[13] = 0
    packed = _packed(codec, lengths, rng)
    qs = [rng.standard_normal((n, 128)).astype(np.float32) for n in (32, 33, 0)]
    old = maxsim(qs, packed, block_tokens=4096)
    assert sum(lengths) > 2 * 4096  # the token walk took several blocks
    new = maxsim(qs, packed)
    np.testing.assert_array_equal(_bits(new), _bits(old))
    assert (new[2] == 0).all()
    assert (new[:, 6] == 0).all()
    np.testing.assert_array_equal(_bits(maxsim(qs, packed, block_tokens=1000)), _bits(old))
    monkeypatch.setattr(query_scorer, "KERNEL_BLOCK_ELEMENTS", 96 * 7)  # 96 lanes: 7 pages a block
    np.testing.assert_array_equal(_bits(maxsim(qs, packed)), _bits(old))


@pytest.mark.parametrize("codec", CODECS)
def test_one_scorer_over_many_batches(backend: str, codec: str) -> None:
    """A scorer prepared once and reused over batches (the index's blocks) scores each as a fresh maxsim does."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal((20, 128)).astype(np.float32)
    scorer = QueryScorer([q])
    for n in (1, 40, 3):
        packed = _packed(codec, [int(x) for x in rng.integers(0, 300, size=n)], rng)
        np.testing.assert_array_equal(_bits(scorer.maxsim(packed)), _bits(maxsim(q, packed)))


def test_kernel_blocks_are_pages_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default blocks on the kernel: pages × lanes ≤ KERNEL_BLOCK_ELEMENTS per call whatever the page lengths;
    tokens the kernel cannot read in place (float64 here) keep token blocks."""
    if kernel_mod.kernel() is None:
        pytest.skip("no C compiler")
    seen: list[tuple[int, int]] = []
    real = kernel_mod.run_pages

    def spy(offsets: np.ndarray, call: object, **kw: int) -> None:
        seen.append((offsets.shape[0] - 1, int(offsets[-1] - offsets[0])))
        real(offsets, call, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel_mod, "run_pages", spy)
    monkeypatch.setattr(query_scorer, "KERNEL_BLOCK_ELEMENTS", 32 * 10)
    docs = [np.ones((n, 4), np.float32) for n in [3000, 1, 1, 2] * 8]
    np.testing.assert_allclose(maxsim(np.ones((3, 4), np.float32), docs), 12.0)
    assert len(seen) == 4
    assert max(pages for pages, _ in seen) == 10
    seen.clear()
    monkeypatch.setattr(query_scorer, "_MAX_SCORE_ELEMENTS", 3 * 3002)  # token blocks of 3,002 tokens
    wide = PackedDocs(np.ones((3004 * 8, 4), np.float64), np.cumsum([0] + [3000, 1, 1, 2] * 8))
    np.testing.assert_allclose(maxsim(np.ones((3, 4), np.float32), wide), 12.0)
    assert len(seen) > 8
    assert max(tokens for _, tokens in seen) <= 3002


def test_in_place_reads() -> None:
    f32 = PackedDocs(np.ones((4, 8), np.float32), np.array([0, 4]))
    strided = PackedDocs(np.ones((4, 16), np.float32)[:, ::2], np.array([0, 4]))
    bf16 = PackedDocs.from_list([np.ones((4, 8), np.float32)], dtype="bfloat16")
    half = PackedDocs(torch.ones((4, 8), dtype=torch.float16), np.array([0, 4]))
    assert query_scorer._reads_in_place(f32)
    assert query_scorer._reads_in_place(bf16)
    assert not query_scorer._reads_in_place(strided)
    assert not query_scorer._reads_in_place(half)


@pytest.mark.parametrize("codec", list(CODEBOOK_FREE))
def test_index_scan_scores_as_one_maxsim_call(tmp_path: Path, codec: str) -> None:
    """The index's exhaustive scan in blocks of 3 pages (one scorer over all of them) returns, bit for bit, the
    scores of one maxsim call over all the stored pages."""
    rng = np.random.default_rng(9)
    config = CollectionConfig(dense_dim=8, multivector_dim=24, codec=Codec(codec))
    store = LocalStore.create(tmp_path / codec, config, LocalOptions(scan_block_pages=3))
    pages = fill_pages(store, rng, 11)
    q = rng.standard_normal((9, 24)).astype(np.float32)
    hits = store.search(Query(q, None), SearchOptions(k=11, exhaustive=True))
    packed = PackedDocs.from_encoded([p.shape[0] for p in pages], [encode(p, codec) for p in pages], 24, codec)
    want = maxsim(q, packed)[0]
    assert sorted(h.doc_id for h in hits) == sorted(f"d{i}" for i in range(11))
    for hit in hits:
        assert np.float32(hit.score) == want[int(hit.doc_id[1:])]
    store.close()


@pytest.mark.parametrize("name", ["float", "fixed", "binary"])
def test_prepared_forms_start_on_cache_lines(name: str) -> None:
    """The kernels' query forms start on 64-byte boundaries (split loads cost) and hold the values unchanged."""
    q = np.random.default_rng(2).standard_normal((45, 24)).astype(np.float32)
    scorer = QueryScorer([q])
    padded = np.zeros((64, 24), np.float32)
    padded[:45] = q
    want = {
        "float": (padded.reshape(2, 32, 24).transpose(0, 2, 1),),
        "fixed": query_scorer.fixed_point(padded),
        "binary": (query_scorer.sign_tables(padded, 24, scorer.kernel.lut_lanes if scorer.kernel else 32),),
    }[name]
    for got, ref in zip(scorer._form(name), want, strict=True):
        assert got.ctypes.data % 64 == 0
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, ref)
    assert kernel_mod.aligned(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_residual_tables_start_on_cache_lines() -> None:
    from colbert.codebook import train
    from colbert.residual import ResidualScorer

    rng = np.random.default_rng(4)
    sample = rng.standard_normal((256, 16)).astype(np.float32)
    scorer = ResidualScorer(rng.standard_normal((5, 16)).astype(np.float32), train(sample, 4, k=8))
    if scorer.kernel is None:
        pytest.skip("no C compiler")
    assert scorer.lut.ctypes.data % 64 == 0
    assert scorer.ct.ctypes.data % 64 == 0
