"""bench/eval.py: exact metrics (nDCG checked by hand), the BEIR layout reader, and the harness end to end on a
labelled set made from real documents (stdlib docs typeset to PDF): text and hybrid beat visual with the random
checkpoint, whose visual side means nothing."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

import bench._metrics
from bench._metrics import mean_metrics, mrr, ndcg, recall, success
from bench.eval import evaluate, load_dataset
from bench.eval_data import build


def test_metric_doctests() -> None:
    result = doctest.testmod(bench._metrics)
    assert result.attempted > 0
    assert result.failed == 0


def test_ndcg_by_hand() -> None:
    run = ["b", "x", "a", "c"]
    judged = {"a": 3, "b": 1, "c": 2}
    dcg = 1 / math.log2(2) + 0 + 3 / math.log2(4) + 2 / math.log2(5)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(run, judged, 10) == pytest.approx(dcg / ideal)
    assert ndcg(run, judged, 1) == pytest.approx(1 / 3)
    assert ndcg([], judged, 5) == 0.0
    assert recall(run, judged, 2) == pytest.approx(1 / 3)
    assert mrr(["x", "y", "c"], judged, 10) == pytest.approx(1 / 3)
    assert mrr(["x", "y", "c"], judged, 2) == 0.0
    means = mean_metrics({"q1": run, "q2": []}, {"q1": judged, "q2": {"a": 1}, "q3": {"z": 0}})
    assert means["ndcg@10"] == pytest.approx(dcg / ideal / 2)  # q3 has nothing relevant: not counted
    assert (success(["x", "y", "c"], judged, 2), success(["x", "y", "c"], judged, 3)) == (0.0, 1.0)
    assert means["success@3"] == pytest.approx(1 / 2)  # q1 has b at rank 1; q2 has no results


def test_reads_the_beir_layout(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "p1", "text": "alpha"}\n{"_id": "p2", "text": "beta"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "alpha?"}\n{"_id": "q9", "text": "unjudged"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t2\nq1\tp2\t0\n")
    data = load_dataset(tmp_path)
    assert data.queries == {"q1": "alpha?"}
    assert data.qrels == {"q1": {"p1": 2, "p2": 0}}
    assert [c["_id"] for c in data.corpus] == ["p1", "p2"]


def test_text_and_hybrid_beat_visual_on_real_documents(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from model import Encoder

    sizes = build(tmp_path / "set", modules=3, queries=12, seed=1)
    assert sizes["queries"] >= 8
    encoder = Encoder.from_pretrained(str(tiny_checkpoint))
    result = evaluate(encoder, load_dataset(tmp_path / "set"), tmp_path / "work", candidates=50, dpi=50)
    assert set(result) == {"visual", "text", "hybrid"}
    assert result["text"]["ndcg@10"] > result["visual"]["ndcg@10"] + 0.3
    assert result["hybrid"]["ndcg@10"] > result["visual"]["ndcg@10"]
    assert result["text"]["recall@10"] >= 0.9  # the query words are on the page: BM25 finds it
