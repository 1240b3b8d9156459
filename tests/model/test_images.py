"""load_image: every source kind, RGB conversion as the reference does it, bombs and corrupt data refused."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.errors import ImageError, ImageTooLargeError, InputError, NotAnImageError
from model.images import DEFAULT_MAX_DECODED_PIXELS, identify_image, load_image, to_rgb


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height RGB pixels, followed by a tiny (wrong) IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))


@pytest.fixture
def sample() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_sources(sample: Image.Image, tmp_path: Path) -> None:
    data = _png(sample)
    path = tmp_path / "sample.png"
    path.write_bytes(data)
    for source in (sample, data, bytearray(data), memoryview(data), path, str(path), np.asarray(sample)):
        image = load_image(source)  # type: ignore[arg-type]
        assert image.mode == "RGB"
        assert _same_pixels(image, sample)


def test_lazily_opened_image_is_checked_and_loaded(sample: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "lazy.png"
    path.write_bytes(_png(sample))
    with Image.open(path) as lazy:
        with pytest.raises(ImageTooLargeError, match="40x30 = 1200 pixels, more than the limit of 1000"):
            load_image(lazy, max_decoded_pixels=1000)
        assert _same_pixels(load_image(lazy), sample)


def test_arrays() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(np.asarray(load_image(gray))[..., 0], gray)
    rgba = np.zeros((3, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red, fully transparent
    assert np.asarray(load_image(rgba))[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(ImageError, match=r"expected a uint8 array .* got float32 \(3, 4\)"):
        load_image(np.zeros((3, 4), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(ImageError, match=r"got uint8 \(3, 4, 2\)"):
        load_image(np.zeros((3, 4, 2), dtype=np.uint8))


def test_alpha_is_dropped_not_composited() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # transparent red
    rgb = load_image(_png(rgba))
    assert rgb.getpixel((0, 0)) == (255, 0, 0)  # reference: .convert("RGB") keeps the stored colour
    assert _same_pixels(rgb, rgba.convert("RGB"))


def test_palette_with_byte_transparency_matches_convert_without_warning() -> None:
    image = Image.new("P", (8, 8))
    image.putpalette([value for i in range(256) for value in (i, 255 - i, (7 * i) % 256)])
    image.putdata([i * 3 % 256 for i in range(64)])
    image.info["transparency"] = bytes(range(256))
    decoded = Image.open(io.BytesIO(_png(image)))
    with pytest.warns(UserWarning, match="Transparency expressed in bytes"):
        expected = decoded.convert("RGB")
    assert _same_pixels(load_image(_png(image)), expected)  # no warning here (warnings are errors)
    assert _same_pixels(to_rgb(decoded), expected)


@pytest.mark.parametrize("mode", ["L", "LA", "CMYK", "1"])
def test_modes_match_convert_rgb(sample: Image.Image, mode: str) -> None:
    image = sample.convert(mode)
    assert _same_pixels(load_image(image), image.convert("RGB"))


@pytest.mark.parametrize("dtype", ["<u2", ">u2", "int32"])
def test_16bit_greyscale_keeps_its_high_byte(dtype: str) -> None:
    """convert("RGB") clips 16-bit values to 255 (a 16-bit scan becomes white); we keep ``value >> 8``."""
    values = np.array([[0, 255, 256, 4095], [32768, 40000, 65280, 65535]])
    image = Image.fromarray(values.astype(dtype))
    assert image.mode in ("I;16", "I;16B", "I")
    got = np.asarray(load_image(image))
    np.testing.assert_array_equal(got[..., 0], [[0, 0, 1, 15], [128, 156, 255, 255]])
    assert (got == got[..., :1]).all()  # grey: R = G = B


@pytest.mark.parametrize("values", [np.array([[0.5, 1.0]], np.float32), np.array([[-1, 70000]], np.int32)])
def test_float_and_wide_greyscale_refused(values: np.ndarray) -> None:
    from model.errors import ImageModeError

    with pytest.raises(ImageModeError, match="8-bit"):
        load_image(Image.fromarray(values))


def test_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (6, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (255, 0, 0)


def test_cap_is_checked_before_decoding() -> None:
    # The header claims 300x300 but the data is garbage: the cap must fire first (nothing was decoded).
    data = _png_header_only(300, 300)
    with pytest.raises(ImageTooLargeError, match="300x300 = 90000 pixels, more than the limit of 80000"):
        load_image(data, max_decoded_pixels=80_000)
    with pytest.raises(ImageError, match="corrupt or truncated") as caught:
        load_image(data, max_decoded_pixels=90_000)
    assert not isinstance(caught.value, ImageTooLargeError)


def test_pil_bomb_signals_never_leak() -> None:
    warned = _png_header_only(10_000, 10_000)  # above PIL's MAX_IMAGE_PIXELS: PIL warns
    refused = _png_header_only(20_000, 20_000)  # above twice that: PIL raises DecompressionBombError
    with pytest.raises(ImageTooLargeError, match="100000000 pixels, more than the limit of 50000000"):
        load_image(warned)
    with pytest.raises(ImageTooLargeError, match=r"400000000 pixels.*configured limit: 50000000"):
        load_image(refused)
    # with our cap raised, PIL's warning stays silent (warnings are errors here) and decoding goes on
    with pytest.raises(ImageError, match="corrupt or truncated") as caught:
        load_image(warned, max_decoded_pixels=10**9)
    assert not isinstance(caught.value, ImageTooLargeError)
    # PIL's own hard limit still applies, as our error type
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        load_image(refused, max_decoded_pixels=10**9)


def test_default_cap() -> None:
    assert DEFAULT_MAX_DECODED_PIXELS == 50_000_000
    with pytest.raises(ImageTooLargeError, match="limit of 50000000"):
        load_image(_png_header_only(8000, 7000))
    with pytest.raises(InputError, match="max_decoded_pixels must be positive"):
        load_image(b"x", max_decoded_pixels=0)


def test_bad_data(sample: Image.Image, tmp_path: Path) -> None:
    with pytest.raises(NotAnImageError, match="not an image: the bytes look like text") as info:
        load_image(b"this is not an image")
    assert info.value.looks_like == "text"
    with pytest.raises(NotAnImageError, match="look like a PDF document") as info:
        load_image(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj")
    assert info.value.looks_like == "pdf"
    with pytest.raises(NotAnImageError, match=r"no known format \(first bytes: 00 ff 10 80\)") as info:
        load_image(bytes([0, 255, 16, 128]))
    assert info.value.looks_like == "unknown"
    assert identify_image(_png(sample)) == "PNG"
    with pytest.raises(NotAnImageError, match=r"^tool\.py: not an image: the bytes look like text"):
        identify_image(b"print(1)\n", "tool.py")
    with pytest.raises(ImageError, match="empty bytes"):
        load_image(b"")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(_png(sample)[:200])
    with pytest.raises(ImageError, match="image file not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="got int"):
        load_image(42)  # type: ignore[arg-type]
