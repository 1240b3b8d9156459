"""The MaxSim C kernel (``colbert._kernel``) built at start-up, so that the first search pays no compile and a
missing compiler shows at once: a warning (and ``jev4_maxsim_kernel 0``) by default, a refusal to start with
``require_maxsim_kernel``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from colbert import _kernel
from service.settings_rules import env_name

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["KernelUnavailableError", "build_kernel"]


class KernelUnavailableError(RuntimeError):
    """``require_maxsim_kernel`` is set and the kernel cannot be built; the message says why and what to do."""


def build_kernel(settings: Settings) -> bool:
    """Build (or load from ``maxsim_cache_dir``) the kernel; True when it is in use, False on the torch fallback."""
    if _kernel.build(settings.maxsim_cache_dir) is not None:
        return True
    if settings.require_maxsim_kernel:
        required = env_name("require_maxsim_kernel")
        raise KernelUnavailableError(
            f"the MaxSim C kernel cannot be built ({_kernel.unavailable_reason}) and {required} is set: install a C "
            f"compiler (apt-get install gcc), point {env_name('maxsim_cache_dir')} at a writable directory, or unset "
            f"{required} to score with the slower torch fallback"
        )
    return False
