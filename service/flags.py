"""Command-line flags generated from :class:`~service.settings.Settings`: one flag per field, its help the field's doc.

A field ``max_pdf_pages`` becomes ``--max-pdf-pages`` (help: its doc, its variable ``JEV4_MAX_PDF_PAGES`` and its
default); a boolean ``tiny`` becomes ``--tiny`` / ``--no-tiny``. Values are parsed by the same function as the
environment (:func:`service.settings.parse_value`), so ``--api-keys k1,k2`` means what ``JEV4_API_KEYS=k1,k2``
means. Flags that are not given leave the environment (then the default) in charge.

The docs are the string literals under each field in ``service/settings.py`` (read with :mod:`ast`, so there is
no second copy to keep in step); a ``# --- name ---`` comment above a run of fields names their group.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_settings_flags(parser, SECTIONS["index"])
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

__all__ = [
    "FIELDS",
    "SECTIONS",
    "FieldDoc",
    "add_settings_flags",
    "field_docs",
    "given_flags",
    "markdown_table",
    "settings_from_args",
    "shown_default",
]

_SECTION = re.compile(r"^\s*# --- (?P<name>[a-z][a-z ]*[a-z]) -+\s*$")
_DEST = "setting__"

# what loads the model and finds the collections (``search`` takes these, not the server's ~50 settings)
_LOAD_MODEL = ("model", "revision", "local_files_only", "tiny", "dtype", "device", "attn_implementation")
_FIND_COLLECTIONS = ("data_dir", "collection_backend", "qdrant_url", "qdrant_api_key", "store_busy_timeout_s")
# (not first_stage: ``search --first-stage`` is the request's, as its ``--mode`` is; JEV4_FIRST_STAGE still applies)
_SEARCH = ("term_cache_mb", "search_mode", "search_fusion", "search_text_weight", "search_rrf_k")

# which sections of settings each command takes whole (``serve`` takes them all) ...
SECTIONS: dict[str, tuple[str, ...]] = {
    "serve": (
        "model",
        "server",
        "logging",
        "batching",
        "limits",
        "text and code documents",
        "remote media",
        "collections",
        "search page",
        "maxsim",
    ),
    "index": ("model", "logging", "limits", "text and code documents", "collections", "maxsim"),
    "search": ("maxsim",),
    "manage": ("collections",),
}
# ... and which single fields of other sections
FIELDS: dict[str, tuple[str, ...]] = {
    "search": (*_LOAD_MODEL, "torch_threads", "log_level", *_FIND_COLLECTIONS, *_SEARCH, "max_filter_keys"),
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


def shown_default(f: Field[Any]) -> str:
    """A field's default as ``--help`` and the docs show it (``unset`` for None, ``none`` for an empty tuple)."""
    default = _default(f)
    if f.name in SECRET_FIELDS or isinstance(default, tuple):
        return ",".join(default or ()) or "none"
    if isinstance(default, Path):
        return str(default)
    return "unset" if default is None else repr(default) if isinstance(default, str) else str(default)


def _help(f: Field[Any], doc: str) -> str:
    text = " ".join(doc.split()).replace("%", "%%")
    return f"{text} [env {env_name(f.name)}; default {shown_default(f)}]"


def markdown_table(sections: tuple[str, ...]) -> str:
    """The fields of ``sections`` as a Markdown table (variable, flag, default, doc): README and docs/settings.md
    carry these tables, and a test keeps them equal to this output."""
    docs = field_docs()
    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for f in fields(Settings):
        if docs[f.name].section in sections:
            doc = " ".join(docs[f.name].doc.split()).replace("|", "\\|")
            flag = "--" + f.name.replace("_", "-")
            rows.append(f"| `{env_name(f.name)}` | `{flag}` | `{shown_default(f)}` | {doc} |")
    return "\n".join(rows) + "\n"


def add_settings_flags(
    parser: argparse.ArgumentParser, sections: tuple[str, ...], single: tuple[str, ...] = ()
) -> None:
    """One flag per field of ``sections`` and per field named in ``single`` (see :data:`SECTIONS`,
    :data:`FIELDS`), grouped by section (see the module doc)."""
    docs = field_docs()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(Settings):
        entry = docs[f.name]
        if entry.section not in sections and f.name not in single:
            continue
        if entry.section not in groups:
            groups[entry.section] = parser.add_argument_group(f"settings: {entry.section}")
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


def given_flags(args: argparse.Namespace) -> list[str]:
    """The settings flags given on the command line (``--tiny``, ``--data-dir``), as typed."""
    given = (k[len(_DEST) :] for k, v in vars(args).items() if k.startswith(_DEST) and v is not None)
    return ["--" + name.replace("_", "-") for name in given]


README_BLOCK = ("<!-- settings: limits (generated: python -m service.flags) -->", "<!-- /settings -->")


def settings_page() -> str:
    """``docs/settings.md``: every field, grouped by section."""
    parts = [
        "# Settings\n\nEvery field of `service/settings.py`, as an environment variable and a flag of `serve` (`index` "
        "takes the model, logging, limits, text and code, collections and maxsim groups; `search` the settings that "
        "load the model, find the collections and shape a search; `collections` and `documents` the collections "
        "group: see `python -m service <command> --help`). Flags win over the environment, "
        "the environment over the defaults; an unknown `JEV4_*` variable stops start-up. Generated by "
        "`python -m service.flags`; a test keeps it current.\n"
    ]
    parts.extend(f"\n## {section}\n\n{markdown_table((section,))}" for section in SECTIONS["serve"])
    return "".join(parts)


def with_readme_table(readme: str) -> str:
    """The README with its generated limits table (between :data:`README_BLOCK`) brought up to date."""
    start, end = README_BLOCK
    head, sep, rest = readme.partition(start)
    _old, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"README.md lacks the {start} ... {end} block")
    return f"{head}{start}\n{markdown_table(('limits',))}{end}{tail}"


def _write_docs(root: Path) -> None:
    (root / "docs" / "settings.md").write_text(settings_page())
    readme = root / "README.md"
    readme.write_text(with_readme_table(readme.read_text()))


if __name__ == "__main__":
    _write_docs(Path(__file__).resolve().parents[1])
