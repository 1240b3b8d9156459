"""``docs/request-flow.md`` stays true to the code: every ``file:function`` step of the current chains names a file
that exists and a function (or ``Class.method``) defined in it, and the table of counts is the length of the
chains written under it. The "before" chains name files of commit a9d513e, which this tree no longer holds: only
their counts are checked."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "request-flow.md").read_text()
_CHAIN = re.compile(r"<!-- flow: (?P<name>[a-z, ]+) -->\n(?P<body>.*?)(?:\n\n|\Z)", re.S)
_STEP = re.compile(r"^\d+\. `(?P<path>[\w./]+\.py):(?P<name>[\w.]+)`", re.M)


def _chains() -> dict[str, list[tuple[str, str]]]:
    chains = {}
    for m in _CHAIN.finditer(PAGE):
        steps = [(s["path"], s["name"]) for s in _STEP.finditer(m["body"])]
        assert len(steps) == len(re.findall(r"^\d+\. ", m["body"], re.M)), f"flow {m['name']}: a step without a path"
        chains[m["name"]] = steps
    return chains


CHAINS = _chains()


def _defined(tree: ast.Module) -> set[str]:
    """Top-level functions and classes, and ``Class.method`` for the methods of top-level classes."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{item.name}")
    return names


def test_the_page_holds_three_flows_before_and_after() -> None:
    assert sorted(CHAINS) == ["a", "a, before", "b", "b, before", "c", "c, before"]


@pytest.mark.parametrize("flow", ["a", "b", "c"])
def test_every_current_step_is_defined_where_it_says(flow: str) -> None:
    missing = []
    for path, name in CHAINS[flow]:
        file = ROOT / path
        if not file.is_file():
            missing.append(f"{path} (no such file)")
            continue
        # a closure is named after the method that makes it ("LocalStore._bm25's closure")
        if name not in _defined(ast.parse(file.read_text())):
            missing.append(f"{path}:{name}")
    assert missing == []


def test_the_table_counts_the_chains() -> None:
    rows = re.findall(r"^\| \((?P<flow>[abc])\) [^|]+\| (\d+) \| (\d+) \|", PAGE, re.M)
    assert [r[0] for r in rows] == ["a", "b", "c"]
    for flow, before, after in rows:
        assert (int(before), int(after)) == (len(CHAINS[f"{flow}, before"]), len(CHAINS[flow])), flow
    summaries = [int(n) for n in re.findall(r"<summary>Before \(a9d513e\): (\d+) steps</summary>", PAGE)]
    assert summaries == [int(before) for _, before, _ in rows]


def test_consecutive_steps_are_in_different_files() -> None:
    """The rule merges consecutive calls into one file into one step."""
    for flow, steps in CHAINS.items():
        paths = [path for path, _ in steps]
        repeats = [p for p, q in itertools.pairwise(paths) if p == q]
        assert repeats == [], flow
