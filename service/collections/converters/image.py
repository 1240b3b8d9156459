"""An image (PNG, JPEG, WebP, GIF, BMP, TIFF) -> one page without a text layer.

It is the last page converter tried: bytes no other converter claims are decoded as an image, and the decoder's
error names what the bytes look like instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.errors import ImageTooLargeError
from model.images import load_image
from model.types import PageImage
from service.errors import naming

if TYPE_CHECKING:
    from service.collections.converters.base import PageLimits

__all__ = ["CONVERTER", "ImageConverter"]


class ImageConverter:
    kind = "image"
    description = "an image (PNG, JPEG, WebP, GIF, BMP, TIFF)"

    def sniff(self, data: bytes, name: str | None) -> bool:
        return True  # the fallback: the decoder says what is wrong with bytes that are no image

    def count(self, data: bytes, limits: PageLimits) -> int:
        return 1

    def load(self, data: bytes, numbers: list[int], limits: PageLimits) -> list[PageImage]:
        with naming((ImageTooLargeError, "max_decoded_pixels")):
            image = load_image(data, max_decoded_pixels=limits.max_decoded_pixels)
        return [PageImage(1, image)]


CONVERTER = ImageConverter()
