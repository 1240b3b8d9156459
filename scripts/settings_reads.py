"""Which ``Settings`` fields are read in more than one module of ``service/`` (issue 24 item 6: every setting
read in one place and passed down as values).

A read is an attribute ``<expr>.<field>`` whose ``<expr>`` names the settings (``settings``, ``self.settings``,
``runtime.settings``, ``s``); the settings' own modules (``settings.py``, ``settings_rules.py``, ``flags.py``)
do not count. Prints the count and, for each field read in several modules, those modules.

    .venv/bin/python scripts/settings_reads.py [ROOT]
"""

from __future__ import annotations

import ast
import sys
from dataclasses import fields
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
OWN = {"service/settings.py", "service/settings_rules.py", "service/flags.py"}


def reads(root: Path) -> dict[str, set[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from service.settings import Settings

    names = {f.name for f in fields(Settings)}
    found: dict[str, set[str]] = {}
    for path in sorted(root.glob("service/**/*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in OWN:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in names:
                owner = ast.unparse(node.value)
                if "settings" in owner or owner == "s":
                    found.setdefault(node.attr, set()).add(rel)
    return found


def main() -> None:
    found = reads(ROOT)
    several = {name: modules for name, modules in found.items() if len(modules) > 1}
    print(f"{len(found)} fields read; {len(several)} read in more than one module")
    for name in sorted(several):
        print(f"  {name}: {', '.join(sorted(several[name]))}")


if __name__ == "__main__":
    main()
