"""Writer process for the bulk crash test: like ``durability_writer.py``, through ``add_documents``.

``python bulk_writer.py DIR START`` adds documents ``d{START}``, … in batches of three per ``add_documents`` call
(one transaction), every third batch also replacing an older document; after each call returns it prints
``ack d{i} v{version}`` for every document of the batch. The parent kills it with SIGKILL at a random moment.
``main(workers=N)`` (``bulk_batches_writer.py``) writes the same batches through ``add_document_batches`` (the
next batches encoded by N threads while one is written), acknowledging each batch once it is yielded.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from durability_writer import original_for, pages_for

from colbert.local import LocalStore
from colbert.local.bulk import add_document_batches, add_documents
from colbert.store import NewDocument


def _doc(name: int, version: int) -> NewDocument:
    return NewDocument(f"d{name}", pages_for(version), {"version": version}, original=original_for(version))


def batches(start: int) -> Iterator[list[tuple[int, int]]]:
    """(document no, version) of each batch from ``start`` on: three new documents, every third batch also
    replacing an older one."""
    i = start
    while True:
        batch = [(j, j) for j in range(i, i + 3)]
        if i % 9 == 0 and i > 9:
            batch.append((i - 9, i + 1_000_000))  # a replace inside the batch
        yield batch
        i += 3


def main(workers: int = 0) -> None:
    directory, start = Path(sys.argv[1]), int(sys.argv[2])
    store = LocalStore.open(directory)
    if workers:
        planned = deque[list[tuple[int, int]]]()

        def documents() -> Iterator[list[NewDocument]]:
            for batch in batches(start):
                planned.append(batch)
                yield [_doc(j, v) for j, v in batch]

        for _ in add_document_batches(store, documents(), replace=True, workers=workers):
            _ack(planned.popleft())
    for batch in batches(start):
        add_documents(store, [_doc(j, v) for j, v in batch], replace=True)
        _ack(batch)


def _ack(batch: list[tuple[int, int]]) -> None:
    for j, v in batch:
        print(f"ack d{j} v{v}", flush=True)


if __name__ == "__main__":
    main()
