"""Configuration: Settings is the one source (flags generated from it), unknown variables stop start-up, the kernel is
built at start-up, and the first-hour messages (auth state, where to go) are logged."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import service.engine.kernel as engine_kernel
from colbert import _kernel
from service.__main__ import build_parser, main
from service.embeddings.media import MediaLimits, load_source
from service.engine.kernel import KernelUnavailableError, build_kernel, kernel_paths
from service.engine.runtime import where_to_go
from service.errors import PayloadTooLargeError
from service.flags import SECTIONS, field_docs, settings_from_args
from service.settings import CLIENT_VARIABLES, Settings, SettingsError


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [("JEV4_API_KEY", "JEV4_API_KEYS"), ("JEV4_MAX_PDF_PAGE", "JEV4_MAX_PDF_PAGES"), ("JEV4_PROT", "JEV4_PORT")],
)
def test_unknown_variable_names_the_nearest(variable: str, nearest: str) -> None:
    with pytest.raises(SettingsError, match=f"unknown variable {variable}; did you mean {nearest}?"):
        Settings.from_env({variable: "x"})


def test_client_variables_are_accepted_and_others_ignored() -> None:
    assert {"JEV4_URL"} == CLIENT_VARIABLES  # read by samples/_common.sh, not the server
    s = Settings.from_env({"JEV4_URL": "http://x", "OTHER_PORT": "1", "jev4_port": "2"})
    assert s.port == 8080


def test_serve_refuses_a_misspelt_key_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the trap: JEV4_API_KEY (singular) used to be ignored and the server started open
    monkeypatch.setenv("JEV4_API_KEY", "secret")
    assert main(["serve", "--tiny"]) == 2
    assert "did you mean JEV4_API_KEYS?" in capsys.readouterr().err


def test_every_field_has_a_doc_and_a_flag() -> None:
    docs = field_docs()
    parser = build_parser()
    commands = {
        name: action.choices[name]
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }
    serve_flags = {opt for a in commands["serve"]._actions for opt in a.option_strings}
    index_flags = {opt for a in commands["index"]._actions for opt in a.option_strings}
    for f in fields(Settings):
        assert docs[f.name].doc, f"Settings.{f.name} has no doc string"
        assert docs[f.name].section in SECTIONS["serve"], f"Settings.{f.name} is in no known section"
        assert "--" + f.name.replace("_", "-") in serve_flags
    for name in ("model", "tiny", "data_dir", "max_job_pdf_pages", "maxsim_cache_dir", "first_stage"):
        assert "--" + name.replace("_", "-") in index_flags
    help_text = commands["serve"].format_help()
    assert "JEV4_MAX_JOB_PDF_PAGES" in help_text
    assert "default 2000" in help_text


def test_flags_parse_like_the_environment_and_win() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--api-keys",
            "a,b",
            "--no-allow-remote-urls",
            "--download-timeout-s",
            "2.5",
            "--image-max-pixels",
            "none",
        ]
    )
    s = settings_from_args(args, {"JEV4_ALLOW_REMOTE_URLS": "1", "JEV4_PORT": "9001"})
    assert (s.api_keys, s.allow_remote_urls, s.download_timeout_s, s.image_max_pixels, s.port) == (
        ("a", "b"),
        False,
        2.5,
        None,
        9001,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", "eighty"])


def test_kernel_is_built_into_the_configured_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _kernel.kernel() is None:
        pytest.skip("no C compiler here")
    _kernel._loaded.clear()  # build again, into the configured directory
    previous = _kernel.cache_dir
    try:
        with caplog.at_level(logging.INFO, logger="jev4.kernel"):
            monkeypatch.setattr(engine_kernel, "_announced", False)
            assert build_kernel(Settings(maxsim_cache_dir=tmp_path / "k")) is True
            assert build_kernel(Settings(maxsim_cache_dir=tmp_path / "k")) is True  # as `serve`, then the app
        assert list((tmp_path / "k").glob("maxsim-*.so"))
        built = _kernel.kernel()
        assert built is not None
        (record,) = [r for r in caplog.records if r.name == "jev4.kernel"]  # logged once
        assert record.__dict__["paths"] == kernel_paths(built)  # says which paths this CPU gave it
        assert ("amx" in kernel_paths(built)) == built.amx
    finally:
        _kernel.cache_dir = previous
        _kernel._loaded.clear()


def test_missing_kernel_warns_and_counts_or_refuses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    from colbert.scoring import maxsim

    monkeypatch.setattr(_kernel, "compiler", "no-such-compiler-jev4")
    monkeypatch.setattr(_kernel, "_loaded", {})
    monkeypatch.setattr(_kernel, "fallback_uses", 0)
    with caplog.at_level(logging.WARNING, logger="colbert._kernel"):
        assert build_kernel(Settings()) is False
        with pytest.raises(KernelUnavailableError, match="JEV4_REQUIRE_MAXSIM_KERNEL"):
            build_kernel(Settings(require_maxsim_kernel=True))
        q = np.ones((2, 4), dtype=np.float32)
        maxsim(q, [q])
    assert _kernel.fallback_uses == 1
    assert "no C compiler 'no-such-compiler-jev4'" in caplog.text
    assert "torch fallback" in caplog.text


def test_serve_stops_when_the_kernel_is_required_and_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(_kernel, "compiler", "no-such-compiler-jev4")
    monkeypatch.setattr(_kernel, "_loaded", {})
    monkeypatch.setattr("service.logs.configure_logging", lambda *a, **k: None)
    assert main(["serve", "--tiny", "--data-dir", str(tmp_path), "--require-maxsim-kernel"]) == 2
    assert "JEV4_REQUIRE_MAXSIM_KERNEL" in capsys.readouterr().err


def test_byte_limits_name_their_setting() -> None:
    limits = MediaLimits(max_bytes=4, max_bytes_setting="max_pdf_bytes")
    with pytest.raises(PayloadTooLargeError, match=r"\(JEV4_MAX_PDF_BYTES\)"):
        asyncio.run(load_source("aGVsbG8gd29ybGQ=", limits))
    with pytest.raises(PayloadTooLargeError, match=r"\(JEV4_MAX_DOWNLOAD_BYTES\)"):
        asyncio.run(load_source("aGVsbG8gd29ybGQ=", MediaLimits(max_bytes=4)))


def test_where_to_go_line() -> None:
    line = where_to_go(Settings(host="0.0.0.0", port=9000))
    assert "http://127.0.0.1:9000/ui/" in line
    assert "http://127.0.0.1:9000/docs" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("terminal", "json_lines"), [(True, None), (False, None), (True, True), (False, False)])
def test_logs_are_plain_on_a_terminal_and_json_otherwise(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, json_lines: bool | None
) -> None:
    from service.logs import configure_logging

    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("info", json_lines=json_lines)
        logging.getLogger("jev4.test").info("hello %s", "there")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    line = stream.getvalue().strip()
    expect_json = (not terminal) if json_lines is None else json_lines
    if expect_json:
        assert json.loads(line)["msg"] == "hello there"
    else:
        assert line.endswith("INFO    hello there")
        assert not line.startswith("{")


def test_compile_without_a_compiler_stops_start_up_naming_the_setting(service_checkpoint: Path) -> None:
    from torch._inductor import config

    from service.engine.loading import ModelLoadError, load_encoder
    from service.engine.runtime import model_source

    with (
        config.patch({"cpp.cxx": ("no-such-c++-compiler",)}),
        pytest.raises(ModelLoadError, match=r"cannot compile the model: .*JEV4_COMPILE.*apt-get install g\+\+"),
    ):
        load_encoder(model_source(Settings(model=str(service_checkpoint), compile=True)))
