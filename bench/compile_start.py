"""Start-up cost of the compiled path (``JEV4_COMPILE=1``, ``model.compiled``): cold and warm inductor cache.

    .venv/bin/python bench/compile_start.py [--config real-width|tiny] [--dtype bfloat16|float32]

Three fresh processes in turn, each loading the bench checkpoint (``bench/encoder.py``'s ``build_checkpoint``) and
running the server's warm-up batch (``service.engine.runtime.Runtime.warm_up``: one short text and one 64×64 image,
in one batch) twice:

1. eager (the baseline: the first call pays oneDNN's per-shape kernel builds, not a compile);
2. compiled, ``TORCHINDUCTOR_CACHE_DIR`` a new empty directory (a cold start: dynamo traces, inductor generates and
   builds the C++ kernels);
3. compiled again with the same directory (a warm start: dynamo traces again, inductor loads the built kernels).

Printed per process: load seconds, first warm-up call, second call. The compile cost of a start is the compiled
process's first call minus the eager one's. Each process runs alone; the machine's other load adds to all three.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]

_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from PIL import Image
from bench.encoder import build_checkpoint
from model import Encoder, ForwardOptions
from model.types import parse_task
encoder = Encoder.from_pretrained(
    build_checkpoint({config!r}), dtype={dtype!r}, device="cpu", options=ForwardOptions(compile={compile})
)
loaded = time.perf_counter() - t0
spec = parse_task("retrieval.passage")
p = encoder.processor
rows = [p.prepare_text("warm up", spec), p.prepare_image(Image.new("RGB", (64, 64), (128, 64, 32)), spec)]
calls = []
for _ in range(2):
    start = time.perf_counter()
    encoder.embed(rows, return_multivector=True)
    calls.append(time.perf_counter() - start)
print(json.dumps({{"load_s": loaded, "first_s": calls[0], "second_s": calls[1]}}))
"""


def _run(root: Path, config: str, dtype: str, compile: bool, cache: Path) -> dict[str, float]:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache))
    code = _CHILD.format(root=str(root), config=config, dtype=dtype, compile=compile)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-4000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=["real-width", "tiny"], default="real-width")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    from bench.encoder import build_checkpoint

    build_checkpoint(args.config)  # built once, outside the timed processes
    print(f"compile start-up, {args.config}, {args.dtype}, the server's warm-up batch (a text + a 64×64 image)")
    print("| process | inductor cache | load s | first call s | second call s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="jev4-inductor-") as tmp:
        cache = Path(tmp)
        runs = [("eager", False, "—"), ("compiled", True, "empty (cold)"), ("compiled", True, "filled (warm)")]
        firsts: dict[str, float] = {}
        for name, compile, state in runs:
            r = _run(root, args.config, args.dtype, compile, cache)
            firsts[state] = r["first_s"]
            print(f"| {name} | {state} | {r['load_s']:.1f} | {r['first_s']:.1f} | {r['second_s']:.2f} |", flush=True)
    base = firsts["—"]
    print(
        f"compile cost at start (first call − eager first call): cold {firsts['empty (cold)'] - base:.1f} s, "
        f"warm {firsts['filled (warm)'] - base:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
