#!/usr/bin/env bash
# The project's checks: lint, types, then the test suite (offline, CPU). Extra args go to pytest.
# Needs `bash scripts/setup.sh --test` first (the README's command 2 runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ! .venv/bin/python -c "import pytest, mypy, ruff" 2>/dev/null; then
  echo "test.sh: the test tools (pytest, mypy, ruff) are not in .venv: run bash scripts/setup.sh --test" >&2
  exit 2
fi
.venv/bin/python -m ruff check model colbert service tests bench
.venv/bin/python -m ruff format --check model colbert service tests bench README.md
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
