"""``python -m service collections train-cells NAME`` (issue 26): an embedded collection gets the cells of the
``pooled_ivf`` first stage once (run again it keeps them and files nothing); an empty collection is one line and
exit 2, an unknown one exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.cli.test_cli_manage import _run, data_dir

__all__ = ["data_dir"]  # the fixture, shared with test_cli_manage


def test_train_cells(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, _ = _run(capsys, data_dir, "collections", "show", "lib")
    assert (code, "cells" in out) == (0, False)
    code, out, _ = _run(capsys, data_dir, "collections", "train-cells", "lib", "--cells", "4")
    assert (code, out.strip()) == (0, "lib: 4 cells, 4 units filed now")
    code, out, _ = _run(capsys, data_dir, "collections", "train-cells", "lib", "--json")
    assert code == 0
    assert json.loads(out) == {"object": "collection.cells", "collection": "lib", "cells": 4, "units_filed": 0}
    code, out, _ = _run(capsys, data_dir, "collections", "show", "lib")
    assert (code, out.rstrip().endswith(", 4 cells)")) == (0, True), out
    code, out, _ = _run(capsys, data_dir, "collections", "list", "--json")
    assert {c["name"]: c["cells"] for c in map(json.loads, out.splitlines())} == {"empty": None, "lib": 4}
    code, _, err = _run(capsys, data_dir, "collections", "train-cells", "empty")
    assert code == 2
    assert err.strip() == "error: the collection holds no units to train cells on: add documents first"
    code, _, err = _run(capsys, data_dir, "collections", "train-cells", "nothing")
    assert code == 1
    assert "nothing" in err
