"""Office documents (DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, and legacy DOC/XLS/PPT) -> a PDF by LibreOffice.

LibreOffice is optional (``bash scripts/setup.sh --office`` installs Debian's ``libreoffice-*-nogui``); without
it an office upload answers 415 ``office_unavailable`` naming the format and that flag. A conversion runs
``soffice --headless --convert-to pdf`` as a separate process group:

- one at a time per worker process (LibreOffice is not safe to run twice on one profile), each with a fresh private
  profile in its own temporary directory (``-env:UserInstallation``), removed afterwards;
- a time limit (:data:`TIME_LIMIT_S`: the whole group is killed past it), an address-space limit
  (:data:`MEMORY_LIMIT_BYTES`), and no network where the kernel lets an unprivileged user namespace drop it
  (``unshare -rn``);
- macros never run: the fresh profile is seeded (:data:`PROFILE_SETTINGS`) with macro execution disabled and the
  macro security level at "very high" (only signed macros from trusted places; there are none), so neither a
  document's Basic/VBA nor an event bound to its loading runs; a headless conversion has nobody to ask anyway.

Before it starts, the container is checked (:mod:`.office_checks`: a ZIP that unpacks too large, a deck or document
that declares more pages than the cap: 413). A hung or crashing conversion is a 422 for that document only; the PDF
then takes the PDF path, where its pages are counted against the caps."""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from service.collections.converters.ebook import zip_members
from service.collections.converters.office_checks import check_before_conversion
from service.errors import PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.collections.converters.base import PageLimits

__all__ = ["CONVERTERS", "MEMORY_LIMIT_BYTES", "TIME_LIMIT_S", "OfficeConverter", "soffice"]

TIME_LIMIT_S: Final = 120.0
MEMORY_LIMIT_BYTES: Final = 4 * 1024**3
_ONE_AT_A_TIME = threading.Lock()
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


_SCRIPTING = "/org.openoffice.Office.Common/Security/Scripting"
# the profile's registry, read by LibreOffice at start: macros off, whatever the document asks for
PROFILE_SETTINGS: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    f'<item oor:path="{_SCRIPTING}"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop>'
    "</item>\n"
    f'<item oor:path="{_SCRIPTING}"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>\n'
    "</oor:items>\n"
)


def soffice() -> str | None:
    """The LibreOffice executable, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


@functools.cache
def _no_network_prefix() -> tuple[str, ...]:
    """``unshare -rn`` when this kernel lets an unprivileged process drop its network, else nothing."""
    if shutil.which("unshare") is None:
        return ()
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return ("unshare", "-rn") if ok else ()


def _limit_memory() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def _has_member(member: str) -> Callable[[bytes, str | None], bool]:
    return lambda data, name: member in (zip_members(data) or [])


def _odf(mime: bytes) -> Callable[[bytes, str | None], bool]:
    return lambda data, name: data[30:38] == b"mimetype" and data[38:].startswith(mime)


def _suffix_is(*suffixes: str) -> Callable[[bytes, str | None], bool]:
    return lambda data, name: data.startswith(_OLE) and (name or "").lower().endswith(suffixes)


class OfficeConverter:
    def __init__(self, kind: str, description: str, sniff: Callable[[bytes, str | None], bool]) -> None:
        self.kind = kind  # also the file extension LibreOffice is given
        self.description = description
        self._sniff = sniff

    def sniff(self, data: bytes, name: str | None) -> bool:
        return self._sniff(data, name)

    def to_pdf(self, data: bytes, limits: PageLimits) -> bytes:
        if len(data) > limits.max_bytes:
            raise PayloadTooLargeError(f"{self.description} of {len(data)} bytes, more than {limits.max_bytes}")
        check_before_conversion(self.kind, data, self.description, limits.max_converted_pages)  # bombs, page counts
        program = soffice()
        if program is None:
            raise UnsupportedMediaTypeError(
                f"{self.description} becomes pages through LibreOffice, which this server does not have: install "
                "it with `bash scripts/setup.sh --office`, or convert the file to PDF and send that",
                code="office_unavailable",
            )
        with _ONE_AT_A_TIME, tempfile.TemporaryDirectory(prefix="jev4-office-") as tmp:
            return self._convert(program, Path(tmp), data, limits.max_bytes)

    def _convert(self, program: str, tmp: Path, data: bytes, max_bytes: int) -> bytes:
        source = tmp / f"document.{self.kind}"
        source.write_bytes(data)
        (tmp / "profile" / "user").mkdir(parents=True)
        (tmp / "profile" / "user" / "registrymodifications.xcu").write_text(PROFILE_SETTINGS, encoding="utf-8")
        command = [
            *_no_network_prefix(),
            program,
            f"-env:UserInstallation={(tmp / 'profile').as_uri()}",
            "--headless", "--invisible", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
            "--convert-to", "pdf", "--outdir", str(tmp / "out"), str(source),
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_limit_memory,
        )  # fmt: skip
        try:
            _out, err = process.communicate(timeout=TIME_LIMIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()  # reap it and close its pipe
            raise UnprocessableError(
                f"{self.description}: the conversion to PDF took longer than {TIME_LIMIT_S:.0f} s and was stopped; "
                "convert it to PDF yourself and send that",
                code="conversion_failed",
            ) from None
        finally:
            _kill_group(process.pid)  # a helper LibreOffice left behind
        pdf = tmp / "out" / "document.pdf"
        if process.returncode != 0 or not pdf.is_file():
            detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            raise UnprocessableError(
                f"{self.description}: LibreOffice could not convert it to PDF ({detail[0][:200]})",
                code="conversion_failed",
            )
        if pdf.stat().st_size > max_bytes:
            raise PayloadTooLargeError(f"{self.description}: its PDF has more than {max_bytes} bytes")
        return pdf.read_bytes()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


CONVERTERS: tuple[OfficeConverter, ...] = (
    OfficeConverter("docx", "a DOCX document (Word)", _has_member("word/document.xml")),
    OfficeConverter("xlsx", "an XLSX workbook (Excel)", _has_member("xl/workbook.xml")),
    OfficeConverter("pptx", "a PPTX presentation (PowerPoint)", _has_member("ppt/presentation.xml")),
    OfficeConverter("odt", "an ODT document", _odf(b"application/vnd.oasis.opendocument.text")),
    OfficeConverter("ods", "an ODS spreadsheet", _odf(b"application/vnd.oasis.opendocument.spreadsheet")),
    OfficeConverter("odp", "an ODP presentation", _odf(b"application/vnd.oasis.opendocument.presentation")),
    OfficeConverter("rtf", "an RTF document", lambda data, name: data.startswith(b"{\\rtf")),
    OfficeConverter("doc", "a DOC document (Word 97-2003)", _suffix_is(".doc", ".dot")),
    OfficeConverter("xls", "an XLS workbook (Excel 97-2003)", _suffix_is(".xls", ".xlt")),
    OfficeConverter("ppt", "a PPT presentation (PowerPoint 97-2003)", _suffix_is(".ppt", ".pps", ".pot")),
)
