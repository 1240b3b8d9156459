"""The size budget: Python files over 400 lines and functions over 60 lines, outside ``bench/``.

    .venv/bin/python scripts/budget.py            # list what is over; exit 1 when anything is
    .venv/bin/python scripts/budget.py --max-file 300 --max-function 50 model

A function's size is its lines from ``def`` (decorators included) to its last line, docstring included; a
nested function counts within its parent and on its own. Files are counted in lines as ``wc -l`` does.

A file that does not parse (``tests/data/code/broken.py`` is broken on purpose: the code chunker's fixture) is
skipped with a line saying so; its size still counts. Justified exceptions are in :data:`ALLOWED`, each with
its reason, and are listed (not counted) at the default limits. ``tests/test_budget.py`` runs this over the
whole repository in the test suite.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED = ("bench/", ".venv/", ".bench-venv/", "build/")

# "path" (the file) or "path::Qualified.name" (a function) -> why it stays over the default budget.
ALLOWED: dict[str, str] = {
    "tests/service/hostile.py::pdf_cases": (
        "a table of hostile PDFs, one yield per case, read top to bottom; splitting it would only scatter the table"
    ),
}


@dataclass(frozen=True, slots=True)
class Over:
    path: str
    line: int
    name: str  # "" for the file itself
    size: int
    limit: int

    @property
    def key(self) -> str:
        """How :data:`ALLOWED` names it."""
        return self.path if not self.name else f"{self.path}::{self.name}"

    def __str__(self) -> str:
        what = "file" if not self.name else f"function {self.name}"
        return f"{self.path}:{self.line}: {what} has {self.size} lines (budget {self.limit})"


def python_files(paths: list[str]) -> list[Path]:
    """Tracked (and untracked, not ignored) ``.py`` files under ``paths``, outside the excluded folders."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted(ROOT / p for p in listed if p.endswith(".py") and not p.startswith(EXCLUDED) and (ROOT / p).exists())


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def check_file(path: Path, max_file: int, max_function: int, *, skipped: list[str] | None = None) -> list[Over]:
    """What in one file is over the budget. A file that does not parse is only measured as a file (its path and
    the reason appended to ``skipped`` when given)."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    found = []
    lines = text.count("\n")
    if lines > max_file:
        found.append(Over(rel, 1, "", lines, max_file))
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as exc:
        if skipped is not None:
            skipped.append(f"{rel}: does not parse ({exc.msg}, line {exc.lineno}); its functions are not measured")
        return found
    for name, node in _functions(tree):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        size = (node.end_lineno or node.lineno) - start + 1
        if size > max_function:
            found.append(Over(rel, start, name, size, max_function))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["."], help="folders or files (default: the whole repository)")
    parser.add_argument("--max-file", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=60)
    args = parser.parse_args(argv)
    skipped: list[str] = []
    found = [
        o for p in python_files(args.paths) for o in check_file(p, args.max_file, args.max_function, skipped=skipped)
    ]
    defaults = (args.max_file, args.max_function) == (400, 60)
    over = [o for o in found if not (defaults and o.key in ALLOWED)]
    for line in skipped:
        print(f"skipped {line}")
    for item in found:
        if item not in over:
            print(f"allowed {item}: {ALLOWED[item.key]}")
    for item in over:
        print(item)
    print(f"{len(over)} over the budget", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
