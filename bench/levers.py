"""Each speed/memory lever of ``model.fastpath`` / ``model.batching``, measured alone on stock modules (A/B).

    .venv/bin/python bench/levers.py [--dtype bfloat16] [--repeats 5]

Real-width random modules (vision 1280 / 16 heads / MLP 3420, 4 blocks, full attention in block 3; text
2048 / 16 / 2 KV / MLP 11008, 4 layers), one page of the bench workload (2944 patches, 736 merged tokens)
and the 16 bench passages. A and B run alternately in one process; the minimum of ``--repeats`` is printed
(other processes only ever add time). Lines:

- patch embedding: stock ``Conv3d`` vs :class:`model.fastpath.LinearPatchProjection`;
- vision tower: stock vs :func:`model.fastpath.speed_up_vision_tower` (+ the windowed attention alone);
- passages: batches of 8 in input order padded to the longest (the reference's way) vs
  :func:`model.batching.plan_batches` (length-sorted, 4096-token budget), text model only;
- packed batches: the fused text model on the 16 passages in the bench's length-sorted batches of 8, each batch
  padded to its longest row with a mask (the stock way) vs packed end to end with attention per row
  (:mod:`model.packing`, what :class:`model.network.Network` does for a batch of uneven rows);
- cache-sized slices: the same packed passages with every norm and rotary over ~2M elements at a time
  (:func:`model.elementwise.in_token_slices`, what the encoder does on CPU) vs whole; then the whole encoder on the
  real-width checkpoint of ``bench/encoder.py`` (16 passages, 8 pages; inputs prepared off the clock) with the
  slices on and off (a vision-tower line with ``--only vision`` as well);
- long text: peak RSS of the text MLP at 32k tokens, stock vs :func:`model.fastpath.chunk_token_mlps`;
- LoRA (text model with the three task adapters, r 32): PEFT's layers (per-row ``adapter_names`` for a mixed
  batch in arrival order, the plain path for one task) vs :func:`model.lora.fuse_text_projections` (q/k/v and
  gate/up as one product each, each task's LoRA as one A and one B product on its contiguous rows, rows grouped
  by task), on 8 queries (mixed and single task) and on 8 rows of 747 tokens (a batch of pages' text);
- vision MLPs: gate/up as two products vs one (:func:`model.lora.fuse_vision_mlps`), after the other fast paths;
- PDF indexing (``service.collections.indexing``): pages rendered and prepared in turn with the model vs one step
  ahead, on the tiny checkpoint (a fast model, as on a GPU) and at real width;
- rotary embeddings: the stock functions (q and k apart, ``rotate_half`` with ``cat``) vs
  :func:`model.fastpath.rotate` on q and k at once, for a page's vision tokens (float32 inside, as stock) and for
  8 rows of 747 text tokens (the model's dtype, as stock).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workloads import make_workloads

__all__ = ["main"]


def _ab(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    a()
    b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return min(ta), min(tb)


def _line(name: str, a: float, b: float, la: str = "stock", lb: str = "ours") -> None:
    print(f"{name:34s} {la} {a * 1000:9.1f} ms   {lb} {b * 1000:9.1f} ms   ×{a / b:5.2f}")


def _vision(dtype: torch.dtype, repeats: int) -> None:
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    from model.elementwise import SLICE_ELEMENTS
    from model.fastpath import LinearPatchProjection, chunk_token_norms, speed_up_vision_tower
    from model.lora import fuse_vision_mlps

    vc = {"depth": 4, "hidden_size": 1280, "num_heads": 16, "intermediate_size": 3420}
    vc |= {"out_hidden_size": 2048, "fullatt_block_indexes": [3]}
    config = Qwen2_5_VLConfig(vision_config=vc).vision_config
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    stock = Qwen2_5_VisionTransformerPretrainedModel(config).to(dtype).eval()
    fast = copy.deepcopy(stock)
    speed_up_vision_tower(fast, slice_elements=SLICE_ELEMENTS)  # as the encoder on CPU (rotary in slices)
    grid = torch.tensor([[1, 64, 46]])  # a bench page: 2944 patches
    pixels = torch.randn(64 * 46, 1176).to(dtype)  # (P, 1176)
    conv = stock.patch_embed.proj
    lin = LinearPatchProjection(conv)
    patches = pixels.view(-1, 3, 2, 14, 14)
    with torch.inference_mode():
        _line("patch embedding (2944 patches)", *_ab(lambda: conv(patches), lambda: lin(patches), repeats))
        a, b = _ab(lambda: stock(pixels, grid_thw=grid), lambda: fast(pixels, grid_thw=grid), repeats)
        _line("vision tower, 4 blocks (1 page)", a, b)
        fused = copy.deepcopy(fast)
        fuse_vision_mlps(fused)
        a, b = _ab(lambda: fast(pixels, grid_thw=grid), lambda: fused(pixels, grid_thw=grid), repeats)
        _line("vision tower, + fused gate/up MLPs", a, b, "fast", "fused")
        sliced = copy.deepcopy(fused)
        chunk_token_norms(sliced)
        a, b = _ab(lambda: fused(pixels, grid_thw=grid), lambda: sliced(pixels, grid_thw=grid), repeats)
        _line("vision tower, + RMSNorm slices", a, b, "fused", "sliced")


def _passages(dtype: torch.dtype, repeats: int) -> None:
    from model.batching import padded_tokens, plan_batches

    model = _real_width_text_model(dtype)
    lengths = [round(len(p.text.split()) * 1.07) for p in make_workloads()[1]]
    in_order = [list(range(i, min(i + 8, len(lengths)))) for i in range(0, len(lengths), 8)]
    planned = plan_batches(lengths, max_tokens=4096, max_rows=8)

    def run(batches: list[list[int]]) -> None:
        for b in batches:
            longest = max(lengths[i] for i in b)
            ids = torch.randint(0, 100000, (len(b), longest))
            mask = torch.zeros(len(b), longest, dtype=torch.long)
            for row, i in enumerate(b):
                mask[row, : lengths[i]] = 1
            model(input_ids=ids, attention_mask=mask)

    with torch.inference_mode():
        a, b = _ab(lambda: run(in_order), lambda: run(planned), max(1, repeats // 2))
    total = sum(lengths)
    print(
        f"passages: padded tokens {padded_tokens(lengths, in_order) / total:.2f}× (in order, 8/batch) vs "
        f"{padded_tokens(lengths, planned) / total:.2f}× (sorted, 4096-token budget) of {total} real tokens"
    )
    _line("16 passages, text model", a, b, "in order", "sorted")


def _real_width_text_model(dtype: torch.dtype, vocab: int = 151936) -> torch.nn.Module:
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

    tc = {"hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 2, "intermediate_size": 11008}
    config = Qwen2_5_VLConfig(text_config=tc | {"num_hidden_layers": 4, "vocab_size": vocab}).text_config
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return Qwen2_5_VLTextModel(config).to(dtype).eval()


def _fused_text(
    model: torch.nn.Module,
    ids: torch.Tensor,
    names: list[str],
    mask: torch.Tensor | None = None,
    lengths: list[int] | None = None,
) -> torch.Tensor:
    """A fused text model (``model.lora.fuse_text_projections``) through ``model.forward``'s decoder loop: padded
    ``(B, L)`` rows (``mask``: real tokens) or, with ``lengths``, a packed ``(1, T)`` sequence of those rows."""
    from model.forward import Layout, text_forward
    from model.packing import Segments
    from model.routing import Routing

    if lengths is not None:
        positions = torch.cat([torch.arange(n) for n in lengths])[None, None].expand(3, 1, -1)  # (3, 1, T)
        layout = Layout(Routing.packed(names, lengths), segments=Segments(tuple(lengths)))
    else:
        pos = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1) if mask is None else mask.cumsum(-1) - 1
        positions = pos.clamp_min(0)[None].expand(3, -1, -1)  # (3, B, L)
        layout = Layout(Routing.by_rows(names), key_mask=None if mask is None else mask.bool())
    return text_forward(model, model.get_submodule("embed_tokens")(ids), positions, layout)


def _passage_runs(model: torch.nn.Module) -> tuple[Callable[[], None], Callable[[], None], list[int], list[list[int]]]:
    """The 16 bench passages through ``model`` (a fused text model) in the encoder bench's length-sorted batches
    of 8: each batch padded to its longest row with a mask (the stock way), and packed (what ``Network`` does)."""
    from model.batching import plan_batches

    lengths = [round(len(p.text.split()) * 1.07) for p in make_workloads()[1]]
    batches = plan_batches(lengths, max_tokens=8 * max(lengths), max_rows=8)  # the encoder bench's batches
    torch.manual_seed(1)
    tokens = [torch.randint(0, 100000, (n,)) for n in lengths]

    def padded() -> None:
        for b in batches:
            longest = max(lengths[i] for i in b)
            ids = torch.zeros(len(b), longest, dtype=torch.long)
            mask = torch.zeros(len(b), longest, dtype=torch.long)
            for row, i in enumerate(b):
                ids[row, : lengths[i]], mask[row, : lengths[i]] = tokens[i], 1
            _fused_text(model, ids, ["retrieval"] * len(b), mask=mask)

    def packed_rows() -> None:
        for b in batches:
            rows = [lengths[i] for i in b]
            ids = torch.cat([tokens[i] for i in b])[None]  # (1, T)
            _fused_text(model, ids, ["retrieval"] * len(b), lengths=rows)

    return padded, packed_rows, lengths, batches


def _packing(dtype: torch.dtype, repeats: int) -> None:
    from model.batching import padded_tokens
    from model.lora import fuse_text_projections

    model = _real_width_text_model(dtype)
    fuse_text_projections(model)
    padded, packed_rows, lengths, batches = _passage_runs(model)
    with torch.inference_mode():
        a, b = _ab(padded, packed_rows, repeats)
    total = sum(lengths)
    print(f"packing: padded batches hold {padded_tokens(lengths, batches)} tokens for {total} real ones")
    _line("16 passages, sorted batches of 8", a, b, "padded", "packed")


def _slices(dtype: torch.dtype, repeats: int) -> None:
    from model.elementwise import SLICE_ELEMENTS
    from model.fastpath import chunk_token_norms
    from model.lora import fuse_text_projections

    whole = _real_width_text_model(dtype)
    fuse_text_projections(whole)  # norms and rotary in one call
    sliced = _real_width_text_model(dtype)
    fuse_text_projections(sliced, slice_elements=SLICE_ELEMENTS)
    chunk_token_norms(sliced, SLICE_ELEMENTS)
    with torch.inference_mode():
        a, b = _ab(_passage_runs(whole)[1], _passage_runs(sliced)[1], repeats)
    _line("16 passages packed, norm+rotary slices", a, b, "whole", "sliced")
    _slices_encoder(dtype, repeats)


def _slices_encoder(dtype: torch.dtype, repeats: int) -> None:
    """The whole encoder (real-width checkpoint of ``bench/encoder.py``, inputs prepared off the clock) on the
    bench's 16 passages and 8 pages, slices on and off in the same process."""
    from PIL import Image

    from bench.encoder import RESULTS, build_checkpoint
    from bench.workloads import load_workloads, write_workloads
    from model import Encoder, ForwardOptions
    from model.batching import plan_batches
    from model.types import parse_task

    checkpoint = build_checkpoint("real-width")
    encoder = Encoder.from_pretrained(checkpoint, dtype=dtype, device="cpu")
    whole = Encoder.from_pretrained(
        checkpoint, dtype=dtype, device="cpu", options=ForwardOptions(slice_elements=None)
    )  # the same weights, norms and rotary in one call
    work = load_workloads(write_workloads(RESULTS / "workloads"))
    prepare = encoder.processor
    passages = [prepare.prepare_text(r.text, parse_task(r.task, r.prompt)) for r in work.passages]
    spec = parse_task("retrieval", "passage")
    pages = [prepare.prepare_image(Image.open(path).convert("RGB"), spec) for path in work.pages]

    def runner(enc: Encoder, items: list[Any]) -> Callable[[], None]:
        lengths = [item.num_tokens for item in items]
        batches = plan_batches(lengths, max_tokens=8 * max(lengths), max_rows=8)  # the encoder bench's batches

        def run() -> None:
            for b in batches:
                enc.embed([items[i] for i in b], return_multivector=True)

        return run

    for name, items in (("16 passages", passages), ("8 pages", pages)):
        a, b = _ab(runner(whole, items), runner(encoder, items), repeats)
        _line(f"encoder, {name}, slices", a, b, "whole", "sliced")


def _compile(dtype: torch.dtype, repeats: int, limits: dict[str, int]) -> None:
    """The whole encoder (real-width checkpoint of ``bench/encoder.py``, inputs prepared off the clock), eager vs
    ``ForwardOptions(compile=True)`` (``model.compiled``) in one process. Per workload: one untimed eager pass
    (oneDNN builds its kernels per new shape), the first compiled pass timed on its own (= compile time with the
    inductor cache as it stands, plus one pass), then ``repeats`` alternating eager/compiled passes (minimum
    printed). ``limits`` keeps the first N items of a workload (the inputs are in a shuffled length order). The
    matmul rate is measured before and after; the best of the two is the ceiling the % figures use."""
    from PIL import Image

    from bench.encoder import RESULTS, build_checkpoint, workload_flops
    from bench.machine import matmul_rate
    from bench.workloads import load_workloads, write_workloads
    from model import Encoder, ForwardOptions
    from model.batching import plan_batches
    from model.types import parse_task

    checkpoint = build_checkpoint("real-width")
    paths = write_workloads(RESULTS / "workloads")
    flops = workload_flops(checkpoint, paths)
    rate_before = matmul_rate(dtype)
    print(f"matmul {dtype}, before: best {rate_before.best / 1e9:.1f} GFLOP/s", flush=True)
    eager = Encoder.from_pretrained(checkpoint, dtype=dtype, device="cpu")
    compiled = Encoder.from_pretrained(checkpoint, dtype=dtype, device="cpu", options=ForwardOptions(compile=True))
    work = load_workloads(paths)
    prepare = eager.processor
    spec = parse_task("retrieval", "passage")
    inputs = {
        "pages": [prepare.prepare_image(Image.open(path).convert("RGB"), spec) for path in work.pages],
        "passages": [prepare.prepare_text(r.text, parse_task(r.task, r.prompt)) for r in work.passages],
        "queries": [prepare.prepare_text(r.text, parse_task(r.task, r.prompt)) for r in work.queries],
    }

    def runner(enc: Encoder, items: list[Any]) -> Callable[[], None]:
        lengths = [item.num_tokens for item in items]
        batches = plan_batches(lengths, max_tokens=8 * max(lengths), max_rows=8)  # the encoder bench's batches

        def run() -> None:
            for b in batches:
                enc.embed([items[i] for i in b], return_multivector=True)

        return run

    def timed(fn: Callable[[], None]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    results: dict[str, tuple[int, int, float, float, float, float]] = {}
    for name, every in inputs.items():
        n = min(limits.get(name) or len(every), len(every))
        items = every[:n]
        total = sum(f.total for f in flops[name][:n])
        tokens = sum(item.num_tokens for item in items)
        a, b = runner(eager, items), runner(compiled, items)
        warm = timed(a)
        first = timed(b)
        ta, tb = [], []
        for _ in range(repeats):
            ta.append(timed(a))
            tb.append(timed(b))
        results[name] = (n, tokens, total, min(ta), min(tb), first)
        print(
            f"{name} ({n} items, {tokens} tokens, {total / 1e12:.2f} TFLOP): eager warm-up pass {warm:.1f} s, "
            f"first compiled pass {first:.1f} s",
            flush=True,
        )
        _line(f"encoder, {name}", min(ta), min(tb), "eager", "compiled")
    rate_after = matmul_rate(dtype)
    best = max(rate_before.best, rate_after.best)
    print(f"matmul {dtype}, after: best {rate_after.best / 1e9:.1f} GFLOP/s; ceiling used {best / 1e9:.1f} GFLOP/s")
    print(
        "| workload | eager s | compiled s | eager items/s | compiled items/s | compiled × eager "
        "| eager % of matmul | compiled % of matmul | first compiled pass s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (n, tokens, total, ea, co, first) in results.items():
        print(
            f"| {n} {name} ({tokens:,} tokens) | {ea:.2f} | {co:.2f} | {n / ea:.3g} | {n / co:.3g} | {ea / co:.2f} "
            f"| {total / ea / best:.1%} | {total / co / best:.1%} | {first:.1f} |"
        )


def _compile_shapes(dtype: torch.dtype, repeats: int) -> None:
    """Dynamic shapes vs length buckets for the compiled kernels (``model.compiled``), at real text width (hidden
    2048, MLP 11008), on token counts of a query batch, passages and pages. Variants, all with
    ``model.compiled.OPTIONS``: eager; ``dynamic=True`` (one graph for every length, every size symbolic: what the
    encoder uses); the same without ``emulate_precision_casts`` (its cost); the token count alone dynamic
    (``mark_dynamic`` on that dimension, the widths static); ``dynamic=False`` on the exact length (one graph per
    length: the best a bucket can do, with no padding); ``dynamic=False`` on power-of-two buckets (inputs
    zero-padded to the bucket, the result sliced back; the pad is on the clock). Per variant: graphs compiled and
    compile seconds, then per length the minimum over ``repeats`` of 3 calls of ``add_rms_norm`` + ``silu_mul``
    (the two largest)."""
    import torch._dynamo

    from model.compiled import OPTIONS, _import_inductor
    from model.elementwise import add_rms_norm, silu_mul

    _import_inductor()
    torch._dynamo.config.cache_size_limit = 64  # exact lengths and buckets: one graph each, no fallback to eager
    hidden, mlp, eps = 2048, 11008, 1e-6
    lengths = [150, 300, 747, 1213, 1981, 5992]  # 8 queries, short/long passages, a page, 8 pages packed
    gen = torch.Generator().manual_seed(0)
    weight = (1 + 0.1 * torch.randn(hidden, generator=gen)).to(dtype)
    data = {
        t: (
            torch.randn(1, t, hidden, generator=gen).to(dtype),
            torch.randn(1, t, hidden, generator=gen).to(dtype),
            torch.randn(1, t, 2 * mlp, generator=gen).to(dtype),
        )
        for t in lengths
    }

    def bucket(t: int) -> int:
        return max(64, 1 << (t - 1).bit_length())

    def variant(dynamic: bool | None, pad: bool, emulate: bool = True) -> Callable[[int], Callable[[], object]]:
        options: dict[str, Any] = dict(OPTIONS) | {"emulate_precision_casts": emulate}
        norm = torch.compile(add_rms_norm, dynamic=dynamic, fullgraph=True, options=options)
        mul = torch.compile(silu_mul, dynamic=dynamic, fullgraph=True, options=options)
        marked: dict[int, tuple[torch.Tensor, ...]] = {}

        def at(t: int) -> Callable[[], object]:
            r, d, g = data[t]
            if dynamic is None:  # the token dimension alone is symbolic (copies: marks stay on a tensor)
                if t not in marked:
                    marked[t] = tuple(x.clone() for x in (r, d, g))
                    for x in marked[t]:
                        torch._dynamo.mark_dynamic(x, 1)
                r, d, g = marked[t]

            def run() -> object:
                if pad:
                    extra = bucket(t) - t
                    rp, dp, gp = (torch.nn.functional.pad(x, (0, 0, 0, extra)) for x in (r, d, g))
                    total, h = norm(rp, dp, weight, eps)
                    return total[:, :t], h[:, :t], mul(gp, mlp)[:, :t]
                total, h = norm(r, d, weight, eps)
                return total, h, mul(g, mlp)

            return run

        return at

    def eager(t: int) -> Callable[[], object]:
        r, d, g = data[t]
        return lambda: (add_rms_norm(r, d, weight, eps), silu_mul(g, mlp))

    variants: dict[str, Callable[[int], Callable[[], object]]] = {"eager": eager}
    variants["dynamic"] = variant(True, False)
    variants["dynamic, no cast emulation"] = variant(True, False, emulate=False)
    variants["dynamic tokens"] = variant(None, False)
    variants["static, exact"] = variant(False, False)
    variants["static, pow2 buckets"] = variant(False, True)
    times: dict[str, dict[int, float]] = {}
    with torch.inference_mode():
        for name, at in variants.items():
            before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
            start = time.perf_counter()
            for t in lengths:
                at(t)()  # compiles what this variant needs for t
            spent = time.perf_counter() - start
            graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - before
            print(f"{name}: {graphs} graphs, first calls (compile) {spent:.1f} s", flush=True)
        times = {name: {} for name in variants}
        for _ in range(repeats):  # variants interleaved, so that load from other processes falls on all alike
            for t in lengths:
                for name, at in variants.items():
                    fn = at(t)
                    start = time.perf_counter()
                    for _call in range(3):
                        fn()
                    spent = (time.perf_counter() - start) / 3
                    times[name][t] = min(times[name].get(t, float("inf")), spent)
    print("| tokens | bucket | " + " | ".join(f"{n} ms" for n in variants) + " |")
    print("|---|---|" + "---|" * len(variants))
    for t in lengths:
        cells = " | ".join(f"{times[n][t] * 1000:.2f}" for n in variants)
        print(f"| {t} | {bucket(t)} | {cells} |")


def _lora(dtype: torch.dtype, repeats: int) -> None:
    import warnings

    from peft import LoraConfig, inject_adapter_in_model

    from model.adapters import route_rows
    from model.lora import fuse_text_projections

    stock = _real_width_text_model(torch.float32, vocab=8192)  # a small vocabulary: the table is not measured
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    tasks = ("retrieval", "text-matching", "code")
    for task in tasks:
        lora = LoraConfig(r=32, lora_alpha=64, target_modules=targets, lora_dropout=0.0, bias="none")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            inject_adapter_in_model(lora, stock, adapter_name=task)
    with torch.no_grad():
        for name, param in stock.named_parameters():
            if ".lora_B." in name:
                param.normal_(0.0, 0.02)
    stock = stock.to(dtype).eval()
    fused = copy.deepcopy(stock)
    fuse_text_projections(fused)
    mixed = [tasks[i % 3] for i in range(8)]  # the bench's mixed workload: tasks cycling, in arrival order

    def run(model: torch.nn.Module, ids: torch.Tensor, names: list[str]) -> None:
        if model is fused:
            _fused_text(model, ids, names)
            return
        with route_rows(model, names):
            model(input_ids=ids, use_cache=False)

    queries = torch.randint(0, 8192, (8, 26))
    pages = torch.randint(0, 8192, (8, 747))
    with torch.inference_mode():
        t = {}
        t["mixed"] = _ab(lambda: run(stock, queries, mixed), lambda: run(fused, queries, sorted(mixed)), repeats)
        _line("8 queries, 3 tasks mixed: LoRA", *t["mixed"], "PEFT", "fused")
        t["single"] = _ab(lambda: run(stock, queries, ["code"] * 8), lambda: run(fused, queries, ["code"] * 8), repeats)
        _line("8 queries, 1 task: LoRA", *t["single"], "PEFT", "fused")
        print(
            f"mixed-task cost over single-task: PEFT {t['mixed'][0] / t['single'][0] - 1:+.1%}, "
            f"fused {t['mixed'][1] / t['single'][1] - 1:+.1%}"
        )
        a, b = _ab(
            lambda: run(stock, pages, ["code"] * 8), lambda: run(fused, pages, ["code"] * 8), max(1, repeats // 2)
        )
        _line("8×747 tokens, 1 task: LoRA", a, b, "PEFT", "fused")


def _rotary(dtype: torch.dtype, repeats: int) -> None:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb, apply_rotary_pos_emb_vision

    from model.elementwise import rotate

    qkv = torch.randn(2944, 3, 16, 80).to(dtype)  # one page's vision q/k/v
    angles = torch.randn(2944, 80)
    vcos, vsin = angles.cos(), angles.sin()

    def vision_ours() -> object:
        return rotate(qkv[:, :2].float(), vcos[:, None, None], vsin[:, None, None]).to(dtype).unbind(1)

    with torch.inference_mode():
        a, b = _ab(lambda: apply_rotary_pos_emb_vision(qkv[:, 0], qkv[:, 1], vcos, vsin), vision_ours, repeats)
        _line("rotary, vision (2944 patches)", a, b)
        text = torch.randn(8, 747, 20, 128).to(dtype)  # (B, L, 16 q + 2 k + 2 v heads, d)
        tangles = torch.randn(8, 747, 128)
        tcos, tsin = tangles.cos().to(dtype), tangles.sin().to(dtype)
        q, k = text[:, :, :16].transpose(1, 2), text[:, :, 16:18].transpose(1, 2)
        a, b = _ab(
            lambda: apply_rotary_pos_emb(q, k, tcos, tsin),
            lambda: rotate(text[:, :, :18], tcos[:, :, None], tsin[:, :, None]),
            repeats,
        )
        _line("rotary, text (8×747 tokens)", a, b)


def _memory(dtype: torch.dtype, tokens: int) -> None:
    import subprocess

    code = (
        "import torch,sys;from bench._worker import RssSampler;from model.fastpath import chunk_token_mlps\n"
        "from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLMLP\n"
        "from transformers import Qwen2_5_VLConfig\n"
        "c=Qwen2_5_VLConfig(text_config={'hidden_size':2048,'intermediate_size':11008}).text_config\n"
        f"m=Qwen2_5_VLMLP(c).to(torch.{dtype});x=torch.randn(1,{tokens},2048).to(torch.{dtype})\n"
        "holder=torch.nn.Module();holder.layers=torch.nn.ModuleList([torch.nn.Module()]);holder.layers[0].mlp=m\n"
        "if sys.argv[1]=='chunked': chunk_token_mlps(holder, 4096)\n"
        "with torch.inference_mode(), RssSampler() as s: before=s.peak; m(x)\n"
        "print((s.peak-before)/2**30)"
    )
    peaks = {}
    for mode in ("stock", "chunked"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True)
        peaks[mode] = float(out.stdout.split()[-1])
    print(
        f"{tokens}-token text MLP, RSS growth: stock {peaks['stock']:.2f} GiB, chunked (4096) "
        f"{peaks['chunked']:.2f} GiB"
    )


def _pdf_pages(pages: int) -> bytes:
    """A text-heavy letter-size PDF (every page set with lines of text and a filled box), made here."""
    import pymupdf

    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=612, height=792)
        for line in range(56):
            text = f"{n + 1}.{line} the quick brown fox jumps over the lazy dog " * 2
            page.insert_text((48, 60 + line * 12), text, fontsize=8)
        page.draw_rect(pymupdf.Rect(300, 420, 560, 700), color=(0, 0, 1), fill=(0.85, 0.9, 1))
    return bytes(doc.tobytes())


def _pdf_ahead(dtype: torch.dtype, repeats: int, pages: int = 16) -> None:
    """Indexing a PDF (``service.collections.indexing.Indexer``, 144 dpi, steps of 4 pages, a 2-thread
    preprocessing pool and one model thread as in the service): render and prepare in turn vs one step ahead. On the
    tiny checkpoint the model is fast, as on a GPU, so rendering shows; at real width the model dominates."""
    pdf = _pdf_pages(pages)
    for config in ("tiny", "real-width"):
        a, b = _pdf_index_ab(config, dtype, pdf, pages, repeats if config == "tiny" else 1)
        _line(f"PDF indexing, {pages} pages, {config}", a, b, "in turn", "ahead")


def _pdf_index_ab(config: str, dtype: torch.dtype, pdf: bytes, pages: int, repeats: int) -> tuple[float, float]:
    import asyncio
    import functools
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from bench.encoder import build_checkpoint
    from model import Encoder
    from service.collections.embedder import EmbeddingModel
    from service.collections.indexing import DocumentSource, Indexer, IndexOptions
    from service.collections.writing import write_pages

    encoder = Encoder.from_pretrained(build_checkpoint(config), dtype=dtype, device="cpu")
    info = encoder.info
    store = SimpleNamespace(config=SimpleNamespace(dense_dim=info.hidden_size), add_document=lambda *a, **k: None)
    with ThreadPoolExecutor(1) as model_thread, ThreadPoolExecutor(2) as pool:

        async def embed(rows: list[Any]) -> list[Any]:
            run = functools.partial(encoder.embed, rows, return_multivector=True)
            return await asyncio.get_running_loop().run_in_executor(model_thread, run)

        def index(ahead: bool) -> Callable[[], None]:
            options = IndexOptions(max_pages=pages, prepare_ahead=ahead)
            model = EmbeddingModel(encoder.processor, embed, pool, info.hidden_size, tuple(info.matryoshka_dims))
            indexer = Indexer(model, options)
            source, numbers = indexer.plan_pages(DocumentSource(pdf, "pdf"))
            return lambda: asyncio.run(
                write_pages(indexer, store, "d", source, numbers, replace=True)  # type: ignore[arg-type]
            )

        return _ab(index(False), index(True), repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    levers = ["vision", "passages", "packing", "slices", "memory", "lora", "rotary", "pdf", "compile", "shapes"]
    parser.add_argument("--only", choices=levers, default=None)
    parser.add_argument("--pages", type=int, default=0, help="--only compile: the first N pages (0: all 8)")
    parser.add_argument("--passages", type=int, default=0, help="--only compile: the first N passages (0: all 16)")
    parser.add_argument("--queries", type=int, default=0, help="--only compile: the first N queries (0: all 64)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"levers, {args.dtype}, {torch.get_num_threads()} threads, min of {args.repeats}")
    if args.only in (None, "vision"):
        _vision(dtype, args.repeats)
    if args.only in (None, "passages"):
        _passages(dtype, args.repeats)
    if args.only in (None, "packing"):
        _packing(dtype, args.repeats)
    if args.only in (None, "slices"):
        _slices(dtype, args.repeats)
    if args.only in (None, "rotary"):
        _rotary(dtype, args.repeats)
    if args.only in (None, "lora"):
        _lora(dtype, args.repeats)
    if args.only in (None, "memory"):
        _memory(dtype, 32768)
    if args.only in (None, "pdf"):
        _pdf_ahead(dtype, args.repeats)
    if args.only == "compile":  # not in the default set: compiling takes minutes on a shared 2-core machine
        _compile(dtype, args.repeats, {"pages": args.pages, "passages": args.passages, "queries": args.queries})
    if args.only == "shapes":  # compiled kernels: dynamic shapes vs length buckets (compiles ~20 graphs)
        _compile_shapes(dtype, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
