"""Server configuration: one frozen object built once at the edge, the ONLY reader of environment variables.

Every field can be set by an environment variable ``JEV4_<FIELD NAME IN CAPITALS>`` (e.g. ``JEV4_PORT=9000``,
``JEV4_API_KEYS=key1,key2``) and by a flag of the same name (``--port 9000``, ``--api-keys key1,key2``; the flags
are generated from the fields and their docs by :mod:`service.flags`); flags win over the environment, the
environment over the defaults. Tuples are comma-separated; booleans accept ``1/0, true/false, yes/no, on/off``.

A ``JEV4_*`` variable that names no field stops start-up with the nearest valid name, so that a misspelt one
(say ``JEV4_API_KEY``, which would leave the server open) is never silently ignored. :data:`CLIENT_VARIABLES`
are read by the sample scripts, not by the server, and are accepted.

>>> s = Settings.from_env({"JEV4_PORT": "9000", "JEV4_API_KEYS": "a,b"})
>>> s.port, len(s.api_keys)
(9000, 2)
>>> "a,b" in repr(s)                      # secrets are redacted in repr (and so in logs)
False
>>> Settings.from_env({"JEV4_API_KEY": "a"})
Traceback (most recent call last):
...
service.settings_rules.SettingsError: unknown variable JEV4_API_KEY; did you mean JEV4_API_KEYS?
>>> env_name("max_pdf_pages")
'JEV4_MAX_PDF_PAGES'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from model.errors import InvalidTaskError
from service.embeddings.embed import parse_api_task
from service.settings_rules import (
    CLIENT_VARIABLES,
    ENV_PREFIX,
    SECRET_FIELDS,
    SettingsError,
    check_names,
    check_values,
    env_name,
    parse_value,
)

__all__ = [
    "CLIENT_VARIABLES",
    "ENV_PREFIX",
    "SECRET_FIELDS",
    "Settings",
    "SettingsError",
    "env_name",
    "parse_value",
]

_MiB = 1024 * 1024


def _default_data_dir() -> Path:
    return Path("data")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the server. Field docs are the reference: ``--help`` of ``serve``/``index``/``search`` shows
    them; a ``# --- section ---`` comment groups the fields below it (the flag groups of ``--help``)."""

    # --- model ----------------------------------------------------------------------------------------------
    model: str = "jinaai/jina-embeddings-v4"
    """Hub id or local directory of the checkpoint (published layout)."""
    revision: str | None = None
    """Hub revision (commit hash or tag) to pin; None = the default branch."""
    local_files_only: bool = False
    """Never contact the hub (use a local directory or the HF cache only)."""
    tiny: bool = False
    """Serve the tiny RANDOM test checkpoint (built in ``data_dir/tiny-checkpoint``): NO meaning."""
    served_model_name: str = "jina-embeddings-v4"
    """The name reported in responses and accepted in the ``model`` request field (with ``model`` itself)."""
    dtype: str = "auto"
    """Weights dtype: auto (bfloat16 on a GPU with native bfloat16, i.e. compute capability ≥ 8.0; else float32),
    float32, bfloat16 or float16."""
    device: str = "auto"
    """auto (cuda when available), cpu, cuda, cuda:1 …"""
    attn_implementation: str | None = None
    """Passed to transformers (e.g. sdpa, flash_attention_2); None = the encoder's default."""
    torch_threads: int | None = None
    """torch intra-op threads for the model worker; None = torch's default."""
    compile: bool = False
    """``torch.compile`` the encoder's elementwise half (norms with their residual adds, rotary, SiLU·up; inductor,
    one graph for every batch shape, rounding as eager: same bf16 outputs); compiled during the warm-up before
    /ready, kernels cached on disk under ``TORCHINDUCTOR_CACHE_DIR`` (default ``/tmp/torchinductor_<user>``; a
    persistent directory keeps starts warm). Measured on a 2-core AVX-512 CPU, real width, bf16 (bench/README.md):
    pages ×1.17–1.31, queries ×1.05–1.45, passages ×0.83–1.16 (3 runs); start-up +38 s with an empty cache, +13 s
    with a filled one.
    Off by default: on CPU it needs a C++ compiler at run time (g++; a GPU needs a C compiler for Triton; without
    one the server stops at start-up saying so), and it adds that start-up time."""
    cuda_graphs: bool = False
    """On a CUDA device, run text-only batches of at most ``cuda_graph_max_tokens`` packed tokens (queries, short
    passages) as CUDA graphs: one graph per token bucket (powers of two from 64, then that maximum), captured in the
    warm-up before /ready, each batch padded to its bucket and replayed with one launch instead of ~1,700 (the
    outputs equal eager's; longer batches and images run eager). Costs GPU memory: one shared pool as large as the
    largest bucket's activations, plus small static buffers per bucket (docs/gpu.md). vLLM's ``enforce_eager`` in
    reverse. Off by default until the GPU check has measured it (scripts/gpu-check.sh). On a CPU device it is
    ignored with a warning in the log."""
    cuda_graph_max_tokens: int = 2048
    """The largest CUDA-graph bucket, in packed tokens (the sum of the rows' tokens); larger batches run eager."""
    default_task: str = "retrieval.passage"
    """Task used when a request omits ``task`` (Jina does not document its default; we embed documents)."""

    # --- server ---------------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address to bind (0.0.0.0 to listen on every interface)."""
    port: int = 8080
    """TCP port."""
    api_keys: tuple[str, ...] = ()
    """Accepted ``Authorization: Bearer`` keys, comma-separated; empty = no auth (the start-up log says which).
    Health, readiness and docs stay open; /metrics needs a key too (or ``metrics_key``)."""
    cors_allow_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API cross-origin (CORS), e.g. ``https://app.example.com``; ``*`` = any.
    Empty (default) = CORS closed: no ``Access-Control-Allow-*`` header is ever sent."""
    max_connections: int = 10000
    """Open HTTP connections at most (kept 256 below the open-files limit, which is raised to its hard limit at
    start); over it the connection that waited longest for a request is closed (``service.http.server``)."""
    header_timeout_s: float = 10.0
    """A request's headers must arrive within this many seconds of the connection opening (or of the request's
    first byte on a kept-alive connection); else 408 and the connection is closed."""
    body_timeout_s: float = 30.0
    """A request body must keep arriving: at least 1 KiB (or its end) in every window of this many seconds (not
    counted while the server itself holds off reading); else 408 and the connection is closed."""
    keep_alive_timeout_s: int = 5
    """An idle kept-alive connection is closed after this many seconds."""
    metrics_key: str | None = None
    """Bearer key for ``GET /metrics``; unset: /metrics takes the API keys when they are set, else is open."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names the server answers (DNS-rebinding guard); ``*`` = any. Empty (default): localhost names,
    the bound address and the machine's host name; when bound to 0.0.0.0/:: with no API keys, set it."""
    mcp_write: bool = False
    """Let MCP clients add documents (the ``add_document`` tool, from a URL; over stdio also a local file under
    ``mcp_root``). Off by default: the MCP tools only read. ``/mcp`` needs an API key when keys are set."""
    mcp_root: Path | None = None
    """Folder whose files the stdio MCP server (``python -m service mcp``) may add with ``add_document`` when
    ``mcp_write`` is on; unset = no local files. The HTTP MCP endpoint never reads local files."""

    # --- logging --------------------------------------------------------------------------------------------
    log_level: str = "info"
    """debug | info | warning | error."""
    log_json: bool | None = None
    """One JSON object per log line (with the request id); false = plain text; unset = plain text when stderr is
    a terminal, JSON otherwise."""

    # --- batching -------------------------------------------------------------------------------------------
    max_batch_tokens: int = 16384
    """Token budget of one forward pass, as the model backend counts what it runs: the sum of the rows' tokens
    when it runs rows packed (the encoder does, on every device), rows x longest row when it pads; image tokens
    included. Rows of similar length share a pass, so the padded per-row outputs stay close to it."""
    max_batch_size: int = 64
    """Rows in one forward pass at most."""
    max_queue_rows: int = 4096
    """Rows (texts, images, pages) waiting for the model at most; beyond it requests get 429 + Retry-After."""
    retry_after_s: int = 1
    """Value of the Retry-After header on 429."""
    preprocess_threads: int = 2
    """Threads that decode images, render PDF pages and tokenize (off the event loop and model thread)."""

    # --- limits ---------------------------------------------------------------------------------------------
    max_items_per_request: int = 512
    """Inputs in one request (``input`` / rerank ``documents``)."""
    max_body_bytes: int = 64 * _MiB
    """Request body size (413 beyond)."""
    max_text_tokens: int = 32768
    """Tokens of one text (prefix included); longer -> 413 unless ``truncate`` is true."""
    max_decoded_pixels: int = 40_000_000
    """Pixels of a decoded image / rendered page before resizing (decompression-bomb guard, 413 beyond)."""
    image_max_pixels: int | None = None
    """Resolution cap the model sees (the processor's max_pixels, 602112 for v4); None = the checkpoint's."""
    max_pdf_pages: int = 64
    """Pages of one PDF in a synchronous request at most: a /v1/embeddings input, or a collection upload that
    waits (413 beyond; select pages with ``pages``, or upload with ``wait=false``)."""
    max_job_pdf_pages: int = 2000
    """Pages of one PDF indexed by a background job (upload with ``wait=false``) or the ``index`` command at
    most: they embed in steps, so only the vectors of every page are held until the document is stored
    (about 0.4 MB a page at 755 tokens in float32) (413 beyond)."""
    max_pdf_bytes: int = 50 * _MiB
    """Size of one PDF at most (413 beyond)."""
    max_pages_per_request: int = 256
    """Rendered pages summed over one request at most (413 beyond)."""
    pdf_dpi: int = 144
    """Render resolution of PDF pages (dots per inch)."""
    ocr: str = "auto"
    """OCR of page images for uploads that send no ``ocr``: auto (pages without a usable text layer: scans, photos,
    screenshots), always, never. On CPU OCR costs seconds per page (bench/ocr.py)."""
    render_page_timeout_s: float = 30.0
    """Seconds to open a PDF or render one of its pages at most (in a worker process, killed beyond it): the
    document is refused (422 ``render_timeout``) naming the page, and nothing of it is stored."""
    pdf_pages_per_step: int = 4
    """Pages of a collection document embedded per step (the next step renders meanwhile). Larger steps fill a GPU's
    forward passes better; at most three steps of rendered pages are in memory at a time."""

    # --- text and code documents ----------------------------------------------------------------------------
    max_text_bytes: int = 4 * _MiB
    """Size of one text / code document at most (413 beyond; the CLI skips such files and says so)."""
    chunk_max_tokens: int = 512
    """Model tokens of one chunk at most: a longer definition or section is cut at line ends into parts."""
    chunk_window_lines: int = 40
    """Lines per chunk where a file has no structure we parse (unknown language, syntax errors)."""
    max_code_line_chars: int = 1_048_576
    """Characters of one line of a code document at most (413 ``line_too_long`` beyond, checked before it is
    parsed or tokenized); lower it (e.g. 20000) to keep minified bundles out of a code collection."""
    late_chunk_window_tokens: int = 8192
    """Tokens of one late-chunking pass over a document (the model's context is 32768); a longer document runs in
    several windows. At least chunk_max_tokens + 512."""
    late_chunk_overlap_tokens: int = 1024
    """Tokens of the chunks before a window's first chunk that it reads again as context (at most half a window)."""

    # --- remote media ---------------------------------------------------------------------------------------
    allow_remote_urls: bool = False
    """Fetch http(s) URLs given as image/pdf inputs. Off by default (422 ``remote_urls_disabled``)."""
    allowed_url_hosts: tuple[str, ...] = ()
    """If non-empty, only these hosts (exact, or ``.example.com`` for a domain and its subdomains)."""
    allow_private_addresses: bool = False
    """DANGEROUS: also fetch private/loopback/link-local addresses (SSRF). Closed test setups only."""
    max_download_bytes: int = 20 * _MiB
    """Bytes of one download at most (413 beyond)."""
    download_timeout_s: float = 10.0
    """Seconds for one download, redirects included."""
    max_filter_keys: int = 64
    """Keys in one search ``filter`` at most (422 beyond: each key is one more condition in the index query)."""
    max_redirects: int = 3
    """Redirects followed per download (each hop is checked again)."""

    # --- collections ----------------------------------------------------------------------------------------
    data_dir: Path = field(default_factory=_default_data_dir)
    """Directory holding collections (and the tiny checkpoint)."""
    collection_backend: str = "local"
    """local (embedded, in data_dir) or qdrant."""
    qdrant_url: str | None = None
    """Qdrant server URL for the qdrant backend."""
    qdrant_api_key: str | None = None
    """Qdrant API key (secret)."""
    first_stage: str = "pooled_ivf"
    """Embedded backend's first stage when a search names none: pooled_ivf (the default: inverted lists over the
    pooled centroids' cells, for every codec once the collection has cells, trained by themselves past
    auto_cells_units or by `collections train-cells`; the collections without cells use pooled, and a search that
    asks pooled_ivf of them is a 422), pooled (approximate
    MaxSim over 8 k-means centroids per page, held in memory, scored for every page), dense (cosine of the pages'
    dense vectors, held in memory instead: 2 KB a page at 2048 dimensions as int8, less than the sketches only at
    fewer dimensions; the exact top-10 is often not among its candidates) or ivf (inverted lists over the
    codebook's centroids: the residual codecs residual2, residual1, residualpq2, residualpq1 only; the collections
    of other codecs use dense, and a search that asks ivf of them is a 422)."""
    store_busy_timeout_s: float = 30.0
    """Embedded backend: seconds a write waits for another process's write to the same collection before it
    fails with 503 index_busy (several processes may serve one data_dir; their writes are serialised)."""
    term_cache_mb: int = 64
    """Embedded backend: MiB of full-text posting lists (of the words searched so far) kept in memory per open
    collection, so that BM25 for text and hybrid search runs in memory instead of re-reading FTS5 (0: read every
    query's postings from the index; results are the same either way)."""
    auto_cells_units: int = 20_000
    """Embedded backend: once a collection without pooled_ivf cells holds this many live units (pages, chunks), the
    write that gets it there starts training its cells in the background (it does not wait; one training at a time
    in a process, one per collection across server processes sharing data_dir; an INFO log line when it starts and
    one when it ends; a collection already past it starts one when a process opens it); until they are trained,
    searches use the pooled first stage. They are retrained the same way once the collection has grown so that the
    default cell count is twice theirs. 0: never (train them with `collections train-cells NAME` or POST
    /v1/collections/{name}/cells, which also work earlier or to choose their count)."""
    warm_collections: bool = False
    """At start-up, open every collection in the background and search it once, so that what its default first
    stage holds is loaded before the first search asks (at 1M pages ~5 s for pooled_ivf on a warm machine, more on
    a cold one, else paid by that search; requests to other collections are never held up by it, and a search of
    the collection being opened waits for that open instead of starting its own). Off by default: the process then
    holds every collection's first stage in memory (~1 KiB a page) whether or not it is searched here, and a
    collection past auto_cells_units without cells starts its training at the open."""
    duplicate_policy: str = "return_existing"
    """An upload whose bytes (and page selection) equal a stored document's, sent without an explicit
    document_id: return_existing (200 with that document and an X-Duplicate-Of header; nothing is embedded),
    refuse (409 duplicate_document naming it) or allow (store a second copy). An explicit document_id is always
    honoured; a replace is never a duplicate."""
    keep_originals: bool = True
    """Keep each uploaded document's original file (the PDF, the image, the text/code file) with the document, for
    GET /v1/collections/{name}/documents/{id}/file. On by default: a kept PDF's pages are rendered from it when
    shown instead of storing an image per page, which is the smaller choice (~7 KB of PDF against ~40 KB of WebP
    per page on typical PDFs); a PNG, JPEG or WebP image upload likewise stores no page image (it is made again
    from the kept image), another image kind is kept beside its stored WebP, and a text/code file adds its own
    bytes (small beside its vectors). Applies to uploads made while it is on; a replace made while it is off drops
    the old original."""
    job_heartbeat_s: float = 2.0
    """Seconds between the heartbeats a process writes for its running indexing jobs (jobs are stored in the
    backend, so every process sees them)."""
    job_stale_after_s: float = 15.0
    """A queued/running job whose heartbeat is older than this is reported failed (job_interrupted): the process
    running it stopped. Must exceed job_heartbeat_s."""
    job_keep_finished: int = 1000
    """Finished indexing jobs kept in the backend (and in each process's memory): beyond the newest this many,
    the oldest are pruned (polling one is then 404). Queued and running jobs are never pruned."""
    job_keep_finished_s: float = 604800.0
    """Seconds a finished indexing job stays pollable after it finished (default 7 days); then it is pruned."""

    search_mode: str = "hybrid"
    """Mode of a text search that does not name one: hybrid (BM25 + visual, fused), visual or text. Image and
    stored-page queries default to visual."""
    search_fusion: str = "weighted"
    """How hybrid fuses BM25 and MaxSim when a search does not say: weighted (min-max normalised scores,
    weighted sum) or rrf (reciprocal-rank). docs/collections.md#search-modes has the measurements behind the
    default."""
    search_text_weight: float = 0.5
    """Hybrid fusion (both methods): the BM25 share (0..1; MaxSim gets the rest) when a search gives no text_weight."""
    search_rrf_k: int = 60
    """The RRF constant k (score = sum of 1 / (k + rank))."""
    search_max_per_span: int = 2
    """Code search: at most this many chunks of one definition in the top k (0: no cap; colbert.definitions)."""

    # --- search page ---------------------------------------------------------------------------------------
    ui: bool = True
    """Serve the search page at ``/ui/`` (static files; its API calls need a key when keys are set)."""
    thumbnail_max_side: int = 320
    """Longer side in pixels of page thumbnails (``GET .../pages/{page}/image?size=thumbnail``, JPEG)."""

    # --- maxsim ---------------------------------------------------------------------------------------------
    maxsim_cache_dir: Path | None = None
    """Where the MaxSim C kernel is compiled to (built at start-up with the system ``cc``); unset =
    ``~/.cache/jev4-serve``."""
    require_maxsim_kernel: bool = False
    """Refuse to start when the MaxSim C kernel cannot be built (no compiler, unwritable cache), instead of
    scoring with the slower torch fallback (a warning and the ``jev4_maxsim_fallback`` metric say so)."""

    def __post_init__(self) -> None:
        check_values(self)  # ranges and choices: service.settings_rules
        try:
            parse_api_task(self.default_task)
        except InvalidTaskError as exc:
            raise SettingsError(f"{env_name('default_task')}: {exc}") from None

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "<redacted>"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    def public_dict(self) -> dict[str, Any]:
        """All fields as JSON-friendly values with secrets redacted (for logs and ``/ready``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "<redacted>"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def local_url(self) -> str:
        """Where a client on this machine reaches the server (``0.0.0.0``/``::`` -> 127.0.0.1; IPv6 in brackets).

        >>> Settings(host="0.0.0.0", port=9000).local_url(), Settings(host="::1").local_url()
        ('http://127.0.0.1:9000', 'http://[::1]:8080')
        """
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``JEV4_*`` variables of ``environ`` (``os.environ`` when None), then ``overrides``
        (those that are not None)."""
        env = os.environ if environ is None else environ
        check_names(env, {env_name(f.name) for f in fields(cls)})
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is not None:
                values[f.name] = parse_value(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
