#!/usr/bin/env bash
# The project's checks: lint, types, then the test suite (offline, CPU). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m ruff check model colbert service tests bench
.venv/bin/python -m ruff format --check model colbert service tests bench README.md
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
