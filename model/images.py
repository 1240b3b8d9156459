"""Decode images from PIL objects, arrays, paths or bytes into RGB, refusing decompression bombs.

Decisions (the reference simply opens the image with PIL and calls ``.convert("RGB")``; we do the same):

* Colour: every mode goes through ``Image.convert("RGB")``. Alpha is **dropped, not composited** (a
  transparent pixel keeps its stored colour), exactly as the reference sees it: its ``encode_image`` opens
  paths with ``.convert("RGB")`` and transformers 4.x's ``convert_to_rgb`` does the same for PIL input.
  (transformers 5's ``convert_to_rgb`` composites alpha onto white instead, so it differs for RGBA/LA/
  transparent-palette images; checked: equal for L, P, CMYK, different for RGBA and LA.)
  Palette images with per-entry transparency go P → RGBA → RGB, which gives the same pixels without PIL's
  "Transparency expressed in bytes" warning.
* No EXIF rotation (the reference applies none: it opens the file and converts it; a phone photo stored
  sideways is embedded sideways, as by the reference). Multi-frame files (animated GIF/WebP, multi-page TIFF)
  give their first frame, as ``Image.open(...).convert("RGB")`` does in the reference. CMYK goes through PIL's
  ``convert("RGB")`` like every mode (the reference's path). 16-bit RGB PNGs are read by PIL as 8-bit RGB
  (same as the reference). 16-bit GREYSCALE (modes ``I;16*``, and ``I`` whose values all lie in 0..65535) is
  scaled to 8 bits by keeping the high byte (``value >> 8``), then made RGB: PIL's conversion — the
  reference's — clips every value above 255 to white, so its embedding is of a blank page; we differ from it
  here on purpose. ``>> 8`` is the rule PIL already applies to 16-bit RGB PNGs, so a 16-bit image embeds like
  its own 8-bit export, and it is per pixel: a crop or a tile keeps its pixels' values (stretching by the
  image's own range would not; an image that uses only 12 of its 16 bits comes out dark — stretch it first).
  Float greyscale (``F``) and ``I`` images beyond 16 bits have no scale to assume and are refused with
  :class:`ImageModeError`; convert them to 8 bits first.
* Decompression bombs: the decoded pixel count (width × height from the file header) is checked against
  ``max_decoded_pixels`` **before** any pixel is decoded, and refused with :class:`ImageTooLargeError`. PIL's
  own ``DecompressionBombWarning`` is silenced inside this module and its ``DecompressionBombError`` (above
  2 × ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP, which therefore also caps ``max_decoded_pixels``) becomes
  :class:`ImageTooLargeError`; neither leaks to callers. Opening and decoding run under one module lock so the
  temporary warning filter is never interleaved between threads (decoding is short next to the model).
* Anything PIL cannot read (unknown format, truncated or corrupt data, missing file) is :class:`ImageError`;
  bytes in no image format at all are :class:`NotAnImageError`, whose message says what they look like
  (a PDF, text, or unknown data with its first bytes) — see :func:`describe_bytes`.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from model.errors import ImageError, ImageModeError, ImageTooLargeError, InputError, NotAnImageError

__all__ = ["DEFAULT_MAX_DECODED_PIXELS", "ImageSource", "describe_bytes", "identify_image", "load_image", "to_rgb"]

DEFAULT_MAX_DECODED_PIXELS: Final = 50_000_000
"""Default decoded-pixel cap: a 50 MP photo (about 150 MB as RGB) passes, a bomb does not."""

ImageSource = Image.Image | npt.NDArray[np.uint8] | bytes | bytearray | memoryview | str | os.PathLike[str]

# What PIL's format plugins raise on corrupt or truncated data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)
_LOCK = threading.Lock()
_SIXTEEN_BITS = 65535


def load_image(source: ImageSource, *, max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS) -> Image.Image:
    """Decode ``source`` (PIL image, uint8 array (H, W[, 3|4]), encoded bytes, or a file path) into a fully
    loaded RGB PIL image whose width × height is at most ``max_decoded_pixels``."""
    if max_decoded_pixels < 1:
        raise InputError(f"max_decoded_pixels must be positive, got {max_decoded_pixels}")
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ImageError("cannot decode an image from empty bytes")
        return _decode(io.BytesIO(bytes(source)), "<bytes>", max_decoded_pixels)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"image file not found: {path}")
        with path.open("rb") as file:
            return _decode(file, str(path), max_decoded_pixels)
    else:
        raise ImageError(f"expected a PIL image, uint8 array, bytes or path, got {type(source).__name__}")
    _check_size(image.size, max_decoded_pixels, "image")
    with _LOCK, _quiet_bombs():
        try:
            image.load()  # a lazily opened PIL image may still hold undecoded data
            return to_rgb(image)
        except Image.DecompressionBombError as error:
            raise ImageTooLargeError(f"image: {error} (configured limit: {max_decoded_pixels} pixels)") from None
        except _DECODE_ERRORS as error:
            raise ImageError(f"cannot decode image: {error}") from error


def to_rgb(image: Image.Image) -> Image.Image:
    """``image.convert("RGB")`` (alpha dropped), without PIL's palette-transparency warning; 16-bit greyscale
    scaled to 8 bits first (see the module doc)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return _grey16_to_rgb(image)
    if image.mode == "P" and isinstance(image.info.get("transparency"), bytes):
        return image.convert("RGBA").convert("RGB")  # same RGB values as convert("RGB"), no warning
    return image.convert("RGB")


def _grey16_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image)  # (H, W) uint16 (any byte order), int32 or float32
    if image.mode == "F" or (values.size and (int(values.min()) < 0 or int(values.max()) > _SIXTEEN_BITS)):
        raise ImageModeError(
            f"{image.mode} greyscale images with values outside 0..65535 (float or 32-bit) are not accepted: no "
            "8-bit scale can be assumed for them (converting to RGB as PIL does clips every value above 255 to "
            "white); convert the image to 8-bit greyscale or RGB first"
        )
    grey = (values.astype(np.uint32) >> 8).astype(np.uint8)  # (H, W): the high byte of each 16-bit value
    return Image.fromarray(grey).convert("RGB")  # (H, W) uint8 is mode L


def _decode(file: IO[bytes], name: str, max_decoded_pixels: int) -> Image.Image:
    with _LOCK, _quiet_bombs():
        try:
            image = Image.open(file)  # reads the header only
            _check_size(image.size, max_decoded_pixels, name)
            image.load()  # decodes the pixels (and releases the file)
            return to_rgb(image)
        except Image.DecompressionBombError as error:
            raise ImageTooLargeError(f"{name}: {error} (configured limit: {max_decoded_pixels} pixels)") from None
        except UnidentifiedImageError:
            file.seek(0)
            looks_like, description = describe_bytes(file.read(4096))
            raise NotAnImageError(f"{name}: not an image: the bytes look like {description}", looks_like) from None
        except _DECODE_ERRORS as error:
            raise ImageError(f"{name}: corrupt or truncated image: {error}") from error


def identify_image(data: bytes, name: str = "<bytes>") -> str:
    """The image format of ``data`` read from its header only (e.g. ``"PNG"``), nothing decoded; raises
    :class:`NotAnImageError` (saying what the bytes look like) when no image format matches."""
    with _LOCK, _quiet_bombs():
        try:
            with Image.open(io.BytesIO(data)) as image:
                return str(image.format)
        except Image.DecompressionBombError as error:  # a header claiming > 2x PIL's MAX_IMAGE_PIXELS
            raise ImageTooLargeError(f"{name}: {error}") from None
        except UnidentifiedImageError:
            looks_like, description = describe_bytes(data[:4096])
            raise NotAnImageError(f"{name}: not an image: the bytes look like {description}", looks_like) from None
        except _DECODE_ERRORS as error:
            raise ImageError(f"{name}: corrupt or truncated image header: {error}") from error


def describe_bytes(head: bytes) -> tuple[str, str]:
    """What the first bytes of a file look like: ``("pdf" | "text" | "unknown", a phrase for a message)``.

    >>> describe_bytes(b"%PDF-1.7 ...")
    ('pdf', 'a PDF document')
    >>> describe_bytes("def main():\\n    return 0\\n".encode())
    ('text', 'text (UTF-8), e.g. code or a text file')
    >>> describe_bytes(bytes([0, 1, 2, 250]))
    ('unknown', 'no known format (first bytes: 00 01 02 fa)')
    """
    if b"%PDF-" in head[:1024]:
        return "pdf", "a PDF document"
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:  # a multi-byte character cut at the end of the sample is still text
        text = sample[: error.start].decode("utf-8") if error.start >= len(sample) - 3 else ""
    if text and all(c.isprintable() or c in "\t\n\r\f" for c in text):
        return "text", "text (UTF-8), e.g. code or a text file"
    return "unknown", f"no known format (first bytes: {head[:8].hex(' ')})"


def _check_size(size: tuple[int, int], max_decoded_pixels: int, name: str) -> None:
    width, height = size
    if width * height > max_decoded_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {width * height} pixels, more than the limit of {max_decoded_pixels}"
        )


def _from_array(array: npt.NDArray[np.uint8]) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(
            f"expected a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}"
        )
    return Image.fromarray(np.ascontiguousarray(array))


@contextlib.contextmanager
def _quiet_bombs() -> Iterator[None]:
    """Ignore PIL's DecompressionBombWarning (this module applies its own cap first). Hold ``_LOCK``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        yield
