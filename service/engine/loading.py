"""Load the encoder the settings name: a hub id, a local directory, or (``tiny``) the random test checkpoint.

Where the hub cannot provide the checkpoint, the error says how to point the server at a local copy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from model.errors import CheckpointNotFoundError, CompilerUnavailableError

if TYPE_CHECKING:
    from model.encoder import Encoder
    from service.settings import Settings

__all__ = ["TINY_WARNING", "ModelLoadError", "load_encoder", "resolve_model_path", "tiny_checkpoint_dir"]

_LOG = logging.getLogger("jev4.loading")

TINY_WARNING = (
    "serving the TINY RANDOM test checkpoint: every route works, but its vectors carry NO meaning "
    "(start with --model <hub id or directory> for real embeddings)"
)


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message says what to do."""


def tiny_checkpoint_dir(settings: Settings) -> Path:
    """Where ``--tiny`` keeps its checkpoint."""
    return settings.data_dir / "tiny-checkpoint"


def resolve_model_path(settings: Settings) -> str:
    """The hub id / directory to load; builds the tiny checkpoint on first use when ``settings.tiny``."""
    if not settings.tiny:
        return settings.model
    from model.testing import build_tiny_checkpoint

    directory = tiny_checkpoint_dir(settings)
    if not (directory / "config.json").is_file():
        _LOG.info("building the tiny test checkpoint in %s", directory)
        directory.mkdir(parents=True, exist_ok=True)
        build_tiny_checkpoint(directory)
    return str(directory)


def load_encoder(settings: Settings) -> Encoder:
    """Load the encoder (blocking); ModelLoadError with instructions when the checkpoint is unavailable."""
    from model.encoder import Encoder

    source = resolve_model_path(settings)
    if settings.tiny:
        _LOG.warning(TINY_WARNING)
    dtype = None if settings.dtype == "auto" else settings.dtype
    device = None if settings.device == "auto" else settings.device
    _LOG.info("loading model %s (dtype=%s, device=%s)", source, settings.dtype, settings.device)
    from model.options import ForwardOptions

    try:
        return Encoder.from_pretrained(
            source,
            revision=settings.revision,
            local_files_only=settings.local_files_only or None,
            dtype=dtype,
            device=device,
            attn_implementation=settings.attn_implementation,
            options=ForwardOptions(
                compile=settings.compile,
                cuda_graphs=settings.cuda_graphs,
                graph_max_tokens=settings.cuda_graph_max_tokens,
            ),
        )
    except CompilerUnavailableError as exc:
        raise ModelLoadError(f"cannot compile the model: {exc}") from exc
    except CheckpointNotFoundError as exc:
        raise ModelLoadError(
            f"cannot load the model {source!r}: {exc}\n"
            "The Hugging Face hub is unreachable (or the id is wrong) and no local copy was found.\n"
            "To use a local copy: on a connected machine run\n"
            f"    hf download {settings.model} --local-dir ./jina-embeddings-v4\n"
            "copy that directory here and start with\n"
            "    python -m service serve --model /path/to/jina-embeddings-v4   (or JEV4_MODEL=/path/...)\n"
            "or set HF_HOME to a copied Hugging Face cache. To try every route without weights:\n"
            "    python -m service serve --tiny   (random tiny checkpoint; its vectors carry no meaning)"
        ) from exc
