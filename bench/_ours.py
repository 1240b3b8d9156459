"""Our encoder as a bench contestant: ``model.Encoder`` on the same checkpoint (run in ``.venv``).

Pages and single-task texts go through the public ``encode_image`` / ``encode_text`` (what a library user
calls); the ``mixed`` and ``single`` workloads go through the low-level ``embed`` on prepared rows (what the
service's batcher calls), in batches of ``batch_size`` rows, so that the two differ only in task mixing.
Timings include preprocessing (tokenisation, image resize and patching).
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

    def __init__(self, args: ContestantArgs) -> None:
        from model import Encoder
        from model.types import parse_task

        self.encoder = Encoder.from_pretrained(args.checkpoint, dtype=args.dtype)
        self.parse_task = parse_task
        self.batch_size = args.batch_size

    def _embed_rows(self, rows: list[TextRow]) -> Output:
        processor = self.encoder.processor
        outputs: list[Any] = []
        for i in range(0, len(rows), self.batch_size):
            items = [
                processor.prepare_text(r.text, self.parse_task(r.task, r.prompt))
                for r in rows[i : i + self.batch_size]
            ]
            outputs += self.encoder.embed(items, return_multivector=True)
        return Output(*_unpack(outputs))

    def pages(self, images: list[Image.Image]) -> Output:
        out = self.encoder.encode_image(
            images, task="retrieval", return_multivector=True, batch_size=self.batch_size
        )
        return Output(*_unpack(out))

    def texts(self, rows: list[TextRow], workload: str) -> Output:
        if workload in ("mixed", "single"):
            return self._embed_rows(rows)
        task, prompt = rows[0].task, rows[0].prompt
        out = self.encoder.encode_text(
            [r.text for r in rows],
            task=task,
            prompt_name=prompt,
            return_multivector=True,
            batch_size=self.batch_size,
        )
        return Output(*_unpack(out))

    def memory_probe(self, n_tokens: int) -> int:
        from bench._peer_reference import long_text

        spec = self.parse_task("retrieval", "passage")
        item = self.encoder.processor.prepare_text(long_text(n_tokens), spec, max_length=n_tokens)
        self.encoder.embed([item], return_multivector=True)
        return int(item.num_tokens)


if __name__ == "__main__":
    serve(Ours)
