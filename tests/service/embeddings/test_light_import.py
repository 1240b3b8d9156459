"""``service.settings`` (the first import of the CLI) reads ``parse_api_task`` from ``service.embeddings.embed``:
importing either must not load torch (seconds of start-up for a command that may never embed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_cli_and_the_embeddings_request_leaves_torch_unloaded() -> None:
    code = "import sys, service.cli, service.embeddings.embed; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
