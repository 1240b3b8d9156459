"""The compiled path (``ForwardOptions(compile=True)``, server ``JEV4_COMPILE=1``): ``torch.compile`` (inductor:
C++/OpenMP kernels on CPU, Triton on a GPU) of the forward pass's elementwise half, the part between the matrix
products that runs at memory speed in eager mode:

- ``add_norm``: each residual add fused with the RMSNorm that follows it (the text decoder loop,
  ``model.forward``): one pass instead of an add, a float32 copy and five passes of the stock norm;
- ``norm``: the other RMSNorms (the first text norm, the vision blocks', the merger's);
- ``rotate`` / ``rotate_f32``: the rotary embedding of q and k (text in the model's dtype; vision in float32 and
  back, the casts fused);
- ``silu_mul``: ``silu(gate) · up`` on the fused gate/up output (text and vision MLPs).

The matrix products (with their per-task LoRA), the attention calls and the packing stay eager and unchanged: the
routing and the packed layout never enter a compiled graph, so a new batch shape or task mix does not recompile.
Each function is compiled once per process with dynamic shapes (``dynamic=True``: the token count is symbolic, one
graph serves every batch); inductor caches the generated code on disk (``TORCHINDUCTOR_CACHE_DIR``, by default
``/tmp/torchinductor_<user>``), so a second process loads instead of compiling. The server compiles during its
warm-up, before ``/ready``.

Measured (bench/README.md, "Compiled path"; 2-core AVX-512 CPU, real width, bf16, eager vs compiled in one run,
3 runs): pages ×1.17–1.31, queries ×1.05–1.45, passages ×0.83–1.16; start-up +38 s with an empty inductor cache,
+13 s with a filled one; dynamic shapes as fast as exact-length static graphs (so no length buckets). bf16 outputs
equal eager's (``OPTIONS``). Not measured on a GPU.
"""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx.experimental._config as fx_config

from model.elementwise import (
    add_rms_norm,
    rms_norm,
    rotate,
    rotate_functional,
    rotate_functional_in_float32,
    rotate_in_float32,
    silu_mul,
)
from model.errors import CompilerUnavailableError

__all__ = ["EAGER", "OPTIONS", "Kernels", "compiled_kernels", "require_compiler"]


@dataclass(frozen=True, slots=True)
class Kernels:
    """The elementwise functions the forward path calls; ``None`` = the eager modules' own code."""

    rotate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    rotate_f32: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    silu_mul: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    add_norm: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]] | None = (
        None
    )
    norm: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None = None

    @property
    def compiled(self) -> bool:
        return self.norm is not None


EAGER = Kernels(rotate, rotate_in_float32)

OPTIONS: dict[str, str | int | bool] = {"emulate_precision_casts": True}
"""Inductor options of every compiled kernel. ``emulate_precision_casts``: round to the model's dtype wherever the
eager code does (e.g. the residual sum before the norm, each rotary product) instead of carrying float32 through
the fused kernel. Without it, bfloat16 outputs differ from eager bfloat16 by rounding noise (dense cosine 0.99988 on
a 3-token row of the tiny checkpoint, below the 0.9999 asked); with it they are equal (cosine 1.000000, measured in
``tests/model/test_compiled.py``). float32 is unaffected."""

_LOCK = threading.Lock()
_COMPILED: Kernels | None = None


def _import_inductor() -> None:
    """Import inductor's compiler now, with the one warning its import raises silenced.

    ``torch._inductor.compile_fx`` imports ``torch.utils.mkldnn``, whose class bodies call the deprecated
    ``torch.jit.script_method`` (a DeprecationWarning at import, torch 2.13). Left lazy, that import happens inside
    the first compiled call, and where warnings are errors (pytest's ``filterwarnings = error``, ``python -W
    error``) the compile fails with ``BackendCompilerFailed``. The warning is about torch's own code, not ours.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.*", category=DeprecationWarning)
        import torch._inductor.compile_fx  # noqa: F401


def require_compiler(device: torch.device) -> None:
    """``CompilerUnavailableError`` when ``device``'s compiled kernels cannot be built here: inductor's C++ compiler
    on CPU (``torch._inductor.config.cpp.cxx``, ``g++`` by default) or, on a GPU, the C compiler Triton builds its
    launchers with (``CC``, else ``gcc`` or ``clang``). Checked when the model loads, not at the first batch."""
    setting = "ForwardOptions.compile (the server's JEV4_COMPILE)"
    if device.type == "cpu":
        from torch._inductor import cpp_builder, exc

        try:
            cpp_builder.get_cpp_compiler()
        except exc.InvalidCxxCompiler as err:
            raise CompilerUnavailableError(
                f"{setting} builds C++ kernels on this CPU, and no C++ compiler was found ({err}); install one "
                "(Debian/Ubuntu: apt-get install g++) or turn compiling off: the eager path computes the same vectors"
            ) from err
    elif device.type == "cuda" and not (os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")):
        raise CompilerUnavailableError(
            f"{setting} builds Triton kernels, whose launchers need a C compiler: none was found (CC is unset, no "
            "gcc or clang on PATH); install one (Debian/Ubuntu: apt-get install gcc) or turn compiling off"
        )


def compiled_kernels() -> Kernels:
    """The compiled kernels, made once per process (``torch.compile`` wraps lazily: each function compiles on its
    first call, for any later shape)."""
    global _COMPILED
    with _LOCK:
        if _COMPILED is None:
            _import_inductor()

            def make(fn: Callable[..., object]) -> Callable[..., object]:
                compiled = torch.compile(fn, dynamic=True, fullgraph=True, options=dict(OPTIONS))

                def call(*args: object) -> object:
                    # No duck sizing: by default dynamo assumes two sizes equal at the first call are equal for
                    # good (the warm-up's 16 image patches = the tiny vision head size) and recompiles on the
                    # first image that breaks it, after /ready. The flag is read while compiling, hence here.
                    with fx_config.patch(use_duck_shape=False):  # type: ignore[attr-defined]
                        return compiled(*args)

                return call

            _COMPILED = Kernels(
                rotate=make(rotate_functional),  # type: ignore[arg-type]
                rotate_f32=make(rotate_functional_in_float32),  # type: ignore[arg-type]
                silu_mul=make(silu_mul),  # type: ignore[arg-type]
                add_norm=make(add_rms_norm),  # type: ignore[arg-type]
                norm=make(rms_norm),  # type: ignore[arg-type]
            )
        return _COMPILED
