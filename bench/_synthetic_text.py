"""Synthetic page text for the hybrid search benchmark: Zipf-distributed pseudo-words, like a real text layer.

Each page gets ``words`` words (±20 %) drawn from a ``vocab``-word vocabulary with Zipf exponent 1.07 (close to
English), so posting lists have the skew real text has: a few words on almost every page, most on few. Each page
also carries one rare "code" word (a part-number-like token unique to about one page in ``vocab``), the kind of
exact keyword hybrid search exists for. A query is 2–5 words of its source page, one of them often the code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TextCorpus"]

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70 syllables


def _word(i: int) -> str:
    """A pronounceable, unique pseudo-word for vocabulary index ``i``."""
    parts = []
    i += 70
    while i:
        i, r = divmod(i, len(_SYLLABLES))
        parts.append(_SYLLABLES[r])
    return "".join(parts)


class TextCorpus:
    def __init__(self, seed: int, words: int = 300, vocab: int = 50_000) -> None:
        self.seed = seed
        self.words = words
        ranks = np.arange(1, vocab + 1, dtype=np.float64)
        p = ranks**-1.07
        self.cdf = np.cumsum(p / p.sum())  # (vocab,)
        self.vocab = [_word(i) for i in range(vocab)]

    def page(self, index: int) -> str:
        rng = np.random.default_rng((self.seed, index))
        n = int(rng.integers(int(self.words * 0.8), int(self.words * 1.2) + 1))
        ids = np.searchsorted(self.cdf, rng.random(n))  # (n,) Zipf-distributed word ids
        words = [self.vocab[min(int(i), len(self.vocab) - 1)] for i in ids]
        code = f"X{(index * 7919) % 10**7:07d}Q"
        words.insert(int(rng.integers(0, n)), code)
        return " ".join(words)

    def query(self, text: str, rng: np.random.Generator) -> str:
        words = text.split()
        picked = [words[int(i)] for i in rng.choice(len(words), int(rng.integers(2, 6)), replace=False)]
        if rng.random() < 0.5:
            picked[0] = next(w for w in words if w.startswith("X") and w.endswith("Q"))
        return " ".join(picked)
