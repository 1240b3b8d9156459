"""MaxSim over every storage codec equals a naive float64 loop over the stored (decoded) values: the compiled
kernel (AVX-512 and portable builds) and the torch fallback; the index's scan scores stored pages the same way."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colbert._kernel as kernel_mod
from colbert.errors import CodecError, InvalidDocumentError
from colbert.local import LocalStore
from colbert.quantize import CODEBOOK_FREE, Codec, decode, encode
from colbert.scoring import PackedDocs, maxsim
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

CODECS = [*CODEBOOK_FREE, "bfloat16"]
PORTABLE = ("-O2", "-shared", "-fPIC", "-march=x86-64")


def naive(q: np.ndarray, d: np.ndarray) -> float:
    if d.shape[0] == 0 or q.shape[0] == 0:
        return 0.0
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


def stored(docs: list[np.ndarray], codec: str) -> tuple[PackedDocs, list[np.ndarray]]:
    """The packed documents under ``codec`` and the float32 values they store (what must be scored)."""
    d = docs[0].shape[1]
    if codec == "bfloat16":
        packed = PackedDocs.from_list(docs, dtype="bfloat16")
        assert isinstance(packed.tokens, torch.Tensor)
        values = [packed.tokens[a:b].float().numpy() for a, b in itertools.pairwise(packed.offsets)]
        return packed, values
    blobs = [encode(x, codec) for x in docs]
    values = [decode(b, x.shape[0], d, codec) for b, x in zip(blobs, docs, strict=True)]
    return PackedDocs.from_encoded([x.shape[0] for x in docs], blobs, d, codec), values


def tolerance(qs: list[np.ndarray], values: list[np.ndarray], codec: str) -> np.ndarray:
    """(Q, N) bound on |maxsim − naive|: float32 summation (binary: table entries rounded once, then summed), plus
    for int8 the query's fixed point (each component within max|q_i| / (2·127·65,536) of q, so each similarity within
    that times ‖doc token‖₁)."""
    out = np.zeros((len(qs), len(values)))
    for i, q in enumerate(qs):
        for j, v in enumerate(values):
            if not q.size or not v.size:
                continue
            mag = np.abs(q).sum(axis=1)[:, None] * np.abs(v).sum(axis=1)[None, :]  # (Lq, Ld) Σ|q_k d_k| bound
            out[i, j] = 4e-6 * mag.max(axis=1).sum() + 1e-6
            if codec == "int8":
                fixed = np.abs(q).max(axis=1) / (127 * 65536) * 0.5  # (Lq,) per-component rounding
                out[i, j] += (fixed[:, None] * np.abs(v).sum(axis=1)[None, :]).max(axis=1).sum() * 1.01
    return out


@pytest.fixture(params=["kernel", "portable", "torch"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "torch":
        monkeypatch.setattr(kernel_mod, "enabled", False)
    elif request.param == "portable":
        built = kernel_mod.kernel(PORTABLE)
        if built is None:
            pytest.skip("no C compiler")
        assert not built.avx512
        monkeypatch.setattr(kernel_mod, "kernel", lambda: built)
    elif kernel_mod.kernel() is None:
        pytest.skip("no C compiler")
    return str(request.param)


def _case(seed: int, n_q: int, n_docs: int, dim: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    qs = [rng.standard_normal((int(rng.integers(0, 40)), dim)).astype(np.float32) for _ in range(n_q)]
    docs = [rng.standard_normal((int(rng.integers(0, 20)), dim)).astype(np.float32) for _ in range(n_docs)]
    docs = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in docs]
    return qs, docs


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_q=st.integers(1, 3),
    n_docs=st.integers(1, 9),
    dim=st.integers(1, 40),
    block=st.sampled_from([None, 1, 7, 60]),
)
def test_every_codec_equals_naive_loop_over_stored_values(
    backend: str, codec: str, seed: int, n_q: int, n_docs: int, dim: int, block: int | None
) -> None:
    qs, docs = _case(seed, n_q, n_docs, dim)
    packed, values = stored(docs, codec)
    got = maxsim(qs, packed, block_tokens=block)  # (Q, N)
    want = np.array([[naive(q, v) for v in values] for q in qs])
    assert got.dtype == np.float32
    assert got.shape == want.shape
    assert (np.abs(got - want) <= tolerance(qs, values, codec)).all(), (got, want)


@pytest.mark.parametrize("codec", CODECS)
def test_large_blocks_split_over_threads(backend: str, codec: str) -> None:
    """Enough tokens that the kernel splits pages over threads and the fallback decodes several runs of pages;
    real sizes (d = 128, query of 32 + 33 tokens)."""
    rng = np.random.default_rng(3)
    docs = [rng.standard_normal((int(n), 128)).astype(np.float32) for n in rng.integers(0, 700, size=48)]
    docs = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in docs]
    qs = [rng.standard_normal((n, 128)).astype(np.float32) for n in (32, 33)]
    qs = [q / np.linalg.norm(q, axis=1, keepdims=True) for q in qs]
    packed, values = stored(docs, codec)
    got = maxsim(qs, packed)
    want = np.array([[naive(q, v) for v in values] for q in qs])
    assert (np.abs(got - want) <= tolerance(qs, values, codec)).all()
    # every storage is scored to float32 precision of its stored values (int8/binary: 24-bit fixed-point query)
    assert np.abs(got - want).max() < 5e-6


def test_kernel_memory_is_bounded_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kernel call covers one block of documents: its output is block pages × query lanes."""
    if kernel_mod.kernel() is None:
        pytest.skip("no C compiler")
    seen: list[int] = []
    real = kernel_mod.run_pages

    def spy(offsets: np.ndarray, call: object, **kw: int) -> None:
        seen.append(int(offsets[-1] - offsets[0]))
        real(offsets, call, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel_mod, "run_pages", spy)
    docs = [np.ones((10, 4), np.float32)] * 50
    np.testing.assert_allclose(maxsim(np.ones((3, 4), np.float32), docs, block_tokens=40), 12.0)
    assert len(seen) == 13
    assert max(seen) <= 40


def test_from_encoded_checks_sizes_and_fields() -> None:
    x = np.ones((3, 8), np.float32)
    with pytest.raises(CodecError):
        PackedDocs.from_encoded([3, 1], [encode(x, "int8"), encode(x[:2], "int8")], 8, "int8")
    with pytest.raises(CodecError):
        PackedDocs.from_encoded([3], [encode(x, "int8"), encode(x, "int8")], 8, "int8")
    with pytest.raises(InvalidDocumentError, match="scales"):
        PackedDocs(np.zeros((3, 8), np.int8), np.array([0, 3]))
    with pytest.raises(InvalidDocumentError, match="dims"):
        PackedDocs(np.zeros((3, 2), np.uint8), np.array([0, 3]), dims=8)
    empty = PackedDocs.from_encoded([], [], 8, "binary")
    assert len(empty) == 0
    assert maxsim(np.ones((2, 8), np.float32), empty).shape == (1, 0)


def fill_pages(store: LocalStore, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` one-page documents ``d0``… of 1–29 unit tokens of 24 dims (dense 8) in ``store``; their tokens."""
    pages = []
    for i in range(n):
        mv = rng.standard_normal((int(rng.integers(1, 30)), 24)).astype(np.float32)
        mv /= np.linalg.norm(mv, axis=1, keepdims=True)
        pages.append(mv)
        store.add_document(f"d{i}", [UnitRecord(0, rng.standard_normal(8).astype(np.float32), mv)])
    return pages


@pytest.mark.parametrize("codec", list(CODEBOOK_FREE))
def test_index_scan_scores_stored_values(tmp_path: Path, codec: str) -> None:
    """The embedded index's exhaustive search returns maxsim of the decoded stored pages, for every codec."""
    rng = np.random.default_rng(7)
    config = CollectionConfig(dense_dim=8, multivector_dim=24, codec=Codec(codec))
    store = LocalStore.create(tmp_path / codec, config)
    pages = fill_pages(store, rng, 12)
    q = rng.standard_normal((9, 24)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    hits = store.search(Query(q, None), SearchOptions(k=12, exhaustive=True))
    values = [decode(encode(p, codec), p.shape[0], 24, codec) for p in pages]
    want = {f"d{i}": naive(q, v) for i, v in enumerate(values)}
    bound = tolerance([q], values, codec)[0]
    assert len(hits) == 12
    for hit in hits:
        assert abs(hit.score - want[hit.doc_id]) <= bound[int(hit.doc_id[1:])]
    store.close()


def test_no_compiler_means_torch_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(kernel_mod, "_loaded", {})
    monkeypatch.setattr(kernel_mod, "compiler", "no-such-cc-for-jev4")
    assert kernel_mod.kernel() is None
    monkeypatch.setattr(kernel_mod, "_loaded", {})
    monkeypatch.setattr(kernel_mod, "compiler", "cc")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(kernel_mod, "cache_dir", blocker / "cache")  # cannot be created
    assert kernel_mod.kernel() is None
    docs = [np.eye(4, dtype=np.float32)]
    np.testing.assert_allclose(maxsim(np.eye(4, dtype=np.float32), PackedDocs.from_list(docs, dtype=np.float16)), 4.0)
