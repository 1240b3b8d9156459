"""Fixtures of the colbert tests: ``backend`` (every Store backend, :mod:`tests.colbert.store_backends`)."""

from tests.colbert.store_backends import backend

__all__ = ["backend"]
