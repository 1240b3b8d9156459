"""Writer process for the crash test of ``add_document_batches``: ``bulk_writer.py``'s batches and
acknowledgements, the next batches encoded by two threads while one is written (``python bulk_batches_writer.py
DIR START``)."""

from __future__ import annotations

from bulk_writer import main

if __name__ == "__main__":
    main(workers=2)
