"""``python -m service``: the command line (:mod:`service.cli`)."""

from __future__ import annotations

import sys

from service.cli import build_parser, main
from service.flags import settings_from_args

__all__ = ["build_parser", "main", "settings_from_args"]

if __name__ == "__main__":
    sys.exit(main())
