"""Writer process for the bulk crash test: like ``durability_writer.py``, through ``add_documents``.

``python bulk_writer.py DIR START`` adds documents ``d{START}``, … in batches of three per ``add_documents`` call
(one transaction), every third batch also replacing an older document; after each call returns it prints
``ack d{i} v{version}`` for every document of the batch. The parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from durability_writer import original_for, pages_for

from colbert.local import LocalStore
from colbert.local.bulk import add_documents
from colbert.store import NewDocument


def _doc(name: int, version: int) -> NewDocument:
    return NewDocument(f"d{name}", pages_for(version), {"version": version}, original=original_for(version))


def main() -> None:
    directory, start = Path(sys.argv[1]), int(sys.argv[2])
    store = LocalStore.open(directory)
    i = start
    while True:
        batch = [(j, j) for j in range(i, i + 3)]
        if i % 9 == 0 and i > 9:
            batch.append((i - 9, i + 1_000_000))  # a replace inside the batch
        add_documents(store, [_doc(j, v) for j, v in batch], replace=True)
        for j, v in batch:
            print(f"ack d{j} v{v}", flush=True)
        i += 3


if __name__ == "__main__":
    main()
