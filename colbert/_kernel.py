"""The fused MaxSim kernels (``_maxsim_kernel.c``, ``_maxsim_amx.c``, ``_maxsim_lut.c`` and ``_fastscan.c``, one shared
object): built with the system C compiler on first use, loaded with ctypes.

The shared object is cached under :data:`cache_dir` (``~/.cache/jev4-serve``; a server builds it at start-up with
:func:`build`, into its configured directory), keyed by the sources, the compiler flags and the CPU's feature flags,
and written atomically (concurrent first uses are safe). Built with ``cc -march=native``: AVX-512 (F/BW/VNNI/F16C)
machines get the vector kernels, AVX2 + FMA + F16C ones the vector float kernel, others portable C of the same
arithmetic (the lookup-table kernel is vector C the compiler maps to the machine's registers); AMX (Sapphire Rapids
and later, where Linux grants the tile state) machines also get AMX tiles for the int8 codes' integer dot products,
with the same answers as VNNI (:meth:`Kernel.use_amx` turns them off and on). Where no compiler works
(or the cache is not writable), :func:`kernel` returns ``None`` and scoring falls back to torch GEMMs of the decoded
values (:data:`unavailable_reason` says why); setting :data:`enabled` to False forces that fallback. Each scoring call
that takes the fallback is counted in :data:`fallback_uses` (the server exports it as a metric) and the first one in a
process logs a warning.

ctypes releases the GIL during the call, so :func:`run_pages` splits the pages over ``torch.get_num_threads()``
threads: the calling one and a pool of the others.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["Kernel", "aligned", "build", "fallback_used", "kernel", "run_pages"]

log = logging.getLogger(__name__)
_SOURCES = tuple(
    Path(__file__).with_name(n) for n in ("_maxsim_kernel.c", "_maxsim_amx.c", "_maxsim_lut.c", "_fastscan.c")
)  # one .so
_FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-fno-math-errno")
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_INT = ctypes.c_int


class Kernel:
    """The loaded shared object's entry points (see ``_maxsim_kernel.c``, ``_maxsim_lut.c`` and ``_fastscan.c``)."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self.maxsim_float = lib.maxsim_float
        self.maxsim_float.restype = None
        self.maxsim_float.argtypes = [_P, _INT, _INT, _P, _P, _INT, _P, _I64, _I64, _P, _P]
        self.maxsim_int = lib.maxsim_int
        self.maxsim_int.restype = None
        self.maxsim_int.argtypes = [_P, _INT, _INT, _P, _P, _INT, _P, _P, _I64, _I64, _P, _P]
        self.maxsim_lut = lib.maxsim_lut  # binary and residual codes: byte lookup tables (+ centroid table)
        self.maxsim_lut.restype = None
        self.maxsim_lut.argtypes = [_P, _P, _INT, _INT, _INT, _P, _P, _P, _I64, _I64, _P]
        self.fastscan = lib.fastscan  # uint8 nibble tables, uint16 maxima: colbert/fastscan.py's pruning bounds
        self.fastscan.restype = None
        self.fastscan.argtypes = [_P, _P, _INT, _INT, _INT, _P, _P, _P, _I64, _I64, _P]
        lib.fastscan_max_terms.restype = _INT
        self.fastscan_max_terms = int(lib.fastscan_max_terms())  # table terms per token that fit uint16 sums
        lib.fastscan_has_avx2.restype = _INT
        self.fastscan_avx2 = bool(lib.fastscan_has_avx2())  # vpshufb path (else portable C, same integers)
        lib.maxsim_lut_lanes.restype = _INT
        self.lut_lanes = int(lib.maxsim_lut_lanes())  # query lanes per block of maxsim_lut's tables
        lib.maxsim_has_avx512.restype = _INT
        self.avx512 = bool(lib.maxsim_has_avx512())
        lib.maxsim_has_avx2.restype = _INT
        self.avx2 = bool(lib.maxsim_has_avx2())  # the float kernel's AVX2 + FMA + F16C path (no AVX-512)
        # int8 codes: the integer kernel (exact int32 dot products of a 24-bit fixed-point query) pays only with
        # VNNI; elsewhere they are widened to their decoded float32 values inside the float kernel (FMA).
        self.int8_as_float = not self.avx512
        lib.maxsim_init.restype = None
        lib.maxsim_init()  # also asks Linux for the AMX tile state, where compiled with AMX
        self._use_amx = lib.maxsim_use_amx
        self._use_amx.restype = _INT
        self._use_amx.argtypes = [_INT]
        lib.maxsim_has_amx.restype = _INT
        self.amx = bool(lib.maxsim_has_amx())  # maxsim_int's dot products on AMX tiles (same answers as VNNI)

    def use_amx(self, on: bool) -> bool:
        """Turn maxsim_int's AMX path on (where compiled in and granted) or off, for the whole process (every user
        of this shared object); returns :attr:`amx`. The scores are the same either way: for tests and benches."""
        self.amx = bool(self._use_amx(int(on)))
        return self.amx


enabled = True  # False: always the torch fallback
cache_dir = Path.home() / ".cache" / "jev4-serve"
compiler = "cc"
_lock = threading.Lock()
_loaded: dict[tuple[str, ...], Kernel | None] = {}
unavailable_reason: str | None = None  # why the last build gave no kernel
fallback_uses = 0  # scoring calls that ran the torch fallback in this process


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _unavailable(reason: str) -> None:
    global unavailable_reason
    unavailable_reason = reason
    log.warning("MaxSim C kernel unavailable (%s): scoring uses the slower torch fallback", reason)


def _build(flags: tuple[str, ...]) -> Kernel | None:
    if shutil.which(compiler) is None:
        _unavailable(f"no C compiler {compiler!r} on PATH")
        return None
    source = b"".join(path.read_bytes() for path in _SOURCES)
    key = hashlib.sha256(source + repr(flags).encode() + _cpu_flags().encode() + compiler.encode()).hexdigest()[:16]
    target = cache_dir / f"maxsim-{key}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built = Path(tmp) / target.name
                cmd = [compiler, *flags, "-o", str(built), *map(str, _SOURCES), "-lm"]
                result = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    _unavailable(f"{compiler} failed: {result.stderr[-2000:]}")
                    return None
                os.replace(built, target)  # atomic: a concurrent builder writes the same bytes
        return Kernel(ctypes.CDLL(str(target)), target)
    except OSError as exc:
        _unavailable(f"building or loading into {cache_dir} failed: {exc}")
        return None


def kernel(flags: tuple[str, ...] = _FLAGS) -> Kernel | None:
    """The compiled kernels (built once per process and flags), or None when unavailable or disabled."""
    if not enabled:
        return None
    with _lock:
        if flags not in _loaded:
            _loaded[flags] = _build(flags)
        return _loaded[flags]


def build(directory: Path | None = None) -> Kernel | None:
    """Build (or load from the cache) the kernel now, into ``directory`` when given (it becomes :data:`cache_dir`);
    None, with :data:`unavailable_reason` set, when it cannot be built."""
    global cache_dir
    if directory is not None:
        cache_dir = directory
    if not enabled:
        _unavailable("disabled (colbert._kernel.enabled = False)")
        return None
    return kernel()


def fallback_used() -> None:
    """Count one scoring call on the torch fallback (the first one in a process also logs a warning)."""
    global fallback_uses
    with _lock:
        fallback_uses += 1
        first = fallback_uses == 1
    if first:
        log.warning("MaxSim scored with the torch fallback (slower, same values): %s", unavailable_reason or "disabled")


_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def run_pages(
    offsets: npt.NDArray[np.int64], call: Callable[[int, int], None], *, min_tokens_per_thread: int = 8192
) -> None:
    """Run ``call(p0, p1)`` over contiguous page ranges covering all pages, split by token count across
    ``torch.get_num_threads()`` threads: the first range in the calling thread, the others in a pool (all in the
    calling thread when the work is small)."""
    global _pool, _pool_size
    n_pages = int(offsets.shape[0] - 1)
    total = int(offsets[-1] - offsets[0])
    threads = max(1, min(torch.get_num_threads(), n_pages, total // min_tokens_per_thread))
    if threads == 1:
        call(0, n_pages)
        return
    cuts = np.searchsorted(offsets, offsets[0] + np.linspace(0, total, threads + 1)[1:-1]).tolist()
    bounds = [0, *[int(c) for c in cuts], n_pages]
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    if len(ranges) == 1:  # cuts inside one large page
        call(*ranges[0])
        return
    with _lock:
        if _pool is None or _pool_size < len(ranges) - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="maxsim"), len(ranges) - 1
        pool = _pool
    # the first range in the calling thread: one hand-off fewer per call, and the caller works instead of waiting
    futures = [pool.submit(call, a, b) for a, b in ranges[1:]]
    try:
        call(*ranges[0])
    finally:
        for future in futures:
            future.result()


def aligned(a: np.ndarray, boundary: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``a`` that starts on a ``boundary``-byte address, for the query tables and lanes the
    kernels load in 64-byte vectors: numpy only promises 16-byte alignment, and a load split over two cache lines
    costs (300 pages of 1,024 tokens: binary's tables 16 bytes off a line 7.8 ms instead of 4.6, residual2's 15.5
    instead of 8.9)."""
    buf = np.empty(a.nbytes + boundary, dtype=np.uint8)
    start = -buf.ctypes.data % boundary
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
