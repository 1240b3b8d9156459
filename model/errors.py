"""Typed errors of the encoder package.

Every message names what was expected and what was found. The HTTP edge (``service.errors``) maps these
classes to status codes; nothing in ``model`` knows about HTTP.

::

    ModelError
    ├── CheckpointError            a checkpoint cannot be resolved or loaded
    │   ├── CheckpointNotFoundError    no local directory and the hub cannot provide it (offline, unknown id)
    │   ├── MissingFileError           a required file is absent (names the file)
    │   ├── ConfigError                config.json lacks a key or holds a bad value
    │   ├── KeyMismatchError           weights with missing/unexpected keys (names file and keys)
    │   └── ShapeMismatchError         a tensor with the wrong shape (names file, key, expected, actual)
    └── InputError                 bad caller input (the service answers 4xx)
        ├── InvalidTaskError           unknown task / prompt name
        ├── InvalidDimensionError      truncate_dim not one of the Matryoshka sizes
        ├── InputTooLongError          more tokens than allowed with truncate=False (names index and count)
        │   └── LateChunkTooLongError      late-chunked inputs whose joined sequence exceeds the limit
        ├── EmptyInputError            an empty batch or an empty string where text is required
        ├── ImageError                 cannot decode an image
        │   ├── ImageTooLargeError         decoded pixel count above the cap (decompression bombs)
        │   ├── ImageModeError             16-bit / float greyscale (RGB conversion would clip it to white)
        │   └── ImageAspectRatioError      an empty image, or one whose sides differ by more than 200x
        └── PdfError                   not a PDF, corrupt, encrypted
            ├── PdfEncryptedError
            ├── PdfRepairedError           damaged: MuPDF had to rebuild its cross-reference table
            ├── PdfTooLargeError           more bytes than the configured cap
            ├── PageSelectionError         "1-3,7" syntax or out-of-range page
            └── TooManyPagesError          more pages selected than the cap
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "CompilerUnavailableError",
    "ConfigError",
    "EmptyInputError",
    "ImageAspectRatioError",
    "ImageError",
    "ImageModeError",
    "ImageTooLargeError",
    "InputError",
    "InputTooLongError",
    "InvalidDimensionError",
    "InvalidTaskError",
    "KeyMismatchError",
    "LateChunkTooLongError",
    "MissingFileError",
    "ModelError",
    "NotAnImageError",
    "PageSelectionError",
    "PdfEncryptedError",
    "PdfError",
    "PdfRepairedError",
    "PdfTooLargeError",
    "ShapeMismatchError",
    "TooManyPagesError",
]


class ModelError(Exception):
    """Base class of every error raised by ``model``."""


class CheckpointError(ModelError):
    """A checkpoint cannot be resolved or loaded."""


class CompilerUnavailableError(ModelError):
    """Compiling was asked for (``ForwardOptions.compile``) but the toolchain it needs is missing."""


class CheckpointNotFoundError(CheckpointError):
    """Neither a local directory nor the hub (or its offline cache) provides the checkpoint."""


class MissingFileError(CheckpointError):
    """A required checkpoint file is absent."""


class ConfigError(CheckpointError):
    """config.json (or another config file) lacks a required key or holds a bad value."""


class KeyMismatchError(CheckpointError):
    """Weights whose key set does not match the model's."""


class ShapeMismatchError(CheckpointError):
    """A weight tensor whose shape differs from the model's parameter."""


class InputError(ModelError):
    """Bad caller input."""


class InvalidTaskError(InputError):
    """Unknown task or prompt name."""


class InvalidDimensionError(InputError):
    """A truncation dimension that is not one of the Matryoshka sizes."""


class InputTooLongError(InputError):
    """An input longer than the token limit while truncation is off."""

    def __init__(self, index: int, num_tokens: int, limit: int) -> None:
        self.index = index
        self.num_tokens = num_tokens
        self.limit = limit
        super().__init__(
            f"input {index} has {num_tokens} tokens, more than the limit of {limit}; shorten it or pass truncate=True"
        )


class LateChunkTooLongError(InputTooLongError):
    """Late-chunked inputs whose joined sequence is longer than the limit while truncation is off;
    ``index`` is the first input that does not fit, ``num_tokens`` the joined length."""

    def __init__(self, index: int, num_tokens: int, limit: int) -> None:
        super().__init__(index, num_tokens, limit)
        self.args = (
            f"late-chunked inputs join into {num_tokens} tokens, more than the limit of {limit}; "
            f"input {index} is the first that does not fit (truncate=True may cut only the last input)",
        )


class EmptyInputError(InputError):
    """An empty batch, or an empty item where content is required."""


class ImageError(InputError):
    """An image that cannot be decoded."""


class NotAnImageError(ImageError):
    """Bytes given as an image that are no image format at all; ``looks_like`` says what they seem to be:
    ``"pdf"``, ``"text"`` or ``"unknown"`` (so that a caller can say what to send instead)."""

    def __init__(self, message: str, looks_like: str) -> None:
        super().__init__(message)
        self.looks_like = looks_like


class ImageTooLargeError(ImageError):
    """A decoded image whose pixel count exceeds the configured cap."""


class ImageModeError(ImageError):
    """An image whose pixel format has no faithful RGB conversion (16-bit or float greyscale)."""


class ImageAspectRatioError(ImageError):
    """An image with no pixels, or whose long side is more than 200 times its short side (the Qwen2-VL
    ``smart_resize`` limit)."""


class PdfError(InputError):
    """Not a PDF, or a corrupt one."""


class PdfEncryptedError(PdfError):
    """A password-protected PDF."""


class PdfRepairedError(PdfError):
    """A damaged PDF that MuPDF could only open by rebuilding its structure (refused, never silently repaired)."""


class PdfTooLargeError(PdfError):
    """A PDF file larger than the configured byte cap."""


class PageSelectionError(PdfError):
    """A malformed page selection or a page outside the document."""


class TooManyPagesError(PdfError):
    """More pages selected than the configured cap."""
