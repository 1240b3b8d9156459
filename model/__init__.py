"""jina-embeddings-v4 inference on stock transformers Qwen2.5-VL + PEFT (no trust_remote_code).

Importing this package is cheap; ``Encoder`` (and torch/transformers) load on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.encoder import Encoder, ModelInfo
    from model.options import ForwardOptions

__all__ = ["Encoder", "ForwardOptions", "ModelInfo"]


def __getattr__(name: str) -> Any:
    if name == "ForwardOptions":
        from model import options

        return options.ForwardOptions
    if name in __all__:
        from model import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
