"""Lexical search over a thread's turns: the tokens, the query and the ranking both stores share.

A turn is searched by the text a page shows of it (:func:`~optical_memory.messages.turn_text`:
its content, then one line per tool call it makes). That text becomes a list of *search
tokens*, the same way for the turns and for the query, on every backend:

- case folded (``"Straße"`` and ``"STRASSE"`` match), compatibility forms unified
  (full-width ``"ＡＢＣ"`` is ``"abc"``), accents removed (``"café"`` matches ``"cafe"``,
  Hebrew points and Arabic harakat too);
- split on everything but letters and digits (``"INV-2024_07"`` is ``inv 2024 07``), so
  punctuation, operators and quotes in a query are never syntax;
- every Han, kana and Hangul character a token of its own, so Chinese, Japanese and
  Korean, written without spaces, match on any run of characters (a query ``"记忆"``
  finds ``"光学记忆系统"``). Thai, Lao, Khmer and Burmese are not segmented, and other
  combining vowel signs (Devanagari's, for instance) split a word, the same way in the
  turns and in the query.

Ranking, highest score first, then newest turn first: the score's integer part is the
match *tier*, 2 when the query's tokens occur as one phrase (in order, adjacent), 1 when
every token occurs, 0 when some do; its fraction is BM25 relevance (``k1 = 1.2``,
``b = 0.75``, FTS5's formula) squashed into ``[0, 1)`` by ``s / (1 + s)``. Exact tokens
only: no stemming and no prefixes (``"deploy"`` does not find ``"deployment"``).

Backends differ in what the BM25 statistics count: how many turns hold a token is counted
in the thread on SQLite and in the scanned turns (the newest :data:`SEARCH_WINDOW`) on
Redis; the number of turns and their average length in the whole file on SQLite, in the
scanned turns on Redis. Match tiers, and so which turns rank above which tier, are the
same on both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from optical_memory.errors import InvalidRecordError
from optical_memory.messages import turn_text
from optical_memory.records import Turn

__all__ = [
    "MAX_QUERY_TOKENS",
    "SEARCH_WINDOW",
    "SearchQuery",
    "TurnHit",
    "check_search",
    "relevance",
    "scan_text",
    "search_tokens",
    "turn_tokens",
]

# Redis scans this many of a thread's newest turns (SQLite's index covers every turn).
SEARCH_WINDOW = 20_000
# Tokens of a query beyond this many are ignored (a pasted page is not a query).
MAX_QUERY_TOKENS = 32

# Scripts written without spaces between words: each character is a token.
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3005-\u3007\u3021-\u3029\u3038-\u303c"  # ideographic iteration marks and numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"  # Bopomofo, Hangul compatibility Jamo, ...
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs (and extension A)
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul syllables and Jamo extensions
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana (NFKC makes them full width first)
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
# A CJK character alone, or a run of other letters and digits ([^\W_]: a word character
# that is not an underscore; underscores separate, as in SQLite's unicode61).
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
# Dropped after compatibility decomposition: combining accents ("é" -> "e" + U+0301 -> "e"),
# Hebrew points and Arabic harakat (so vowelled and plain spellings match).
_ACCENTS = re.compile(
    "[\u0300-\u036f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670]+"
)


@dataclass(frozen=True)
class TurnHit:
    """One turn a search found: its index in the thread, the turn, and its score (higher
    is better; see the module docstring)."""

    index: int
    turn: Turn
    score: float


def search_tokens(text: str) -> list[str]:
    """The search tokens of ``text`` (see the module docstring).

    Example:
        >>> search_tokens("Café-Straße: 光学记忆 v2_final")
        ['cafe', 'strasse', '光', '学', '记', '忆', 'v2', 'final']
    """
    # Decomposed before folding too: "𝐀" is "A" only once decomposed.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    plain = unicodedata.normalize("NFC", _ACCENTS.sub("", folded))
    return _TOKEN.findall(plain)


def turn_tokens(turn: Turn) -> list[str]:
    """The search tokens of what a page shows of ``turn`` (its text and tool calls)."""
    return search_tokens(turn_text(turn))


def check_search(query: object, limit: object) -> None:
    """Validate ``search_turns`` arguments.

    Raises:
        InvalidRecordError: ``query`` is not a str or ``limit`` not an int >= 0.
    """
    if not isinstance(query, str):
        raise InvalidRecordError(f"a search query must be a str, got {type(query).__name__}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidRecordError(f"a search limit must be an int >= 0, got {limit!r}")


def _quoted(tokens: Sequence[str]) -> str:
    """An FTS5 string: one phrase of ``tokens``, quotes doubled (tokens hold none anyway)."""
    return '"' + " ".join(tokens).replace('"', '""') + '"'


@dataclass(frozen=True)
class SearchQuery:
    """A query's tokens, and the FTS5 expressions SQLite runs for them (the Redis scan is
    in :mod:`~optical_memory.store.search_scan`).

    Attributes:
        tokens: The query's search tokens, at most :data:`MAX_QUERY_TOKENS`.
        terms: The distinct tokens, in order of first appearance.
    """

    tokens: tuple[str, ...]
    terms: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SearchQuery:
        tokens = tuple(search_tokens(text)[:MAX_QUERY_TOKENS])
        return cls(tokens, tuple(dict.fromkeys(tokens)))

    def __bool__(self) -> bool:
        return bool(self.tokens)

    # -- SQLite: one FTS5 expression per tier, best tier first ----------------------------

    def fts_tiers(self, prefix: str = "") -> list[tuple[int, str]]:
        """``(tier, FTS5 expression)`` to run in order, each token written with ``prefix``
        (the thread's, on SQLite); a tier's expression also matches the turns of the tiers
        above it (the caller skips those)."""
        tokens = [prefix + token for token in self.tokens]
        terms = [_quoted([prefix + term]) for term in self.terms]
        tiers = [(2, _quoted(tokens))]
        if len(tokens) > 1:
            tiers.append((1, "(" + " AND ".join(terms) + ")"))
        if len(terms) > 1:
            tiers.append((0, "(" + " OR ".join(terms) + ")"))
        return tiers


def scan_text(tokens: Sequence[str]) -> str:
    """Tokens as the Redis scan reads them: ``" a b c "``, a space before and after each."""
    return " " + " ".join(tokens) + " " if tokens else ""


def relevance(bm25: float) -> float:
    """BM25 relevance (>= 0; FTS5 reports it negated) as a fraction in ``[0, 1)``."""
    value = abs(bm25)
    return value / (1.0 + value)
