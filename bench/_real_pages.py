"""Multi-vectors of real PDF pages and queries made from their own sentences, for the codec benches (issue 26).

The pages of the given PDFs are rendered (``model.pdf``, 144 DPI as indexing does) and encoded by the tiny
random-weight checkpoint (``model.testing.build_tiny_checkpoint``, seed 0) as documents (task ``retrieval``,
passage side, multi-vector: ~750 tokens × 128 per page); the queries are lines of those pages' text layers (at
least ``min_words`` words, ``per_page`` per page, drawn with a seeded generator) encoded on the query side
(``retrieval.query``). The result is cached in ``.cache/bench-real-pages/`` (git-ignored) under a key made of
the PDFs' bytes and the parameters, so a rerun costs a file read.

**What these vectors tell and what they do not.** The checkpoint's weights are random, so which page a query
"should" find means nothing: there is no relevance here. What is real is the *geometry* the codecs must keep —
the token counts, the way an image encoder's tokens cluster (tokens of one page are far more alike than the
synthetic set's: mean pairwise cosine ~0.8 within a page), the spread of values per dimension, and queries
whose tokens come from a different (text) path than the pages'. Agreement@k with exhaustive float32 MaxSim over
these vectors measures how far a codec moves the ranking on vectors shaped by a real network over real pages;
it says nothing about retrieval quality, and the trained model's vectors (more spread, semantically arranged)
may be easier or harder to compress.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_PDFS", "RealSet", "load_real_set"]

_REPO = Path(__file__).resolve().parent.parent
DEFAULT_PDFS = (
    _REPO / "samples" / "report.pdf",
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
)
_CACHE = _REPO / ".cache" / "bench-real-pages"
_VERSION = 1  # bump when what is encoded changes (the cache key includes it)


@dataclass(frozen=True)
class RealSet:
    """Pages (each an (n_i, d) float32 unit-row array) and queries ((Lq_j, d) arrays) with their source lines."""

    pages: list[np.ndarray]
    queries: list[np.ndarray]
    query_text: list[str]
    query_page: list[int]  # the page each query's line came from (not a relevance label: the weights are random)
    sources: list[str]  # "file.pdf p.N" per page


def _key(pdfs: list[Path], per_page: int, min_words: int, seed: int) -> str:
    h = hashlib.sha256(json.dumps([_VERSION, per_page, min_words, seed]).encode())
    for p in pdfs:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def load_real_set(
    pdfs: list[Path] | None = None, *, per_page: int = 2, min_words: int = 5, seed: int = 0, cache: Path = _CACHE
) -> RealSet:
    """The cached set for these PDFs, encoding it first when there is none (module docstring)."""
    files = [p for p in (pdfs or list(DEFAULT_PDFS)) if p.is_file()]
    if not files:
        raise SystemExit("no PDF found: pass --pdf PATH (the defaults are samples/report.pdf and /usr/share/doc PDFs)")
    path = cache / f"{_key(files, per_page, min_words, seed)}.npz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _encode(files, per_page, min_words, seed, path)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        pages = np.split(z["page_tokens"], np.cumsum(z["page_counts"])[:-1])
        queries = np.split(z["query_tokens"], np.cumsum(z["query_counts"])[:-1])
    return RealSet(list(pages), list(queries), meta["query_text"], meta["query_page"], meta["sources"])


def _encode(pdfs: list[Path], per_page: int, min_words: int, seed: int, path: Path) -> None:
    import tempfile

    from model import pdf as pdf_mod
    from model.encoder import Encoder
    from model.testing import build_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        encoder = Encoder.from_pretrained(str(build_tiny_checkpoint(Path(tmp) / "tiny")), device="cpu")
    rng = np.random.default_rng(seed)
    pages: list[np.ndarray] = []
    sources: list[str] = []
    lines: list[str] = []
    line_page: list[int] = []
    for pdf in pdfs:
        for rendered in pdf_mod.iter_pages(pdf, text_layer=True):
            mv = encoder.encode_image(rendered.image, task="retrieval", return_multivector=True, return_numpy=True)
            pages.append(np.asarray(mv, dtype=np.float32))
            sources.append(f"{pdf.name} p.{rendered.page_number}")
            text = rendered.text_layer.text if rendered.text_layer else ""
            usable = [ln.strip() for ln in text.splitlines() if len(ln.split()) >= min_words]
            for i in sorted(rng.choice(len(usable), min(per_page, len(usable)), replace=False).tolist()):
                lines.append(usable[i])
                line_page.append(len(pages) - 1)
    encoded = encoder.encode_text(lines, task="retrieval.query", return_multivector=True, return_numpy=True)
    queries = [np.asarray(q, dtype=np.float32) for q in encoded]
    meta = {"query_text": lines, "query_page": line_page, "sources": sources}
    np.savez(
        path,
        page_tokens=np.concatenate(pages),
        page_counts=np.array([p.shape[0] for p in pages]),
        query_tokens=np.concatenate(queries),
        query_counts=np.array([q.shape[0] for q in queries]),
        meta=json.dumps(meta),
    )
