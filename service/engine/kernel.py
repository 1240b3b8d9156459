"""The MaxSim C kernel (``colbert._kernel``) built at start-up, so that the first search pays no compile and a
missing compiler shows at once: a warning (and ``jev4_maxsim_kernel 0``) by default, a refusal to start with
``require_maxsim_kernel``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from colbert import _kernel
from service.settings_rules import env_name

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["KernelUnavailableError", "build_kernel", "kernel_paths"]

_LOG = logging.getLogger("jev4.kernel")
_announced = False  # the paths are logged once a process


class KernelUnavailableError(RuntimeError):
    """``require_maxsim_kernel`` is set and the kernel cannot be built; the message says why and what to do."""


def build_kernel(settings: Settings) -> bool:
    """Build (or load from ``maxsim_cache_dir``) the kernel; True when it is in use, False on the torch fallback. The
    log says which vector paths this CPU gave it (the same answers on each; the speed differs several-fold)."""
    global _announced
    built = _kernel.build(settings.maxsim_cache_dir)
    if built is not None:
        if not _announced:  # `serve` builds it before loading the model, the app's start-up again (cached)
            _LOG.info("MaxSim kernel ready", extra={"paths": kernel_paths(built)})
            _announced = True
        return True
    if settings.require_maxsim_kernel:
        required = env_name("require_maxsim_kernel")
        raise KernelUnavailableError(
            f"the MaxSim C kernel cannot be built ({_kernel.unavailable_reason}) and {required} is set: install a C "
            f"compiler (apt-get install gcc), point {env_name('maxsim_cache_dir')} at a writable directory, or unset "
            f"{required} to score with the slower torch fallback"
        )
    return False


def kernel_paths(built: _kernel.Kernel) -> str:
    """The kernel's vector paths on this machine, e.g. ``avx512+vnni, amx (int8)``; ``portable C`` without any."""
    vector = "avx512+vnni" if built.avx512 else "avx2+fma" if built.avx2 else "portable C"
    return vector + (", amx (int8)" if built.amx else "")
