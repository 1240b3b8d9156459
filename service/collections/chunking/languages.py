"""Which language a file is, and how to find its definitions with tree-sitter.

Grammars are the tree-sitter project's own PyPI wheels (``tree-sitter-python``, ``-javascript``, ``-typescript``,
``-go``, ``-rust``, ``-java``, ``-c``, ``-cpp``, ``-bash``): compiled into the wheel, nothing downloaded at run
time. (``tree-sitter-language-pack`` ≥ 1.0 fetches its parsers from the network on first use, which an offline
server cannot do.)

A :class:`Grammar` names, per language, the node types that are definitions (a chunk each, named by the node's
``name``), containers whose members are chunks of their own (``Class.method``), and wrappers around a definition
(decorators, ``export``, ``template<…>``) that belong to it.

>>> language_of("src/model/encoder.py"), language_of("README.md"), language_of("run.SH"), language_of("data.bin")
('python', 'markdown', 'bash', None)
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

__all__ = ["CODE_LANGUAGES", "GRAMMARS", "TEXT_LANGUAGES", "Grammar", "language_of", "parser_for"]


@dataclass(frozen=True, slots=True)
class Grammar:
    """How definitions look in one language's syntax tree."""

    module: str  # the grammar wheel's module
    function: str = "language"  # its function that returns the language pointer
    definitions: dict[str, str] = field(default_factory=dict)  # node type -> chunk kind
    containers: dict[str, str] = field(default_factory=dict)  # node type -> kind; members become their own chunks
    wrappers: frozenset[str] = frozenset()  # nodes that wrap a definition (decorators, export, template)
    scopes: frozenset[str] = frozenset()  # nodes whose children are top level again (namespace, mod)
    bodies: frozenset[str] = frozenset({"block", "class_body", "declaration_list", "field_declaration_list"})


_JS_DEFS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "lexical_declaration": "definition",
    "variable_declaration": "definition",
    "method_definition": "method",
}
_TS_DEFS = {
    **_JS_DEFS,
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "function_signature": "function",
}
_JS_CONTAINERS = {"class_declaration": "class", "abstract_class_declaration": "class"}

GRAMMARS: dict[str, Grammar] = {
    "python": Grammar(
        "tree_sitter_python",
        definitions={"function_definition": "function"},
        containers={"class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": Grammar(
        "tree_sitter_javascript",
        definitions=_JS_DEFS,
        containers=_JS_CONTAINERS,
        wrappers=frozenset({"export_statement"}),
    ),
    "typescript": Grammar(
        "tree_sitter_typescript",
        "language_typescript",
        definitions=_TS_DEFS,
        containers=_JS_CONTAINERS,
        wrappers=frozenset({"export_statement"}),
        scopes=frozenset({"internal_module"}),
    ),
    "tsx": Grammar(
        "tree_sitter_typescript",
        "language_tsx",
        definitions=_TS_DEFS,
        containers=_JS_CONTAINERS,
        wrappers=frozenset({"export_statement"}),
    ),
    "go": Grammar(
        "tree_sitter_go",
        definitions={"function_declaration": "function", "method_declaration": "method", "type_declaration": "type"},
    ),
    "rust": Grammar(
        "tree_sitter_rust",
        definitions={
            "function_item": "function",
            "struct_item": "struct",
            "enum_item": "enum",
            "union_item": "struct",
            "type_item": "type",
            "const_item": "definition",
            "static_item": "definition",
            "macro_definition": "macro",
        },
        containers={"impl_item": "impl", "trait_item": "trait"},
        scopes=frozenset({"mod_item"}),
    ),
    "java": Grammar(
        "tree_sitter_java",
        definitions={"method_declaration": "method", "constructor_declaration": "method"},
        containers={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "class",
        },
    ),
    "c": Grammar(
        "tree_sitter_c",
        definitions={
            "function_definition": "function",
            "struct_specifier": "struct",
            "enum_specifier": "enum",
            "union_specifier": "struct",
            "type_definition": "type",
        },
    ),
    "cpp": Grammar(
        "tree_sitter_cpp",
        definitions={
            "function_definition": "function",
            "enum_specifier": "enum",
            "type_definition": "type",
            "alias_declaration": "type",
        },
        containers={"class_specifier": "class", "struct_specifier": "struct"},
        wrappers=frozenset({"template_declaration"}),
        scopes=frozenset({"namespace_definition"}),
    ),
    "bash": Grammar("tree_sitter_bash", definitions={"function_definition": "function"}),
}

_EXTENSIONS = {
    "python": (".py", ".pyi", ".pyw"),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".mts", ".cts"),
    "tsx": (".tsx",),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp", ".cu", ".cuh"),
    "bash": (".sh", ".bash", ".zsh", ".ksh"),
    "markdown": (".md", ".markdown", ".mdx"),
    "text": (
        ".txt",
        ".text",
        ".rst",
        ".adoc",
        ".log",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
    ),
}
_BY_EXTENSION = {ext: language for language, exts in _EXTENSIONS.items() for ext in exts}
_BY_NAME = {"makefile": "text", "dockerfile": "text", "license": "text", "readme": "text", "bashrc": "bash"}

CODE_LANGUAGES = frozenset(GRAMMARS)
TEXT_LANGUAGES = frozenset({"markdown", "text"})


def language_of(path: str) -> str | None:
    """The language of a file by its extension (case-insensitive), a few well-known names, else None."""
    name = PurePosixPath(path.replace("\\", "/")).name.lower()
    suffix = PurePosixPath(name).suffix
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    return _BY_NAME.get(name.lstrip("."))


@functools.cache
def _language(name: str) -> Any:
    import tree_sitter

    grammar = GRAMMARS[name]
    module = importlib.import_module(grammar.module)
    return tree_sitter.Language(getattr(module, grammar.function)())


def parser_for(name: str) -> Any:
    """A new tree-sitter parser for ``name`` (a parser is not thread-safe; the compiled language is shared)."""
    import tree_sitter

    return tree_sitter.Parser(_language(name))
