"""Small units of the service: settings, wire encodings, input parsing, auth, error table."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from model.errors import (
    ImageError,
    InputTooLongError,
    InvalidDimensionError,
    PdfEncryptedError,
    TooManyPagesError,
)
from service.collections.indexing import IndexOptions
from service.embeddings.embed import ImageItem, PdfItem, TextItem, parse_embedding_types, parse_inputs
from service.embeddings.encoding import EmbeddingType, decode_base64, encode_value, encode_vector
from service.errors import QueueFullError, UnauthorizedError, UnprocessableError, error_info
from service.http.auth import check_bearer
from service.limits import InputLimits
from service.settings import Settings, SettingsError


def test_settings_env_parsing_and_overrides() -> None:
    env = {
        "JEV4_PORT": "9001",
        "JEV4_ALLOW_REMOTE_URLS": "true",
        "JEV4_ALLOWED_URL_HOSTS": "a.com, .b.org",
        "JEV4_IMAGE_MAX_PIXELS": "none",
        "JEV4_DOWNLOAD_TIMEOUT_S": "2.5",
        "JEV4_DATA_DIR": "/tmp/x",
        "JEV4_API_KEYS": "k1,k2",
        "JEV4_QDRANT_API_KEY": "qsecret",
        "JEV4_PDF_PAGES_PER_STEP": "16",
    }
    s = Settings.from_env(env, port=9002)
    options = IndexOptions.from_settings(s, InputLimits.from_settings(s), retry_after_s=s.retry_after_s)
    assert options.pages_per_step == 16
    assert options.max_pages == s.max_pdf_pages
    assert options.max_job_pages == s.max_job_pdf_pages
    assert s.port == 9002  # flag beats environment
    assert s.allow_remote_urls is True
    assert s.allowed_url_hosts == ("a.com", ".b.org")
    assert s.image_max_pixels is None
    assert s.download_timeout_s == 2.5
    assert s.data_dir == Path("/tmp/x")
    assert s.api_keys == ("k1", "k2")
    text = repr(s) + str(s.public_dict())
    assert "k1" not in text
    assert "qsecret" not in text
    assert "<redacted>" in text


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"JEV4_PORT": "abc"}, "JEV4_PORT"),
        ({"JEV4_TINY": "maybe"}, "JEV4_TINY"),
        ({"JEV4_MAX_ITEMS_PER_REQUEST": "0"}, "JEV4_MAX_ITEMS_PER_REQUEST"),
        ({"JEV4_DEFAULT_TASK": "summarize"}, "JEV4_DEFAULT_TASK"),
        ({"JEV4_COLLECTION_BACKEND": "redis"}, "JEV4_COLLECTION_BACKEND"),
        ({"JEV4_FIRST_STAGE": "hnsw"}, "JEV4_FIRST_STAGE"),
        ({"JEV4_PDF_PAGES_PER_STEP": "0"}, "JEV4_PDF_PAGES_PER_STEP"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        Settings.from_env(env)


def test_encodings_exact() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal(16).astype(np.float32)
    assert encode_vector(v, EmbeddingType.FLOAT) == [float(x) for x in v]
    raw = base64.b64decode(encode_vector(v, EmbeddingType.BASE64))
    assert raw == v.astype("<f4").tobytes()
    assert np.array_equal(decode_base64(encode_vector(v, EmbeddingType.BASE64)), v)
    bits = [1 if x > 0 else 0 for x in v]
    expected = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, 16, 8)]  # MSB first
    assert encode_vector(v, EmbeddingType.UBINARY) == expected
    assert encode_vector(v, EmbeddingType.BINARY) == [b - 128 for b in expected]  # offset binary


def test_multivector_and_dict_encodings() -> None:
    m = np.arange(-8, 8, dtype=np.float32).reshape(2, 8)
    out = encode_value(m, [EmbeddingType.FLOAT, EmbeddingType.UBINARY, EmbeddingType.BASE64], as_dict=True)
    assert out["float"] == m.tolist()
    assert out["ubinary"] == [[0], [0b01111111]]
    assert [decode_base64(s).tolist() for s in out["base64"]] == m.tolist()
    assert encode_value(m[0], [EmbeddingType.BINARY], as_dict=False) == [-128]  # byte 0 - 128


def test_parse_embedding_types() -> None:
    assert parse_embedding_types("float") == [EmbeddingType.FLOAT]
    assert parse_embedding_types(["binary", "float", "binary"]) == [EmbeddingType.BINARY, EmbeddingType.FLOAT]
    with pytest.raises(ValueError, match="expected one of"):
        parse_embedding_types("int8")
    with pytest.raises(ValueError, match="at least one"):
        parse_embedding_types([])


def test_parse_inputs() -> None:
    items = parse_inputs(["a", {"text": "b"}, {"image": "x"}, {"pdf": "y", "pages": "2"}])
    assert items == [TextItem("a"), TextItem("b"), ImageItem("x"), PdfItem("y", "2")]
    assert parse_inputs({"pdf": "y"}) == [PdfItem("y")]
    for bad, match in [
        ([], "empty"),
        ([1, 2, 3], r"input\[0\]: token ids"),
        (["ok", {"txt": "a"}], r"input\[1\]: expected an object with exactly one"),
        ([{"text": "a", "image": "b"}], "exactly one"),
        ([{"image": 5}], r"input\[0\]\.image: expected a string"),
        ([{"text": "a", "extra": 1}], "unknown key"),
        ([{"pdf": "y", "pages": 3}], "pages"),
    ]:
        with pytest.raises(UnprocessableError, match=match):
            parse_inputs(bad)
    with pytest.raises(Exception, match="limit of 2") as info:
        parse_inputs(["a", "b", "c"], max_items=2)
    assert error_info(info.value) is not None
    assert error_info(info.value).status == 413  # type: ignore[union-attr]


def test_bearer_check() -> None:
    check_bearer(None, ())
    check_bearer("Bearer k2", ("k1", "k2"))
    check_bearer("bearer   k1 ", ("k1",))
    for header, code in [
        (None, "missing_api_key"),
        ("Basic k1", "invalid_auth_format"),
        ("Bearer nope", "invalid_api_key"),
    ]:
        with pytest.raises(UnauthorizedError) as info:
            check_bearer(header, ("k1",))
        assert info.value.code == code


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (InputTooLongError(3, 40000, 32768), 413, "input_too_long"),
        (InvalidDimensionError("bad"), 422, "invalid_dimensions"),
        (ImageError("bad"), 415, "invalid_image"),
        (PdfEncryptedError("bad"), 422, "pdf_encrypted"),
        (TooManyPagesError("bad"), 413, "too_many_pages"),
        (QueueFullError("busy", retry_after=3), 429, "queue_full"),
    ],
)
def test_error_table(exc: Exception, status: int, code: str) -> None:
    info = error_info(exc)
    assert info is not None
    assert (info.status, info.code) == (status, code)
    assert set(info.body()["error"]) == {"message", "type", "code"}


def test_unknown_error_is_not_mapped() -> None:
    assert error_info(RuntimeError("x")) is None


def test_cli_flags_override_environment() -> None:
    from service.__main__ import build_parser, settings_from_args

    args = build_parser().parse_args(
        [
            "serve",
            "--port",
            "9100",
            "--api-keys",
            "a,b",
            "--tiny",
            "--allowed-url-hosts",
            "x.org",
        ]
    )
    s = settings_from_args(args, {"JEV4_PORT": "9000", "JEV4_HOST": "0.0.0.0"})
    assert (s.port, s.host, s.api_keys, s.tiny, s.allowed_url_hosts) == (
        9100,
        "0.0.0.0",
        ("a", "b"),
        True,
        ("x.org",),
    )
