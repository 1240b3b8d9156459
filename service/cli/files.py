"""``python -m service index`` and ``python -m service search``: the collection routes without a server.

Both load the model and open the document repository (:mod:`service.collections.repository`, the same owner the
HTTP routes use) from the same settings as ``serve`` (flags, then ``JEV4_*`` variables), so a collection indexed
here is served by ``serve`` on the same ``--data-dir`` and vice versa, also while it runs (embedded backend;
not with the Qdrant local mode, which locks its folder).

    python -m service index samples/ --collection samples --tiny
    python -m service search "quarterly revenue table" --collection samples --tiny

``index`` takes files and folders (walked recursively for .pdf and image files), creates the collection
when it does not exist (``--dimensions``, ``--codec``, ``--pool-factor``), shows one progress bar over all
pages, and names each document by its path relative to the folder given (or its file name), characters
outside ``A-Z a-z 0-9 . _ - :`` replaced by ``_``. A document that exists is skipped unless ``--replace``.
A file whose bytes a stored document already holds follows ``--duplicate-policy`` / ``JEV4_DUPLICATE_POLICY``
(:mod:`service.collections.duplicates`): skipped, naming that document (return_existing, the default), failed
(refuse) or indexed again (allow).
Exit status: 0 when every file was indexed or skipped, 1 when some failed or were refused, 2 when nothing could
start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from colbert.store import Store
    from model.encoder import Encoder
    from service.collections.indexing import Indexer
    from service.collections.repository import Repository
    from service.collections.vectors import EmbeddingModel
    from service.settings import Settings

__all__ = [
    "DOCUMENT_SUFFIXES",
    "add_index_arguments",
    "add_search_arguments",
    "collect_documents",
    "index_command",
    "search_command",
    "unique_ids",
]

DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._:=+@-]")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="PDF/image files or folders (walked recursively)")
    parser.add_argument("--collection", required=True, help="collection name (created when missing)")
    parser.add_argument("--dimensions", type=int, help="dense size of a NEW collection (default: full)")
    parser.add_argument("--codec", default="float16", help="float32 | float16 | int8 | binary (new collection)")
    parser.add_argument("--pool-factor", type=int, default=1, help="token pooling of a NEW collection")
    parser.add_argument("--pages", help='PDF pages to index in every file, e.g. "1-3"; default all')
    parser.add_argument("--metadata", type=_json_object, help="JSON object merged into each document's metadata")
    parser.add_argument("--replace", action="store_true", help="replace documents that already exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from service.cli.text import add_text_arguments

    add_text_arguments(parser)


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the text query")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument(
        "--filter", type=_json_object, help='metadata filter, e.g. {"kind": "pdf", "year": {"$gte": 2020}}'
    )
    parser.add_argument("--exhaustive", action="store_true", help="exact MaxSim over every page")
    parser.add_argument(
        "--mode",
        choices=["visual", "text", "hybrid"],
        default=None,
        help="visual (first stage + MaxSim), text (BM25 over the pages' text), hybrid (both, fused); "
        "default: the search_mode setting (hybrid)",
    )
    parser.add_argument(
        "--fusion",
        choices=["rrf", "weighted"],
        default=None,
        help="how hybrid fuses (default: the search_fusion setting, weighted)",
    )
    parser.add_argument("--include-text", action="store_true", help="print each page's text layer")
    parser.add_argument("--json", action="store_true", help="one JSON object per hit instead of a table")


@dataclass(frozen=True, slots=True)
class DocumentFile:
    path: Path
    document_id: str
    source: str  # the path as shown (relative to the folder given)


def _document_id(name: str) -> str:
    ident = _UNSAFE.sub("_", name)
    return ident if ident[:1].isalnum() else f"d{ident}"


def collect_documents(paths: Iterable[Path]) -> list[DocumentFile]:
    """Files as given (any suffix) plus the PDFs and images under each folder, sorted, ids made unique."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in DOCUMENT_SUFFIXES:
                    found.append((file, file.relative_to(path).as_posix()))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return [DocumentFile(file, ident, shown) for (file, shown), ident in zip(found, unique_ids(found), strict=True)]


def unique_ids(found: Sequence[tuple[Path, str]]) -> list[str]:
    """A document id for each shown path (unsafe characters replaced), made unique with ``-2``, ``-3`` …"""
    out: list[str] = []
    used: set[str] = set()
    for _file, shown in found:
        base = _document_id(shown)[:240]
        ident, n = base, 1
        while ident in used:
            n += 1
            ident = f"{base}-{n}"
        used.add(ident)
        out.append(ident)
    return out


class _Bar:
    """:class:`~service.collections.indexing.Progress` over one tqdm bar shared by every file."""

    def __init__(self, disable: bool, unit: str = "page") -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)

    def start(self, pages_total: int) -> None:
        self.bar.total = (self.bar.total or 0) + pages_total
        self.bar.refresh()

    def advance(self, pages: int) -> None:
        self.bar.update(pages)

    def note(self, message: str) -> None:
        """Print a line above the bar (to stderr, like the bar)."""
        self.bar.write(message, file=sys.stderr)


def _load(settings: Settings) -> tuple[Encoder, Repository] | None:
    """Encoder and repository (the MaxSim kernel built first); None (after printing why) when either cannot start."""
    from service.collections.repository import Repository
    from service.engine.kernel import KernelUnavailableError, build_kernel
    from service.engine.loading import ModelLoadError, load_encoder
    from service.engine.runtime import open_catalog

    try:
        build_kernel(settings)
        encoder = load_encoder(settings)
    except (ModelLoadError, KernelUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return encoder, Repository(open_catalog(settings))


def _model(encoder: Encoder, executor: Executor, pool: Executor) -> EmbeddingModel:
    """The encoder as indexing and search use it: embedded in ``executor`` (one thread), prepared in ``pool``."""
    from service.collections.vectors import EmbeddingModel

    async def embed(rows: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: encoder.embed(rows, return_multivector=True))

    info = encoder.info
    return EmbeddingModel(encoder.processor, embed, pool, info.hidden_size, tuple(info.matryoshka_dims))


def index_command(args: argparse.Namespace, settings: Settings) -> int:
    """Index files/folders into ``args.collection`` (see the module doc; text/code: ``service.cli.text``)."""
    text = bool(getattr(args, "text", False) or getattr(args, "task", None) == "code")
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    files = [] if text else collect_documents(args.paths)
    loaded = _load(settings)
    if loaded is None:
        return 2
    encoder, repository = loaded
    try:
        from service.cli.text import holds_chunks, text_index_command

        if text or holds_chunks(repository, args.collection):
            return asyncio.run(text_index_command(args, settings, encoder, repository, _open_or_create))
        return asyncio.run(_index_all(args, settings, encoder, repository, files))
    finally:
        repository.catalog.close()


def _open_or_create(args: argparse.Namespace, encoder: Encoder, repository: Repository) -> Store:
    from colbert.quantize import Codec
    from colbert.store import CollectionConfig
    from service.cli.text import new_collection_kind

    info = encoder.info
    config = CollectionConfig(
        dense_dim=args.dimensions or info.hidden_size,
        multivector_dim=info.multivector_dim,
        codec=Codec(args.codec),
        pool_factor=args.pool_factor,
        **new_collection_kind(args),
    )
    store, created = repository.open_or_create(args.collection, config)
    if created:
        print(f"created collection {args.collection!r} ({config})", file=sys.stderr)
    return store


async def _index_all(
    args: argparse.Namespace, settings: Settings, encoder: Encoder, repository: Repository, files: list[DocumentFile]
) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from service.collections.indexing import Indexer, IndexOptions

    info = encoder.info
    if args.dimensions is not None and args.dimensions not in {*info.matryoshka_dims, info.hidden_size}:
        print(
            f"error: --dimensions must be one of {sorted({*info.matryoshka_dims, info.hidden_size})}",
            file=sys.stderr,
        )
        return 2
    store = _open_or_create(args, encoder, repository)
    if store.config.unit_kind != "page":
        print(
            f"error: collection {args.collection!r} holds text chunks; index PDFs and images elsewhere", file=sys.stderr
        )
        return 2
    with (
        ThreadPoolExecutor(1, thread_name_prefix="jev4-model") as model,
        ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="jev4-prep") as pool,
    ):
        indexer = Indexer(_model(encoder, model, pool), repository, IndexOptions.from_settings(settings))
        bar = _Bar(disable=args.no_progress)
        try:
            failed = [f for f in files if not await _index_one(args, indexer, store, f, bar, settings)]
        finally:
            bar.bar.close()
    done = len(files) - len(failed)
    print(f"{done} of {len(files)} documents indexed or present in {args.collection!r}", file=sys.stderr)
    return 1 if failed else 0


def _skipped_duplicate(file: DocumentFile, existing: str) -> str:
    """The line for a file whose content is stored already (``JEV4_DUPLICATE_POLICY=return_existing``)."""
    from service.settings import env_name

    if existing == file.document_id:
        return f"skipped {file.source}: document {file.document_id!r} exists, same content (use --replace)"
    setting = env_name("duplicate_policy")
    return f"skipped {file.source}: the same content is document {existing!r} ({setting}=return_existing)"


async def _index_one(
    args: argparse.Namespace,
    indexer: Indexer,
    store: Store,
    file: DocumentFile,
    bar: _Bar,
    settings: Settings,
) -> bool:
    from colbert.errors import DocumentExistsError
    from colbert.store import OriginalFile
    from model.errors import InputError
    from service.collections.duplicates import plan_upload
    from service.collections.indexing import DocumentSource, detect_kind
    from service.collections.uploads import media_type_of
    from service.errors import DuplicateDocumentError

    data = file.path.read_bytes()
    kind = detect_kind(data)
    metadata = {"source": file.source, "kind": kind, **(args.metadata or {})}
    source = DocumentSource(data, kind, args.pages if kind == "pdf" else None)
    original = OriginalFile(data, media_type_of(data, kind), file.path.name) if settings.keep_originals else None
    policy = settings.duplicate_policy
    bar.bar.set_postfix_str(file.source[-40:])
    try:
        plan = await plan_upload(
            indexer,
            store,
            args.collection,
            file.document_id,
            source,
            replace=args.replace,
            explicit_id=False,
            policy=policy,
            background=True,
        )
        if plan.existing is not None:
            bar.note(_skipped_duplicate(file, plan.existing.doc_id))
            return True
        await indexer.index(
            store,
            args.collection,
            file.document_id,
            source,
            metadata,
            replace=args.replace,
            progress=bar,
            pages=plan.pages,
            content_hash=plan.content_hash,
            background=True,
            original=original,
        )
    except DocumentExistsError:
        bar.note(f"skipped {file.source}: document {file.document_id!r} exists (use --replace)")
    except DuplicateDocumentError as exc:
        bar.note(f"refused {file.source}: {exc.message}")
        return False
    except InputError as exc:
        bar.note(f"failed {file.source}: {exc}")
        return False
    return True


def search_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the ranked pages of ``args.collection`` for ``args.query``."""
    loaded = _load(settings)
    if loaded is None:
        return 2
    encoder, repository = loaded
    try:
        return asyncio.run(_search(args, settings, encoder, repository))
    finally:
        repository.catalog.close()


async def _search(args: argparse.Namespace, settings: Settings, encoder: Encoder, repository: Repository) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from colbert.errors import CollectionNotFoundError
    from service.collections.schemas import SearchRequest
    from service.collections.search import Searcher
    from service.collections.search_plan import SearchLimits, SearchQuery

    try:
        store = repository.open(args.collection)
    except CollectionNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(1, thread_name_prefix="jev4-model") as model:
        searcher = Searcher(_model(encoder, model, model), SearchLimits.from_settings(settings))
        asked = ("top_k", "filter", "exhaustive", "mode", "fusion", "include_text")  # the same names as HTTP's
        request = SearchRequest(query=args.query, **{name: getattr(args, name) for name in asked})
        query = SearchQuery(text=args.query)
        outcome = await searcher.search(store, query, searcher.limits.plan(query, store.config, request))
    for rank, match in enumerate(outcome.matches, 1):
        hit = match.hit
        if hit.kind == "chunk":
            from service.cli.text import print_chunk_hit

            print_chunk_hit(rank, match, store.get_unit(hit.doc_id, hit.unit), as_json=args.json)
        elif args.json:
            row: dict[str, Any] = {"rank": rank, "document_id": hit.doc_id, "page": hit.unit, "score": hit.score}
            row["signals"] = {k: {"score": v.score, "rank": v.rank} for k, v in hit.signals.items()}
            if args.include_text:
                row["text"] = match.hit.text
            print(json.dumps({**row, "metadata": hit.metadata}, ensure_ascii=False))
        else:
            found = "+".join(k for k in ("text", "maxsim") if k in hit.signals) or "-"
            print(f"{rank:>3}  {hit.score:#10.4g}  {hit.doc_id}  page {hit.unit}  [{found}]")
            if args.include_text and match.hit.text:
                print("     " + " ".join(match.hit.text.split())[:300])
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not outcome.matches:
        print("no results", file=sys.stderr)
    return 0
