"""Our encoder with the compiled path (``ForwardOptions(compile=True)``, ``model.compiled``) as a bench contestant:
``bench/encoder.py --contestants ours,ours-compiled,...``. The untimed first pass of each workload pays the compile
(inductor; its on-disk cache makes a second run load instead)."""

from __future__ import annotations

from bench._ours import Ours
from bench._worker import ContestantArgs, serve

__all__ = ["OursCompiled"]


class OursCompiled(Ours):
    name = "ours-compiled"

    def __init__(self, args: ContestantArgs) -> None:
        from model.options import ForwardOptions

        super().__init__(args, ForwardOptions(compile=True))


if __name__ == "__main__":
    serve(OursCompiled)
