"""The README's command 1 serves even when apt cannot run (issue 25, item 1), and ``setup.sh --test`` says what
failed and how to retry when it cannot install the browser tests' system packages.

Each test runs the real scripts on a copy of the working tree, with an ``apt-get`` on ``PATH`` that fails as a
locked apt does (``E: Could not get lock ...``, exit 100) and records that it was called. The copy's ``.venv`` is a
small stand-in: ``python -m pip ...`` is recorded instead of run (pip is not what is under test, and this
machine's venv must not be re-pointed at the copy), anything else runs this venv's interpreter — so the server
that answers ``/health`` at the end is the copy's code. ``test_fresh_venv_serves`` (slow) does it for real: a new
venv, pip from the configured index, ``serve --tiny``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCKED = (
    "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\n"
    "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
)


def _copy_tree(dest: Path) -> Path:
    """The tracked and new (not ignored) files of this working tree, as a fresh clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _write_script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def _stand_in_venv(venv: Path, pip_log: Path) -> None:
    """``venv/bin/python``: records ``-m pip`` calls, runs everything else with this suite's interpreter."""
    _write_script(
        venv / "bin" / "python",
        f'if [ "$1 $2" = "-m pip" ]; then echo "$*" >> {pip_log}; exit 0; fi\nexec {sys.executable} "$@"',
    )


def _locked_apt(bin_dir: Path, calls: Path) -> None:
    """An ``apt-get`` that fails as one does while another process holds apt's lock, and records the call."""
    message = LOCKED.replace("\n", "\\n")
    _write_script(bin_dir / "apt-get", f'echo "apt-get $*" >> {calls}\nprintf "{message}" >&2\nexit 100')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serves_health(repo: Path, python: Path, data_dir: Path, timeout: float) -> None:
    """``python -m service serve --tiny`` in ``repo`` on a free port answers ``/health`` 200 within ``timeout``."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(HF_HUB_OFFLINE="1", JEV4_DATA_DIR=str(data_dir), JEV4_TORCH_THREADS="1")
    log = data_dir.parent / "serve.log"
    with log.open("wb") as out:
        command = [str(python), "-m", "service", "serve", "--tiny", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no /health in {timeout} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _run(command: list[str], cwd: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CI"}  # CI only where the test sets it
    full.update(PATH=path, **env)
    return subprocess.run(command, cwd=cwd, env=full, capture_output=True, text=True, timeout=1200)


def test_command_1_serves_while_apt_is_locked(tmp_path: Path, tiny_checkpoint: Path) -> None:
    repo = _copy_tree(tmp_path / "clone")
    stubs, apt_calls, pip_log = tmp_path / "stubs", tmp_path / "apt-calls", tmp_path / "pip-calls"
    _locked_apt(stubs, apt_calls)
    _stand_in_venv(repo / ".venv", pip_log)
    done = _run(["bash", "scripts/setup.sh"], repo, f"{stubs}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr
    assert not apt_calls.exists(), "serving's set-up must not call apt"
    assert "-m pip install -q -e .[tiny]" in pip_log.read_text()  # the project, with serve --tiny's tokenizer
    data = tmp_path / "data"  # --tiny finds the session's checkpoint there (building one is test_app_lifecycle's)
    data.mkdir()
    (data / "tiny-checkpoint").symlink_to(tiny_checkpoint, target_is_directory=True)
    _serves_health(repo, repo / ".venv" / "bin" / "python", data, timeout=600)


def _bare_path(tmp_path: Path) -> str:
    """A PATH with the basic tools only: no chromium, chromedriver or npm; ``id`` says root (so apt is tried)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "dirname", "mktemp", "grep", "tail", "rm", "cat", "sed", "env"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    _write_script(tools / "id", "echo 0")
    return str(tools)


# setup-test.sh is what --test adds after serving's set-up (which the test above runs); the whole of
# `setup.sh --test` once more (its torch/transformers imports: 30-100 s on a loaded machine) is a slow check
@pytest.mark.parametrize(
    ("script", "ci"),
    [
        ("scripts/setup-test.sh", False),
        ("scripts/setup-test.sh", True),
        pytest.param("scripts/setup.sh --test", False, marks=pytest.mark.slow),
    ],
)
def test_test_setup_names_what_failed_and_how_to_retry(tmp_path: Path, script: str, ci: bool) -> None:
    repo = _copy_tree(tmp_path / "clone")
    pip_log, apt_calls = tmp_path / "pip-calls", tmp_path / "apt-calls"
    _stand_in_venv(repo / ".venv", pip_log)
    _stand_in_venv(repo / ".clients-venv", pip_log)
    path = _bare_path(tmp_path)
    _locked_apt(Path(path), apt_calls)
    done = _run(["bash", *script.split()], repo, path, **({"CI": "true"} if ci else {}))
    assert apt_calls.read_text().split()[-2:] == ["update", "-qq"]  # tried once, gave up on the lock
    lines = done.stderr.splitlines()
    assert (
        "setup: apt is busy (another process holds its lock); the browser tests need chromium chromium-driver npm; "
        "retry with: bash scripts/setup.sh --test"
    ) in lines, done.stderr
    assert any(line.startswith("setup: npm is missing, so axe-core") for line in lines), done.stderr
    assert "E: Could not get lock" not in done.stderr  # said once, in words, not as apt's bare lines
    pips = pip_log.read_text()
    assert "-m pip install -q -e .[dev]" in pips
    assert "-m pip install -q -r scripts/clients-requirements.txt" in pips
    assert done.returncode == (1 if ci else 0), done.stderr  # CI must run the browser tests: a missing dep fails
    assert ("failing" in lines[-1]) is ci
    assert ("will skip" in lines[-1]) is not ci


@pytest.mark.slow
def test_fresh_venv_serves_while_apt_is_locked(tmp_path: Path) -> None:
    """Command 1 for real on a copy without a venv: pip from the configured index, then ``serve --tiny``."""
    repo = _copy_tree(tmp_path / "clone")
    stubs, apt_calls = tmp_path / "stubs", tmp_path / "apt-calls"
    _locked_apt(stubs, apt_calls)
    base = Path(sys.base_prefix) / "bin" / "python3"
    done = _run(["bash", "scripts/setup.sh"], repo, f"{stubs}:{os.environ['PATH']}", PYTHON=str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not apt_calls.exists()
    _serves_health(repo, repo / ".venv" / "bin" / "python", tmp_path / "data", timeout=900)
