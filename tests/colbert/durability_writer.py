"""Writer process for the crash test: ingests deterministic documents and acknowledges each one.

``python durability_writer.py DIR START`` adds documents ``d{START}``, ``d{START+1}``, … forever; after each
``add_document`` (units; an original file for even versions) returns it prints ``ack d{i} v{i}`` and flushes.
Every third step it also replaces an older document with new content (``ack d{j} v{i}``). The parent kills it
with SIGKILL at a random moment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from colbert.local import LocalStore
from colbert.store import OriginalFile, UnitRecord

DIM = 16
DENSE = 8


def pages_for(version: int) -> list[UnitRecord]:
    """The content of a document at ``version``: vectors, text and image of each page (anyone can regenerate it
    to check what was stored)."""
    rng = np.random.default_rng(version)
    out = []
    for p in range(1 + version % 4):
        mv = rng.normal(size=(40 + p, DIM)).astype(np.float32)  # (n, DIM)
        mv /= np.linalg.norm(mv, axis=1, keepdims=True)
        text = f"text of page {p} at version {version}"
        image = rng.bytes(2000 + 100 * p)  # bytes different per version and page
        out.append(UnitRecord(unit=p, dense=mv.mean(0)[:DENSE].copy(), multivector=mv, text=text, image=image))
    return out


def original_for(version: int) -> OriginalFile | None:
    """The original file kept with a document at ``version`` (every other version has none, so a replace may also
    drop one); bytes different per version."""
    if version % 2:
        return None
    data = np.random.default_rng(version + 7).bytes(5000 + version % 97)
    return OriginalFile(data, "application/pdf", f"v{version}.pdf")


def main() -> None:
    directory, start = Path(sys.argv[1]), int(sys.argv[2])
    store = LocalStore.open(directory)
    i = start
    while True:
        store.add_document(f"d{i}", pages_for(i), {"version": i}, original=original_for(i))
        print(f"ack d{i} v{i}", flush=True)
        if i % 3 == 0 and i > 3:
            j = i - 3
            v = i + 1_000_000
            store.add_document(f"d{j}", pages_for(v), {"version": v}, replace=True, original=original_for(v))
            print(f"ack d{j} v{i + 1_000_000}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
