"""Our encoder as a bench contestant: ``model.Encoder`` on the same checkpoint (run in ``.venv``).

Queries, passages and pages: ``processor.prepare_*`` then ``embed`` on length-sorted batches of at most
``batch_size`` rows (``model.batching.plan_batches``) — exactly what ``encode_text`` / ``encode_image`` do,
through the public low-level API so that both the dense and the multi-vector outputs come back for the
parity checks. ``mixed`` and ``single``: ``embed`` on rows in arrival order, ``batch_size`` per forward, so the
two differ only in task mixing. Timings include preprocessing (tokenisation, image resize and patching).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from bench._worker import ContestantArgs, Output, serve
from bench.workloads import TextRow

__all__ = ["Ours"]


def _unpack(outputs: Any) -> tuple[np.ndarray, list[np.ndarray], int]:
    dense = np.stack([np.asarray(o.dense, dtype=np.float32) for o in outputs])
    mvs = [np.asarray(o.multivector, dtype=np.float32) for o in outputs]
    return dense, mvs, sum(int(o.num_tokens) for o in outputs)


class Ours:
    name = "ours"

    def __init__(self, args: ContestantArgs, options: Any = None) -> None:
        from model import Encoder
        from model.types import parse_task

        # options: a model.options.ForwardOptions (None: the encoder's defaults, as the server runs)
        self.encoder = Encoder.from_pretrained(args.checkpoint, dtype=args.dtype, device=args.device, options=options)
        self.parse_task = parse_task
        self.batch_size = args.batch_size

    def _embed(self, items: list[Any]) -> Output:
        """Length-sorted batches of at most ``batch_size`` rows (what ``encode_text`` / ``encode_image`` do)."""
        from model.batching import plan_batches

        lengths = [item.num_tokens for item in items]
        budget = self.batch_size * max(lengths)
        outputs: list[Any] = [None] * len(items)
        for group in plan_batches(lengths, max_tokens=budget, max_rows=self.batch_size):
            embedded = self.encoder.embed([items[i] for i in group], return_multivector=True)
            for i, out in zip(group, embedded, strict=True):
                outputs[i] = out
        return Output(*_unpack(outputs))

    def pages(self, images: list[Image.Image]) -> Output:
        spec = self.parse_task("retrieval", "passage")
        return self._embed([self.encoder.processor.prepare_image(image, spec) for image in images])

    def texts(self, rows: list[TextRow], workload: str) -> Output:
        processor = self.encoder.processor
        if workload in ("mixed", "single"):  # the service's path: rows in arrival order, batch_size per forward
            outputs: list[Any] = []
            for i in range(0, len(rows), self.batch_size):
                chunk = rows[i : i + self.batch_size]
                items = [processor.prepare_text(r.text, self.parse_task(r.task, r.prompt)) for r in chunk]
                outputs += self.encoder.embed(items, return_multivector=True)
            return Output(*_unpack(outputs))
        return self._embed([processor.prepare_text(r.text, self.parse_task(r.task, r.prompt)) for r in rows])

    def memory_probe(self, n_tokens: int) -> int:
        from bench._peer_reference import long_text

        spec = self.parse_task("retrieval", "passage")
        item = self.encoder.processor.prepare_text(long_text(n_tokens), spec, max_length=n_tokens)
        self.encoder.embed([item], return_multivector=True)
        return int(item.num_tokens)


if __name__ == "__main__":
    serve(Ours)
