"""Writer process for the concurrent-writes test: adds, replaces and deletes documents, acknowledging each.

``python churn_writer.py DIR STEPS`` for ``i`` in ``0 … STEPS-1``: adds ``d{i}`` (content
``durability_writer.pages_for(i)``, metadata ``{"version": i}``) and prints ``add d{i} {i}``; when ``i % 4 == 1``
also replaces ``d{i-1}`` with version ``i + 1_000_000`` (``replace d{i-1} {version}``); when ``i % 4 == 3`` deletes
``d{i-2}`` (``delete d{i-2}``). Replaced ids (``≡ 0 mod 4``) are never deleted, deleted ones (``≡ 1 mod 4``) never
come back. Each line is printed and flushed after the call returned (committed). Prints ``done`` at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

from colbert.local import LocalStore

sys.path.insert(0, str(Path(__file__).parent))
from durability_writer import pages_for

REPLACED = 1_000_000  # added to the step number: a replacement's version


def main() -> None:
    directory, steps = Path(sys.argv[1]), int(sys.argv[2])
    store = LocalStore.open(directory)
    for i in range(steps):
        store.add_document(f"d{i}", pages_for(i), {"version": i})
        print(f"add d{i} {i}", flush=True)
        if i % 4 == 1:
            version = i + REPLACED
            store.add_document(f"d{i - 1}", pages_for(version), {"version": version}, replace=True)
            print(f"replace d{i - 1} {version}", flush=True)
        if i % 4 == 3:
            assert store.delete_document(f"d{i - 2}")
            print(f"delete d{i - 2}", flush=True)
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
