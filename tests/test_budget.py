"""The size budget (``scripts/budget.py``): it finds what is over, and the service's transport, engine, embeddings and
top-level modules are within it (400 lines a file, 60 a function)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _budget() -> ModuleType:
    spec = importlib.util.spec_from_file_location("budget", ROOT / "scripts" / "budget.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["budget"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_budget_finds_long_files_and_functions() -> None:
    budget = _budget()
    source = "@decorator\ndef long():\n" + "    x = 1\n" * 8 + "\nclass C:\n    def short(self):\n        return 1\n"
    path = ROOT / "tests" / "_budget_probe.py"
    path.write_text(source)
    try:
        over = budget.check_file(path, max_file=12, max_function=5)
    finally:
        path.unlink()
    assert [(o.name, o.line, o.size) for o in over] == [("", 1, 14), ("long", 1, 10)]


def test_the_service_edge_and_engine_are_within_budget() -> None:
    budget = _budget()
    files = [p for p in budget.python_files(["service"]) if "collections" not in p.parts]
    assert any(p.name == "batcher.py" for p in files)
    over = [str(o) for p in files for o in budget.check_file(p, 400, 60)]
    assert over == []
