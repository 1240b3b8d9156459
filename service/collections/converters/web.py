"""Web pages, Markdown and plain text in a page collection -> pages laid out by :func:`model.html.html_to_pdf`.

HTML is claimed by its bytes (a doctype or ``<html>`` root) or an ``.html``/``.htm`` name; Markdown and plain text
arrive as text documents and become pages only in a collection of pages (:func:`as_pages`): Markdown rendered by
markdown-it (raw HTML in it is escaped), plain text kept verbatim in a ``<pre>``. Nothing referenced is fetched."""

from __future__ import annotations

import html as html_escape
from typing import TYPE_CHECKING

from model.html import html_to_pdf
from service.collections.chunking import decode_text

if TYPE_CHECKING:
    from service.collections.converters.base import PageLimits

__all__ = ["CONVERTERS", "PAGE_LANGUAGES", "WebConverter"]

PAGE_LANGUAGES = {"markdown": "markdown", "text": "plaintext"}  # text document language -> page kind


def _is_html(data: bytes, name: str | None) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or (name or "").lower().endswith((".html", ".htm"))


class WebConverter:
    def __init__(self, kind: str, description: str) -> None:
        self.kind = kind
        self.description = description

    def sniff(self, data: bytes, name: str | None) -> bool:
        return self.kind == "html" and _is_html(data, name)  # Markdown and text come as text documents

    def to_pdf(self, data: bytes, limits: PageLimits) -> bytes:
        text = decode_text(data, max_bytes=limits.max_bytes, name=self.description).text
        if self.kind == "markdown":
            from markdown_it import MarkdownIt

            body = MarkdownIt("commonmark", {"html": False}).render(text)
        elif self.kind == "plaintext":
            body = f"<pre>{html_escape.escape(text)}</pre>"
        else:
            body = text
        return html_to_pdf(body, max_pages=limits.max_converted_pages, what=self.description)


CONVERTERS: tuple[WebConverter, ...] = (
    WebConverter("html", "an HTML page"),
    WebConverter("markdown", "a Markdown document"),
    WebConverter("plaintext", "a plain-text document"),
)
