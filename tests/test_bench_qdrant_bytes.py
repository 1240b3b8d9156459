"""``bench/qdrant_bytes.py`` on a few small pages: the computed Qdrant sizes follow the documented layout (token
counts regenerated here from the same seeds), the embedded and local-mode sizes are measured, residual codecs are
refused on Qdrant only."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench._synthetic import Corpus
from bench.qdrant_bytes import main, measure


def _args(**over: object) -> argparse.Namespace:
    base = {"pages": 4, "pages_per_doc": 2, "tokens": 20, "dim": 16, "dense_dim": 8, "words": 30}
    return argparse.Namespace(**(base | {"dense_codec": "int8", "seed": 3, "edge": False} | over))


def test_the_computed_qdrant_bytes_follow_the_layout(tmp_path: Path) -> None:
    args = _args()
    corpus = Corpus(seed=3, dim=16, vectors=20)
    centroids = corpus.centroids()
    tokens = sum(corpus.page(i, centroids).tokens.shape[0] for i in range(4)) / 4  # per page
    rows = {c: measure(args, c, tmp_path) for c in ("float32", "float16", "int8", "binary", "residual2")}
    f32, f16, i8, b = rows["float32"], rows["float16"], rows["int8"], rows["binary"]
    assert f32.server_disk is not None
    assert f16.server_disk is not None
    assert i8.server_disk is not None
    assert f32.server_disk - f16.server_disk == pytest.approx(tokens * 2 * 16)
    assert (f32.server_ram, f16.server_ram) == (0, 0)
    assert i8.server_ram == pytest.approx(tokens * (16 + 4))
    assert b.server_ram == pytest.approx(tokens * 2)
    assert i8.server_disk - f16.server_disk == pytest.approx(i8.server_ram)
    assert rows["residual2"].server_disk is None
    assert rows["residual2"].local_mode is None
    assert all(r.embedded > r.embedded_mv > 0 for r in rows.values())
    assert all(r.local_mode is not None and r.local_mode > 0 for c, r in rows.items() if c != "residual2")


def test_main_prints_one_row_per_codec(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--pages",
                "2",
                "--pages-per-doc",
                "1",
                "--tokens",
                "8",
                "--dim",
                "16",
                "--dense-dim",
                "8",
                "--words",
                "10",
                "--codecs",
                "float16",
                "residual1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| float16 |" in out
    assert "| residual1 |" in out
    assert "refused" in out


def test_qdrant_edge_keeps_the_quantized_copy_and_rescores_on_the_originals(tmp_path: Path) -> None:
    """Only where the ``bench`` extra (qdrant-edge-py, Qdrant's engine in-process) is installed."""
    pytest.importorskip("qdrant_edge")
    args = _args(pages=80, tokens=64, dim=128, dense_dim=16, edge=True)  # 80 pages: 40 (k × 4) rescored
    float16, binary = (measure(args, codec, tmp_path) for codec in ("float16", "binary"))
    assert float16.edge is not None
    assert binary.edge is not None
    assert float16.edge.quantized == 0
    assert binary.edge.quantized > 0
    assert binary.edge.agreement == 1.0  # every returned score is rescored on the originals
    assert binary.edge.max_score_diff < 1e-4


def test_embedded_only_without_layouts_is_refused_not_silent(capsys: pytest.CaptureFixture[str]) -> None:
    """``--embedded-only`` skips the only other table; without ``--layouts`` it used to print nothing and exit 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--embedded-only", "--pages", "2"])
    assert exited.value.code == 2
    assert "--layouts" in capsys.readouterr().err
