"""Every module example (``>>>`` in a docstring) of ``model``, ``colbert`` and ``service`` runs as a test.

One test per module that has examples; a module gaining its first example is picked up without a list to edit.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("model", "colbert", "service")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root: ModuleType = importlib.import_module(package)
        names.append(package)
        names.extend(info.name for info in pkgutil.walk_packages(root.__path__, f"{package}."))
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [test for test in doctest.DocTestFinder().find(module) if test.examples]


WITH_EXAMPLES = [name for name in _modules() if _examples(name)]


def test_the_packages_have_examples() -> None:
    # a guard against the finder silently finding nothing (e.g. a broken import path)
    assert {"model.types", "colbert.scoring", "service.settings", "service.flags"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_module_examples(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in _examples(name):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
