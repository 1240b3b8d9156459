"""The embedded backend: one directory per collection, one SQLite file (see :mod:`colbert.local.store`)."""

from colbert.local.store import LocalOptions, LocalStats, LocalStore

__all__ = ["LocalOptions", "LocalStats", "LocalStore"]
