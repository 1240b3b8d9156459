"""The parent's handle on contestant processes (``bench/_worker.py`` on the other end of two pipes)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "WorkerError", "WorkerProcess", "WorkerSpec"]

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """A contestant process failed or answered with an error."""


@dataclass(frozen=True)
class WorkerSpec:
    """Which contestant module runs in which interpreter."""

    name: str
    module: str
    python: Path

    @classmethod
    def for_contestant(cls, name: str) -> WorkerSpec:
        bench_python = ROOT / ".bench-venv" / "bin" / "python"
        table = {
            "ours": cls("ours", "bench._ours", Path(sys.executable)),
            "ours-compiled": cls("ours-compiled", "bench._ours_compiled", Path(sys.executable)),
            "reference-style": cls("reference-style", "bench._peer_reference", Path(sys.executable)),
            "colqwen2.5": cls("colqwen2.5", "bench._peers_colpali", bench_python),
        }
        return table[name]


class WorkerProcess:
    """One running contestant: ``request`` sends a JSON line and waits for the JSON answer."""

    def __init__(self, spec: WorkerSpec, args: list[str], log: Path) -> None:
        self.spec = spec
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            [str(spec.python), "-m", spec.module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=_env(),
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait()
            raise WorkerError(f"{self.spec.name} exited with code {code}; see {self._log.name}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise WorkerError(f"{self.spec.name}: {answer['error']} (log: {self._log.name})")
        return answer

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write('{"op": "quit"}\n')
                self._proc.stdin.close()
                self._proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
