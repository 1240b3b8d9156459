"""Limit errors name the setting that raises them (``... more than the limit of 64 (JEV4_MAX_PDF_PAGES)``).

``model`` knows nothing of settings, so its limit errors (too many pages, too many bytes, too many pixels, too
many tokens) are named where the service passes it a setting's value: :func:`naming` wraps that call. Errors the
service raises itself put :func:`service.settings.env_name` in their message directly.

>>> from model.errors import TooManyPagesError
>>> try:
...     with naming((TooManyPagesError, "max_pdf_pages")):
...         raise TooManyPagesError("9 pages selected, more than the limit of 8")
... except TooManyPagesError as exc:
...     print(exc)
9 pages selected, more than the limit of 8 (JEV4_MAX_PDF_PAGES)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from service.settings import env_name

__all__ = ["name_setting", "naming"]


def name_setting(exc: BaseException, field: str) -> BaseException:
    """Append the setting's variable to the error's message (once); returns the same error."""
    var = env_name(field)
    message = str(exc)
    if var not in message:
        exc.args = (f"{message} ({var})",)
        if isinstance(getattr(exc, "message", None), str):
            exc.message = exc.args[0]  # type: ignore[attr-defined]
    return exc


@contextlib.contextmanager
def naming(*rules: tuple[type[BaseException], str]) -> Iterator[None]:
    """Within the block, an error of a rule's class (first match) gets that rule's setting named."""
    try:
        yield
    except BaseException as exc:
        for cls, field in rules:
            if isinstance(exc, cls):
                name_setting(exc, field)
                break
        raise
