"""The app's resources, owned by the Litestar lifespan and handed to handlers by DI (``runtime: Runtime``).

Start-up never blocks the event loop: the model loads (when not given) in a thread, then is warmed up with one
text and one image through the batcher; ``/ready`` answers 503 until then, and the embedding routes answer 503
``model_not_ready``. ``/health`` answers as soon as the server listens.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from service.embeddings.prepare import Preparer
from service.engine.batcher import Batcher
from service.engine.kernel import build_kernel
from service.engine.loading import ModelSource, load_encoder
from service.engine.render_pool import RenderPool
from service.errors import NotReadyError
from service.limits import InputLimits

if TYPE_CHECKING:
    from model.encoder import Encoder
    from service.metrics import Metrics
    from service.settings import Settings

__all__ = ["Runtime", "model_source", "open_catalog", "where_to_go"]

_LOG = logging.getLogger("jev4.runtime")


# How new embedded collections store each unit's dense vector (colbert.local.dense_codec): int8 keeps its direction to
# ~0.4 % of the largest component at a quarter of float32's bytes, and the dense stage's recall after the MaxSim
# rerank was the same as float32's (docs/notes/2026-12-07b/compact.md); existing collections keep what they store.
NEW_COLLECTION_DENSE_CODEC = "int8"


def model_source(settings: Settings) -> ModelSource:
    """The checkpoint the settings name and how to load it (``--tiny``: the random test checkpoint, kept in the data
    directory beside the collections)."""
    return ModelSource(
        model=settings.model,
        tiny_dir=settings.data_dir / "tiny-checkpoint" if settings.tiny else None,
        revision=settings.revision,
        local_files_only=settings.local_files_only,
        dtype=settings.dtype,
        device=settings.device,
        attn_implementation=settings.attn_implementation,
        compile=settings.compile,
        cuda_graphs=settings.cuda_graphs,
        graph_max_tokens=settings.cuda_graph_max_tokens,
    )


def open_catalog(settings: Settings) -> Any:
    """The collection catalog the settings describe (``data_dir/collections`` or Qdrant)."""
    from colbert.catalog import Catalog
    from colbert.local import LocalOptions

    return Catalog(
        settings.data_dir,
        backend=settings.collection_backend,  # only colbert.backends interprets it
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        local_options=LocalOptions(
            first_stage=settings.first_stage,
            busy_timeout_s=settings.store_busy_timeout_s,
            term_cache_bytes=settings.term_cache_mb << 20,
            dense_codec=NEW_COLLECTION_DENSE_CODEC,
            auto_cells_units=settings.auto_cells_units,
        ),
    )


def where_to_go(settings: Settings) -> str:
    """The one line that tells a person where to go once the server is ready."""
    base = settings.local_url()
    return f"ready: search page {base}/ui/ - API docs {base}/docs - embeddings POST {base}/v1/embeddings"


class Runtime:
    """Settings, metrics, encoder, batcher, preparer, catalog and the preprocessing pool of one app."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        encoder: Encoder | None = None,
        catalog: Any = None,
        loader: Callable[[ModelSource], Encoder] = load_encoder,
    ) -> None:
        self.settings = settings
        self.source = model_source(settings)  # the checkpoint the loader loads (and the model names requests may use)
        self.limits = InputLimits.from_settings(settings)  # the input caps every front end and pipeline checks
        self.retry_after_s = settings.retry_after_s  # the Retry-After of a full model queue (429)
        self.store_busy_timeout_s = settings.store_busy_timeout_s  # how long a write waits for a busy store
        self.default_task = settings.default_task  # the task of a request that names none
        self.warm_collections = settings.warm_collections  # open every collection in the background at start
        self.tiny_checkpoint = self.source.tiny  # --tiny: the random test checkpoint, whose vectors mean nothing
        self.metrics = metrics
        self.encoder = encoder
        self.catalog = catalog
        self.loader = loader
        self.pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="jev4-prep")
        self.render_pool: RenderPool | None = None  # made in start(), closed in close()
        self.batcher: Batcher | None = None
        self.preparer: Preparer | None = None
        self.ready = False
        self.status = "starting"
        self._owns_catalog = catalog is None
        self._start_task: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._stop_warming = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        """Build the MaxSim kernel (KernelUnavailableError when required and impossible), open the catalog, then
        load + warm the model: in the background (the server: ``/ready`` says when), or before returning
        (``background=False``, the CLI: a ModelLoadError propagates)."""
        self.render_pool = RenderPool(self.settings.preprocess_threads, self.settings.render_page_timeout_s)
        # passed down as a value: PDF pages render in its worker processes (a page over the budget is refused)
        in_use = await asyncio.to_thread(build_kernel, self.settings)
        self.metrics.maxsim_kernel.set(1 if in_use else 0)
        await self.open_catalog()
        if background:
            if self.warm_collections:  # beside the model's load: the catalog opens outside its lock, one name at a time
                self._warming = asyncio.create_task(self._warm_collections())
            self._start_task = asyncio.create_task(self._load_and_warm(reraise=False))
        else:
            await self._load_and_warm(reraise=True)

    async def open_catalog(self) -> None:
        """Open the collection catalog (when none was given); all the management commands need."""
        if self.catalog is None:
            self.catalog = await asyncio.to_thread(open_catalog, self.settings)

    async def _load_and_warm(self, *, reraise: bool) -> None:
        try:
            if self.encoder is None:
                self.status = "loading"
                self.encoder = await asyncio.to_thread(self.loader, self.source)
            self._attach(self.encoder)
            self.status = "warming up"
            await self.warm_up()
        except Exception as exc:
            self.status = f"failed: {type(exc).__name__}: {exc}"
            if reraise:
                raise
            _LOG.error("model start-up failed", exc_info=exc)  # the outermost layer of the background task
            return
        self.ready = True
        self.status = "ready"
        self.metrics.model_ready.set(1)
        _LOG.info("model ready", extra={"model": self.model_name})
        _LOG.info("%s", where_to_go(self.settings))

    async def _warm_collections(self) -> None:
        start = time.perf_counter()
        try:
            warmed = await asyncio.to_thread(self.catalog.warm, self._stop_warming)
        except Exception:  # noqa: BLE001 - outermost layer of a background task: each first use opens its collection
            _LOG.exception("warming up the collections failed")
            return
        _LOG.info("warmed up %d collections in %.1f s", len(warmed), time.perf_counter() - start)

    def _attach(self, encoder: Encoder) -> None:
        s = self.settings
        if s.torch_threads:
            import torch

            torch.set_num_threads(s.torch_threads)
        self.batcher = Batcher(
            encoder,
            max_batch_tokens=s.max_batch_tokens,
            max_batch_size=s.max_batch_size,
            max_queue_rows=s.max_queue_rows,
            retry_after_s=self.retry_after_s,
            metrics=self.metrics,
        )
        self.batcher.start()
        self.preparer = Preparer(
            encoder.processor, s, self.pool, self.metrics, limits=self.limits, render_pool=self.render_pool
        )

    async def warm_up(self) -> None:
        """One text and one small image through the batcher (first-call costs paid before ``/ready``), then the
        CUDA graphs of every token bucket when they are on (``JEV4_CUDA_GRAPHS``, a GPU)."""
        from PIL import Image

        from model.types import parse_task

        assert self.encoder is not None
        assert self.batcher is not None
        processor = self.encoder.processor
        spec = parse_task(self.default_task)
        image = Image.new("RGB", (64, 64), (128, 64, 32))
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(self.pool, lambda: processor.prepare_text("warm up", spec))
        picture = await loop.run_in_executor(self.pool, lambda: processor.prepare_image(image, spec))
        await self.batcher.embed([text, picture], return_multivector=True)
        # the batcher's worker is idle (nothing is served before /ready): the capture may run on another thread
        start = time.perf_counter()
        captured = await asyncio.to_thread(self.encoder.capture_graphs)
        if captured:
            buckets = self.encoder.network.graphs.buckets if self.encoder.network.graphs else ()
            _LOG.info(
                "captured %d CUDA graphs (token buckets %s) in %.1f s", captured, buckets, time.perf_counter() - start
            )

    async def close(self) -> None:
        """Stop the worker, the pool and (if we opened it) the catalog."""
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        self.ready = False
        self.metrics.model_ready.set(0)
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.render_pool is not None:
            self.render_pool.close()
        if self._warming is not None:  # it ends after the collection it is opening: only then is the catalog closed
            self._stop_warming.set()
            await self._warming
        if self._owns_catalog and self.catalog is not None:
            self.catalog.close()

    # ---- for handlers --------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.settings.served_model_name

    def engine(self) -> tuple[Encoder, Batcher, Preparer]:
        """Encoder, batcher and preparer, or NotReadyError (503) while loading / warming up / failed."""
        if not self.ready or self.encoder is None or self.batcher is None or self.preparer is None:
            raise NotReadyError(f"the model is not ready ({self.status}); retry when GET /ready answers 200")
        return self.encoder, self.batcher, self.preparer

    def check_model(self, requested: str | None) -> None:
        """Accept an omitted model, the served name, or the configured model id/path; else NotFoundError."""
        from service.errors import NotFoundError

        if requested is None or requested in (self.settings.served_model_name, self.source.model):
            return
        if requested.rsplit("/", 1)[-1] == self.settings.served_model_name:
            return  # e.g. "jinaai/jina-embeddings-v4"
        raise NotFoundError(
            f"model {requested!r} is not served here; this server serves {self.settings.served_model_name!r}",
            code="model_not_found",
        )
