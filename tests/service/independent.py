"""What the collection tests compare the server against: the server's checkpoint run in-process on the same
preprocessing settings, and MaxSim written out in numpy (independent of colbert/'s kernel and of the index)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from model.pdf import render_pages
from model.types import parse_task
from tests.service.conftest import SERVER_ENV

DPI = int(SERVER_ENV["JEV4_PDF_DPI"])
MAX_PIXELS = int(SERVER_ENV["JEV4_IMAGE_MAX_PIXELS"])


def maxsim(query: np.ndarray, page: np.ndarray) -> float:
    return float((query @ page.T).max(axis=1).sum())  # (Lq, Ld) -> max over page tokens -> sum


def query_output(encoder: Any, text: str) -> Any:
    prepared = encoder.processor.prepare_text(text, parse_task("retrieval.query"))
    return encoder.embed([prepared], return_multivector=True)[0]


def image_output(encoder: Any, image: Image.Image) -> Any:
    prepared = encoder.processor.prepare_image(image, parse_task("retrieval.passage"), max_pixels=MAX_PIXELS)
    return encoder.embed([prepared], return_multivector=True)[0]


def pdf_page_output(encoder: Any, pdf: bytes, page: int) -> Any:
    return image_output(encoder, render_pages(pdf, dpi=DPI, pages=[page])[0].image)
