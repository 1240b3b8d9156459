"""Give freed heap memory back to the system after large requests (glibc's ``malloc_trim``).

Why: a large text document is tokenized (offsets of millions of tokens, in the tokenizer's Rust heap) and split
in pool threads; glibc keeps what they free in per-thread arenas, so a server that indexed a few large files
stayed at ~2.8 GB RSS while idle (0.7 GB before). ``malloc_trim(0)`` returns the free pages of every arena.
It is a glibc function: on another C library (musl, macOS) :func:`trim` does nothing and says so once in the
log. Measured by ``bench/text_rss.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

__all__ = ["LARGE_BYTES", "trim"]

LARGE_BYTES = 1 << 20
"""Documents of at least this many bytes trim the heap when they are done (small ones are not worth the call)."""

_LOG = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        _LOG.info("malloc_trim is not available (not glibc): freed memory stays with the allocator")
        return None


def trim() -> bool:
    """``malloc_trim(0)`` (the GIL is released during the call); True when memory was given back."""
    function = _malloc_trim()
    return bool(function(0)) if function is not None else False
