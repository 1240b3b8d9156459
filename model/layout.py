"""Where an image's tokens fall on the image: the merged patch grid, defined once for model/, colbert/ and service/.

The vision tower cuts an image into 14 x 14 pixel patches and merges each 2 x 2 block into one token, so one image
token covers :data:`PATCH` (28) x 28 pixels of the resized image. ``image_grid_thw`` (the processor's
``(t, h, w)`` in 14-pixel patches) therefore gives a token grid of ``(h // 2, w // 2)`` rows and columns, and the
image as the model saw it is ``cols * 28`` x ``rows * 28`` pixels. Cheap to import (no torch).

>>> layout = PageLayout.from_grid_thw((1, 34, 24))
>>> layout
PageLayout(rows=17, cols=12)
>>> layout.image_size, layout.num_patches
((336, 476), 204)
>>> PageLayout.from_metadata(layout.to_metadata()) == layout
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GRID_KEY", "MERGE", "PATCH", "PageLayout"]

MERGE = 2  # 2 x 2 vision patches merge into one token
PATCH = 14 * MERGE  # pixels per side of one merged patch (one image token)
GRID_KEY = "image_grid"  # the stored unit metadata key holding [rows, cols]


@dataclass(frozen=True, slots=True)
class PageLayout:
    """The merged patch grid of one embedded image: ``rows`` x ``cols`` tokens of :data:`PATCH` pixels."""

    rows: int
    cols: int

    @classmethod
    def from_grid_thw(cls, grid_thw: Iterable[Any]) -> PageLayout:
        """From one ``image_grid_thw`` row ``(t, h, w)`` in vision patches (ints or 0-d tensors)."""
        _t, h, w = (int(v) for v in grid_thw)
        return cls(h // MERGE, w // MERGE)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> PageLayout | None:
        """The layout stored with a page unit (None when the unit has none, e.g. a text chunk)."""
        grid = metadata.get(GRID_KEY)
        if not isinstance(grid, list | tuple) or len(grid) != 2:
            return None
        return cls(int(grid[0]), int(grid[1]))

    def to_metadata(self) -> dict[str, Any]:
        """The stored form (unit metadata): ``{"image_grid": [rows, cols]}``."""
        return {GRID_KEY: [self.rows, self.cols]}

    @property
    def grid(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def num_patches(self) -> int:
        """Image tokens of the image (rows * cols)."""
        return self.rows * self.cols

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the image as the model saw it."""
        return self.cols * PATCH, self.rows * PATCH
