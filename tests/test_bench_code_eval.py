"""bench/code_eval_data.py + bench/eval.py (issue 16): code search by a docstring phrase or an identifier finds
the right function in the top 3 through the text side, on a labelled set made from a package no one here wrote
(``pathspec``, a dependency of the repository walker). The rates asserted are the ones the harness prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bench.eval
from bench.code_eval_data import build, write
from bench.eval import load_dataset


def _package() -> Path:
    pathspec = pytest.importorskip("pathspec")
    return Path(pathspec.__file__).parent


@pytest.fixture(scope="module")
def code_set(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> tuple[dict[str, Any], Path]:
    """The labelled set made from ``pathspec`` (10 docstring + 10 identifier queries) and where it was written:
    built once for the module's tests."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(tiny_checkpoint / "tokenizer.json"))
    tokenizer.no_padding()
    data = build(_package(), tokenizer, max_queries=10)
    directory = tmp_path_factory.mktemp("code-set") / "set"
    write(data, directory)
    return data, directory


def test_code_set_names_functions_of_the_package(code_set: tuple[dict[str, Any], Path]) -> None:
    data, directory = code_set
    assert len(data["queries"]) == 20  # 10 docstring sentences, 10 identifiers
    rows = {row["_id"]: row for row in data["corpus"]}
    for qid, relevant in data["qrels"].items():
        whole = "".join(rows[row_id]["text"] for row_id in relevant)  # a long function: its parts, in order
        assert whole.lstrip().startswith(("def ", "async def ", "@")), (qid, whole[:80])
        if qid.startswith("name:"):  # the bare name is the function's own
            assert f"def {data['queries'][qid]}(" in whole
        else:  # the docstring's first words are in the function
            assert data["queries"][qid].split()[0] in whole
    # ambiguous ones are out: no query text appears twice
    assert len(set(data["queries"].values())) == len(data["queries"])
    assert len(load_dataset(directory).queries) == 20


def test_docstring_and_identifier_queries_find_the_function_in_the_top_3(
    code_set: tuple[dict[str, Any], Path], tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, directory = code_set
    argv = [str(directory), "--model", str(tiny_checkpoint), "--task", "code", "--json"]
    bench.eval.main(argv)  # default fusions: the server's (weighted, text 0.5) as "hybrid", and RRF
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"visual", "text", "hybrid", "hybrid (rrf, 0.5)"}  # text_weight: 0.5 in both methods
    # random vectors (tiny checkpoint): the vector side is chance; the text side (BM25 over identifiers split on
    # snake_case / camelCase) finds the function, and the server's default fusion keeps it
    assert printed["text"]["success@3"] >= 0.85
    assert printed["hybrid"]["success@3"] >= 0.85
    assert printed["visual"]["success@3"] < printed["text"]["success@3"]
