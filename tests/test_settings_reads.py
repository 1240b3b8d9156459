"""Every setting is read in one place and passed down as a value (issue 24 item 6): ``scripts/settings_reads.py``
finds no ``Settings`` field read in more than one module of ``service/``, and it does find one where two modules
read the same field."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _settings_reads() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_reads", ROOT / "scripts" / "settings_reads.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["settings_reads"] = module
    spec.loader.exec_module(module)
    return module


def test_no_setting_is_read_in_more_than_one_module() -> None:
    found = _settings_reads().reads(ROOT)
    several = {name: sorted(modules) for name, modules in found.items() if len(modules) > 1}
    assert len(found) > 50  # the walk sees the readers (a wrong root would find none and pass)
    assert several == {}, "pass these down as values from one reader (a from_settings of the value that owns them)"


def test_a_field_read_in_two_modules_is_found(tmp_path: Path) -> None:
    package = tmp_path / "service"
    (package / "http").mkdir(parents=True)
    (package / "a.py").write_text("def f(settings):\n    return settings.port, self.settings.host\n")
    (package / "http" / "b.py").write_text("def g(runtime):\n    return runtime.settings.port\n")
    (package / "settings.py").write_text("def own(s):\n    return s.port\n")  # the settings' own module: not counted
    found = _settings_reads().reads(tmp_path)
    assert found == {"port": {"service/a.py", "service/http/b.py"}, "host": {"service/a.py"}}
