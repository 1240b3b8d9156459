"""What ``index`` shows while it runs: one progress bar over every file, and where a run is when Ctrl-C stops it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

__all__ = ["Bar", "IndexRun"]


@dataclass
class IndexRun:
    """Where an ``index`` run is (what Ctrl-C reports)."""

    collection: str
    total: int = 0
    done: int = 0
    current: str | None = None

    def cancelled(self) -> str:
        """The line printed on Ctrl-C: what was cancelled and how to resume.

        >>> print(IndexRun("docs", total=3, done=1, current="b.pdf").cancelled())
        cancelled while indexing b.pdf into 'docs' (1 of 3 files done; nothing of b.pdf was stored). To resume, \
run the same command again: files already stored are skipped
        """
        where = f" while indexing {self.current}" if self.current else ""
        lost = f"; nothing of {self.current} was stored" if self.current else ""
        files = "file" if self.total == 1 else "files"
        return (
            f"cancelled{where} into {self.collection!r} ({self.done} of {self.total} {files} done{lost}). To resume, "
            "run the same command again: files already stored are skipped"
        )


class Bar:
    """One tqdm bar on stderr shared by every file (``unit``: page or file); notes print above it."""

    def __init__(self, disable: bool, unit: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)

    def grow(self, total: int) -> None:
        self.bar.total = (self.bar.total or 0) + total
        self.bar.refresh()

    def advance(self, n: int) -> None:
        if n:
            self.bar.update(n)

    def label(self, text: str) -> None:
        self.bar.set_postfix_str(text[-40:])

    def note(self, message: str) -> None:
        """Print a line above the bar (to stderr, like the bar)."""
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
