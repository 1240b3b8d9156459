#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with torch and the project. Idempotent: re-running only
# installs what is missing.
#
#   bash scripts/setup.sh          # what SERVING needs: .venv, the CPU build of torch, the project (+ the tiny
#                                  #   test checkpoint's tokenizer, so `serve --tiny` works); no apt, no npm
#   bash scripts/setup.sh --test   # the above, then what the checks need (scripts/setup-test.sh): dev tools,
#                                  #   chromium + chromium-driver (apt), axe-core (npm), .clients-venv
#   bash scripts/setup.sh --gpu    # CUDA build of torch, then checks that it sees a GPU (see docs/gpu.md)
#   bash scripts/setup.sh --office # also LibreOffice (apt): Word/PowerPoint/Excel/ODF/RTF uploads (docs/collections.md)
#
# Environment: PYTHON (interpreter for the venv, default python3), TORCH_VERSION (default 2.13.0),
# TORCH_INDEX_URL (--gpu only: a wheel index for one CUDA version, e.g. PyTorch's cu128 index; default: pip's
# configured index, whose Linux x86_64 torch wheels are CUDA builds).
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=0
test=0
office=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --test) test=1 ;;
    --office) office=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use --test, --office, --gpu or nothing)" >&2; exit 2 ;;
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
# Serving needs the project and nothing else from outside pip: the browser tests' system packages are --test's.
.venv/bin/python -m pip install -q -e ".[tiny]"
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)')"
if [ "$gpu" = 1 ]; then
  .venv/bin/python - <<'PYEOF'
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
PYEOF
fi
if [ "$office" = 1 ]; then  # optional: office uploads answer 415 office_unavailable without it
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: --office needs root and apt-get (libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)" >&2
  elif ! { apt-get -o DPkg::Lock::Timeout=60 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 \
      install -y -qq --no-install-recommends libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui; } >/dev/null; then
    echo "setup: installing LibreOffice failed (apt busy or unreachable?); serving works without it; retry with: bash scripts/setup.sh --office" >&2
  fi
fi
if [ "$test" = 1 ]; then
  exec bash scripts/setup-test.sh
fi
