"""Load the encoder a :class:`ModelSource` names: a hub id, a local directory, or (``--tiny``) the random test
checkpoint. The source is read once from the settings (``service.engine.runtime.model_source``) and passed here.

Where the hub cannot provide the checkpoint, the error says how to point the server at a local copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model.errors import CheckpointNotFoundError, CompilerUnavailableError

if TYPE_CHECKING:
    from model.encoder import Encoder

__all__ = ["TINY_WARNING", "ModelLoadError", "ModelSource", "load_encoder", "resolve_model_path"]

_LOG = logging.getLogger("jev4.loading")

TINY_WARNING = (
    "serving the TINY RANDOM test checkpoint: every route works, but its vectors carry NO meaning "
    "(start with --model <hub id or directory> for real embeddings)"
)


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Which checkpoint to load and how (each field named after its ``JEV4_*`` setting)."""

    model: str  # the hub id or directory the settings name (also accepted as a request's ``model``)
    tiny_dir: Path | None  # --tiny: where the random test checkpoint is kept (built on first use); None = ``model``
    revision: str | None = None
    local_files_only: bool = False
    dtype: str = "auto"  # "auto" = the checkpoint's
    device: str = "auto"  # "auto" = CUDA when available
    attn_implementation: str | None = None
    compile: bool = False  # the forward path's ForwardOptions
    cuda_graphs: bool = False
    graph_max_tokens: int = 2048  # JEV4_CUDA_GRAPH_MAX_TOKENS

    @property
    def tiny(self) -> bool:
        """The random test checkpoint, whose vectors mean nothing."""
        return self.tiny_dir is not None


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message says what to do."""


def resolve_model_path(source: ModelSource) -> str:
    """The hub id / directory to load; builds the tiny checkpoint on first use for ``--tiny``."""
    if source.tiny_dir is None:
        return source.model
    from model.testing import build_tiny_checkpoint

    directory = source.tiny_dir
    if not (directory / "config.json").is_file():
        _LOG.info("building the tiny test checkpoint in %s", directory)
        directory.mkdir(parents=True, exist_ok=True)
        build_tiny_checkpoint(directory)
    return str(directory)


def load_encoder(source: ModelSource) -> Encoder:
    """Load the encoder (blocking); ModelLoadError with instructions when the checkpoint is unavailable."""
    from model.encoder import Encoder
    from model.options import ForwardOptions

    path = resolve_model_path(source)
    if source.tiny:
        _LOG.warning(TINY_WARNING)
    dtype = None if source.dtype == "auto" else source.dtype
    device = None if source.device == "auto" else source.device
    _LOG.info("loading model %s (dtype=%s, device=%s)", path, source.dtype, source.device)
    try:
        return Encoder.from_pretrained(
            path,
            revision=source.revision,
            local_files_only=source.local_files_only or None,
            dtype=dtype,
            device=device,
            attn_implementation=source.attn_implementation,
            options=ForwardOptions(
                compile=source.compile, cuda_graphs=source.cuda_graphs, graph_max_tokens=source.graph_max_tokens
            ),
        )
    except CompilerUnavailableError as exc:
        raise ModelLoadError(f"cannot compile the model: {exc}") from exc
    except CheckpointNotFoundError as exc:
        raise ModelLoadError(
            f"cannot load the model {path!r}: {exc}\n"
            "The Hugging Face hub is unreachable (or the id is wrong) and no local copy was found.\n"
            "To use a local copy: on a connected machine run\n"
            f"    hf download {source.model} --local-dir ./jina-embeddings-v4\n"
            "copy that directory here and start with\n"
            "    python -m service serve --model /path/to/jina-embeddings-v4   (or JEV4_MODEL=/path/...)\n"
            "or set HF_HOME to a copied Hugging Face cache. To try every route without weights:\n"
            "    python -m service serve --tiny   (random tiny checkpoint; its vectors carry no meaning)"
        ) from exc
