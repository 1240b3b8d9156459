"""Command-line flags generated from :class:`~service.settings.Settings`: one flag per field, its help the field's doc.

A field ``max_pdf_pages`` becomes ``--max-pdf-pages`` (help: its doc, its variable ``JEV4_MAX_PDF_PAGES`` and its
default); a boolean ``tiny`` becomes ``--tiny`` / ``--no-tiny``. Values are parsed by the same function as the
environment (:func:`service.settings.parse_value`), so ``--api-keys k1,k2`` means what ``JEV4_API_KEYS=k1,k2``
means. Flags that are not given leave the environment (then the default) in charge.

The docs are the string literals under each field in ``service/settings.py`` (read with :mod:`ast`, so there is
no second copy to keep in step); a ``# --- name ---`` comment above a run of fields names their group.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_settings_flags(parser, SECTIONS["search"])
>>> args = parser.parse_args(["--max-pdf-pages", "10", "--tiny"])
>>> s = settings_from_args(args, {"JEV4_PORT": "9000"})
>>> (s.max_pdf_pages, s.tiny, s.port)
(10, True, 9000)
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import re
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from service import settings as settings_module
from service.settings import SECRET_FIELDS, Settings, SettingsError, env_name, parse_value

__all__ = ["SECTIONS", "FieldDoc", "add_settings_flags", "field_docs", "settings_from_args"]

_SECTION = re.compile(r"^\s*# --- (?P<name>[a-z][a-z ]*[a-z]) -+\s*$")
_DEST = "setting__"

# which groups of settings each command takes (``serve`` takes them all)
SECTIONS: dict[str, tuple[str, ...]] = {
    "serve": (
        "model",
        "server",
        "logging",
        "batching",
        "limits",
        "remote media",
        "collections",
        "search page",
        "maxsim",
    ),
    "index": ("model", "logging", "limits", "collections", "maxsim"),
    "search": ("model", "logging", "limits", "collections", "maxsim"),
}


class FieldDoc:
    """A field's section and doc, read from the source of ``service/settings.py``."""

    __slots__ = ("doc", "section")

    def __init__(self, section: str, doc: str) -> None:
        self.section = section
        self.doc = doc


@functools.cache
def field_docs() -> dict[str, FieldDoc]:
    """Section and doc of every field of :class:`Settings` (a field without a doc has ``doc == ""``)."""
    source = inspect.getsource(settings_module)
    lines = source.splitlines()
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == Settings.__name__)
    out: dict[str, FieldDoc] = {}
    section = ""
    last_line = cls.lineno
    body = cls.body
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        for line in lines[last_line : node.lineno - 1]:
            match = _SECTION.match(line)
            if match:
                section = match["name"]
        nxt = body[i + 1] if i + 1 < len(body) else None
        doc = ""
        if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            doc = inspect.cleandoc(nxt.value.value)
        out[node.target.id] = FieldDoc(section, doc)
        last_line = node.lineno
    return out


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _help(f: Field[Any], doc: str) -> str:
    default = _default(f)
    if f.name in SECRET_FIELDS:
        shown = "none"
    elif isinstance(default, tuple):
        shown = ",".join(default) or "none"
    elif isinstance(default, Path):
        shown = str(default)
    else:
        shown = "unset" if default is None else repr(default) if isinstance(default, str) else str(default)
    text = " ".join(doc.split()).replace("%", "%%")
    return f"{text} [env {env_name(f.name)}; default {shown}]"


def add_settings_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...]) -> None:
    """One flag per field of the given sections, grouped by section (see the module doc)."""
    docs = field_docs()
    groups = {name: parser.add_argument_group(f"settings: {name}") for name in sections}
    for f in fields(Settings):
        entry = docs[f.name]
        if entry.section not in groups:
            continue
        flag = "--" + f.name.replace("_", "-")
        group = groups[entry.section]
        help_text = _help(f, entry.doc)
        if str(f.type).startswith("bool"):
            group.add_argument(
                flag, dest=_DEST + f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parse = functools.partial(_parse_flag, f.name, f.type)
            group.add_argument(flag, dest=_DEST + f.name, metavar=f.name.upper(), type=parse, help=help_text)


def _parse_flag(name: str, annotation: object, raw: str) -> Any:
    try:
        return parse_value(name, annotation, raw)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(env_name(name), "the value")) from None


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (``os.environ`` when None), overridden by the flags that were given."""
    overrides = {k[len(_DEST) :]: v for k, v in vars(args).items() if k.startswith(_DEST) and v is not None}
    return Settings.from_env(environ, **overrides)
