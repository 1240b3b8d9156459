#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with torch and the project (+ dev tools).
# Idempotent: re-running only installs what is missing.
#
#   bash scripts/setup.sh          # CPU build of torch (what CI and the tests use)
#   bash scripts/setup.sh --gpu    # CUDA build of torch, then checks that it sees a GPU (see docs/gpu.md)
#   bash scripts/setup.sh --office # also LibreOffice (apt, as root): office uploads become pages (docs/collections.md)
#
# Environment: PYTHON (interpreter for the venv, default python3), TORCH_VERSION (default 2.13.0),
# TORCH_INDEX_URL (--gpu only: a wheel index for one CUDA version, e.g. PyTorch's cu128 index; default: pip's
# configured index, whose Linux x86_64 torch wheels are CUDA builds).
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=0 office=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --office) office=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use --gpu or nothing)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
TORCH=${TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$gpu" = 1 ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "setup.sh: warning: nvidia-smi not found (no NVIDIA driver?)" >&2
  # a CPU build already here ("+cpu", or torch.version.cuda None) is replaced by the CUDA build of the same version
  if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    .venv/bin/python -m pip uninstall -q -y torch 2>/dev/null || true
    .venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$TORCH"
  fi
else
  # torch first and pinned: on these machines torch==2.13.0 (CPU) is on local disk; any other request pulls a CUDA build.
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==$TORCH"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
[ "$office" = 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
# The search page's browser tests: Debian's chromium + its driver (apt, as root), axe-core from npm (package-lock.json).
# Without them those tests skip locally with the reason, and fail under CI=true.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: cannot install ${need[*]} (needs root and apt-get): the browser tests will skip" >&2
  fi
fi
if command -v npm >/dev/null 2>&1 && [ ! -f node_modules/axe-core/axe.min.js ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# The Jina client integrations (LlamaIndex, LangChain, Haystack) the test suite drives, in their own venv.
[ -x .clients-venv/bin/python ] || "$PY" -m venv .clients-venv
.clients-venv/bin/python -m pip install -q -r scripts/clients-requirements.txt
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)')"
if [ "$gpu" = 1 ]; then
  .venv/bin/python - <<'EOF'
import sys

import torch

if torch.version.cuda is None:
    sys.exit("setup.sh --gpu: the installed torch is a CPU build; set TORCH_INDEX_URL to a CUDA wheel index")
if not torch.cuda.is_available():
    sys.exit(f"setup.sh --gpu: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: check the driver")
for i in range(torch.cuda.device_count()):
    major, minor = torch.cuda.get_device_capability(i)
    dtype = "bfloat16" if (major, minor) >= (8, 0) else "float32"
    print(f"GPU {i}: {torch.cuda.get_device_name(i)}, compute {major}.{minor}, CUDA {torch.version.cuda}; "
          f"--dtype auto runs {dtype}")
EOF
fi
