"""What a setting's value may be: the variable that names a field, how a value is parsed (environment or flag),
and the ranges and choices :class:`~service.settings.Settings` checks when it is built (``SettingsError`` naming
the variable; ``default_task`` is checked by ``Settings`` itself, with the API's task parser). Kept apart from the
field list so ``service/settings.py`` reads as the reference of the knobs. A leaf module (it imports nothing of
the service), so any module may name a setting in a message with :func:`env_name`.

>>> env_name("max_pdf_pages")
'JEV4_MAX_PDF_PAGES'
>>> parse_value("api_keys", "tuple[str, ...]", "a, b,")
('a', 'b')
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colbert.hybrid import FIRST_STAGES

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "CLIENT_VARIABLES",
    "ENV_PREFIX",
    "SECRET_FIELDS",
    "SettingsError",
    "check_names",
    "check_values",
    "env_name",
    "parse_value",
]

ENV_PREFIX = "JEV4_"
SECRET_FIELDS = frozenset({"api_keys", "qdrant_api_key", "metrics_key"})
# read by the sample scripts (samples/_common.sh: the server's URL), never by the server
CLIENT_VARIABLES = frozenset({"JEV4_URL"})


class SettingsError(ValueError):
    """A configuration value that cannot be parsed or is out of range (names the variable and the value)."""


def env_name(field_name: str) -> str:
    """The environment variable of a field (``max_pdf_pages`` -> ``JEV4_MAX_PDF_PAGES``): the one way a setting's
    name reaches a message (limit errors, refusals, hints)."""
    return ENV_PREFIX + field_name.upper()


def check_values(s: Settings) -> None:
    """SettingsError naming the first field out of its range or choices."""
    _check_positive(s)
    _check_choice("collection_backend", s.collection_backend, ("local", "qdrant"))
    _check_choice("first_stage", s.first_stage, FIRST_STAGES)
    _check_choice("ocr", s.ocr, ("auto", "always", "never"))
    _check_choice("duplicate_policy", s.duplicate_policy, ("return_existing", "refuse", "allow"))
    _check_choice("dtype", s.dtype, ("auto", "float32", "bfloat16", "float16"))
    _check_choice("log_level", s.log_level, ("debug", "info", "warning", "error"))
    _check_chunking(s)
    _check_choice("search_mode", s.search_mode, ("visual", "text", "hybrid"))
    _check_choice("search_fusion", s.search_fusion, ("rrf", "weighted"))
    if s.search_max_per_span < 0:
        raise SettingsError(f"{env_name('search_max_per_span')} must be >= 0 (0: no cap); got {s.search_max_per_span}")
    if not 0.0 <= s.search_text_weight <= 1.0:
        raise SettingsError(f"{env_name('search_text_weight')} must be in 0..1; got {s.search_text_weight!r}")
    if any(not k for k in s.api_keys):
        raise SettingsError(f"{env_name('api_keys')} must not contain an empty key")


def check_names(env: Mapping[str, str], known: set[str]) -> None:
    """SettingsError naming the first ``JEV4_*`` variable that is no field, with the nearest valid name."""
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and name not in CLIENT_VARIABLES:
            near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}?" if near else "see the fields of service/settings.py"
            raise SettingsError(f"unknown variable {name}; {hint}")


def parse_value(name: str, annotation: object, raw: str) -> Any:
    """Parse one value (environment or flag) according to the field's annotation (a string under PEP 563)."""
    text = str(annotation)
    var = env_name(name)
    optional = "None" in text
    if optional and raw.strip().lower() in ("", "none", "null"):
        return None
    try:
        if text.startswith("tuple"):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if text.startswith("bool"):
            return _parse_bool(raw)
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if text.startswith("Path"):
            return Path(raw)
    except ValueError:
        raise SettingsError(f"{var}: expected {text}, got {raw!r}") from None
    return raw


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_POSITIVE = (
    "max_connections",
    "header_timeout_s",
    "body_timeout_s",
    "keep_alive_timeout_s",
    "port",
    "search_rrf_k",
    "max_batch_tokens",
    "max_batch_size",
    "cuda_graph_max_tokens",
    "max_queue_rows",
    "preprocess_threads",
    "max_items_per_request",
    "max_body_bytes",
    "max_text_tokens",
    "max_decoded_pixels",
    "max_pdf_pages",
    "max_job_pdf_pages",
    "max_pdf_bytes",
    "max_pages_per_request",
    "pdf_dpi",
    "pdf_pages_per_step",
    "render_page_timeout_s",
    "max_download_bytes",
    "thumbnail_max_side",
    "max_text_bytes",
    "chunk_window_lines",
    "max_code_line_chars",
    "max_filter_keys",
    "job_keep_finished",
    "job_keep_finished_s",
)


def _check_chunking(s: Settings) -> None:
    if s.chunk_max_tokens < 16:
        raise SettingsError(f"{env_name('chunk_max_tokens')} must be at least 16, got {s.chunk_max_tokens}")
    if not s.chunk_max_tokens + 512 <= s.late_chunk_window_tokens <= 32768 - 16:
        raise SettingsError(
            f"{env_name('late_chunk_window_tokens')} must lie in [{env_name('chunk_max_tokens')} + 512, 32752] = "
            f"[{s.chunk_max_tokens + 512}, 32752], got {s.late_chunk_window_tokens}"
        )
    if not 0 <= s.late_chunk_overlap_tokens <= s.late_chunk_window_tokens // 2:
        raise SettingsError(
            f"{env_name('late_chunk_overlap_tokens')} must lie in [0, {env_name('late_chunk_window_tokens')} / 2], "
            f"got {s.late_chunk_overlap_tokens}"
        )


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{env_name(name)} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(s: Settings) -> None:
    for name in _POSITIVE:
        value = getattr(s, name)
        if value <= 0:
            raise SettingsError(f"{env_name(name)} must be positive, got {value}")
    if s.download_timeout_s <= 0:
        raise SettingsError(f"{env_name('download_timeout_s')} must be positive, got {s.download_timeout_s}")
    for name in ("max_redirects", "retry_after_s", "term_cache_mb", "auto_cells_units"):
        if getattr(s, name) < 0:
            raise SettingsError(f"{env_name(name)} must not be negative, got {getattr(s, name)}")
    for name in ("image_max_pixels", "torch_threads"):
        value = getattr(s, name)
        if value is not None and value <= 0:
            raise SettingsError(f"{env_name(name)} must be positive, got {value}")
    if min(s.store_busy_timeout_s, s.job_heartbeat_s) <= 0 or s.job_stale_after_s <= s.job_heartbeat_s:
        raise SettingsError(
            f"{env_name('store_busy_timeout_s')} and {env_name('job_heartbeat_s')} must be positive and "
            f"{env_name('job_stale_after_s')} above {env_name('job_heartbeat_s')}, "
            f"got {s.store_busy_timeout_s}, {s.job_heartbeat_s}, {s.job_stale_after_s}"
        )
