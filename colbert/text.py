"""The one tokeniser of the full-text side: page text layers, code chunks and user queries all go through it.

Both backends index *our* tokens (SQLite FTS5 stores them space-separated; Qdrant receives them as sparse
vectors), so indexing and querying agree by construction and no user text ever reaches FTS5's query parser.

Rules (``tokens`` applies them in this order):

1. Unicode NFKC (full-width letters, ligatures such as ``ﬁ`` and superscripts become plain characters).
2. A *word* is a maximal run of letters, combining marks and digits (Unicode ``L``, ``M``, ``N``), where
   underscores may join runs (``parse_page_selection`` is one word). Everything else separates words:
   spaces, punctuation, symbols, quotes, ``*``, ``-``, parentheses — so FTS5 syntax in a query is plain text.
3. Identifiers are split: on underscores and on case changes (``parsePageSelection``, ``HTTPServer`` →
   ``http``, ``server``). The parts are emitted, then — when there are several — their concatenation, so
   ``parse_page_selection``, ``parsePageSelection`` and ``ParsePageSelection`` all also yield
   ``parsepageselection`` and find each other, while a query for ``page`` still finds all three.
   Letters and digits are not split (``utf8``, ``x7200b``, ``v4`` stay whole: part numbers stay exact).
4. Han, Hiragana and Katakana characters (no spaces between words) become one token each.
5. Case is folded (``str.casefold``) and diacritics are removed from Latin, Greek and Cyrillic letters
   (``Café`` → ``cafe``); marks of other scripts are kept, since they change the word.
6. Tokens longer than :data:`MAX_TOKEN_CHARS` are dropped (base64 blobs, hashes: noise for ranking).

No stemming and no stop words: BM25's IDF already discounts common words, and exact forms matter for codes and
identifiers. :data:`TOKENIZER_VERSION` names these rules; changing the rules (any output of :func:`tokens`)
must change it. It is stored with every index (the embedded index's meta table, the Qdrant collection's
metadata), and an index built by older rules is rebuilt from its stored texts when opened (:mod:`colbert.local.migrate`,
:mod:`colbert.qdrant.sparse`): both backends remove or weigh a unit by re-tokenising its stored text, which is only
right under the rules it was indexed by.

>>> tokens("parsePageSelection(spec) -> list[int]")
['parse', 'page', 'selection', 'parsepageselection', 'spec', 'list', 'int']
>>> tokens('Café "NEAR" *error-42* (unbalanced')
['cafe', 'near', 'error', '42', 'unbalanced']
>>> tokens("HTTPServer max_pdf_pages")
['http', 'server', 'httpserver', 'max', 'pdf', 'pages', 'maxpdfpages']
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Final

import regex

__all__ = ["MAX_TOKEN_CHARS", "TOKENIZER_VERSION", "query_terms", "term_counts", "tokens"]

TOKENIZER_VERSION: Final = 1
MAX_TOKEN_CHARS: Final = 64

_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:_+[\p{L}\p{M}\p{N}]+)*")
# a case change inside a part: lower→Upper ("pageSelection"), digit→Upper+lower ("utf8Decode"), UPPER→Upper+lower
# ("HTTPServer"); never digit→Upper alone, so part numbers such as "X7200B" stay whole
_CAMEL = regex.compile(r"(?<=\p{Ll})(?=\p{Lu})|(?<=\p{N})(?=\p{Lu}\p{Ll})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})")
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
_FOLDABLE = regex.compile(r"[\p{Latin}\p{Greek}\p{Cyrillic}]\p{Mn}+")


def _fold(part: str) -> str:
    """Case-folded, without the diacritics of Latin/Greek/Cyrillic letters."""
    decomposed = unicodedata.normalize("NFD", part.casefold())
    stripped = _FOLDABLE.sub(lambda m: m.group(0)[0], decomposed)
    return unicodedata.normalize("NFC", stripped)


def _word_tokens(word: str) -> Iterator[str]:
    if _CJK.search(word):
        for piece in regex.split(r"([\p{Han}\p{Hiragana}\p{Katakana}])", word.replace("_", " ")):
            for sub in piece.split():
                yield from _word_tokens(sub) if not _CJK.fullmatch(sub) else [sub]
        return
    parts = [_fold(p) for chunk in word.split("_") if chunk for p in _CAMEL.split(chunk) if p]
    parts = [p for p in parts if p]
    yield from parts
    if len(parts) > 1:
        yield "".join(parts)


@functools.lru_cache(maxsize=1 << 16)
def _word_tokens_kept(word: str) -> tuple[str, ...]:
    """The tokens of one word, too-long ones dropped; memoised (a pure function of the word, and words repeat:
    ~5x faster on page text than splitting and folding every occurrence)."""
    return tuple(t for t in _word_tokens(word) if len(t) <= MAX_TOKEN_CHARS)


def tokens(text: str) -> list[str]:
    """Every token of ``text``, in order, repeats kept (what is indexed; see the module rules)."""
    normal = unicodedata.normalize("NFKC", text)
    return [t for m in _WORD.finditer(normal) for t in _word_tokens_kept(m.group(0))]


def term_counts(text: str) -> Counter[str]:
    """Token -> occurrences in ``text`` (a document's term frequencies)."""
    return Counter(tokens(text))


def query_terms(text: str) -> list[str]:
    """The distinct tokens of a query, in first-seen order (what a search looks up)."""
    return list(dict.fromkeys(tokens(text)))
