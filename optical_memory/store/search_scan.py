"""The scan Redis searches with: turns' search texts in one byte buffer, ranked with numpy.

Redis keeps a thread's search texts as lines ``"<position>\\t<scan text>\\n"`` in blocks
(see :mod:`~optical_memory.store.redis_layout`). A search joins the blocks it read into one
buffer and makes no Python object per turn: lines are found with numpy, and a token's
occurrences with ``bytes.find`` (and numpy once it proves common) over the whole buffer.
A scan text has a space before and after every token
(:func:`~optical_memory.store.search.scan_text`), so ``" b"`` followed by a space is an
occurrence of the whole token ``b``; a phrase is matched the same way.

Ranking is that of :mod:`~optical_memory.store.search`: the match tier, then BM25 as
SQLite's FTS5 computes it (``k1 = 1.2``, ``b = 0.75``, IDF floored at 1e-6) over the turns
scanned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optical_memory.store.search import SearchQuery

__all__ = ["ScanTexts", "rank", "read_lines", "text_lines"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_K1 = 1.2
_B = 0.75
_MIN_IDF = 1e-6
# Positions have at most this many digits.
_MAX_DIGITS = 18
# Past this many matches, the rest of a needle's matches are located with numpy.
_FIND_LIMIT = 200
_SPACE = 32


def text_lines(texts: Mapping[int, str]) -> bytes:
    """Lines for search texts by position, in position order."""
    return "".join(f"{position}\t{texts[position]}\n" for position in sorted(texts)).encode()


def read_lines(buffer: bytes) -> tuple[Ints, Ints, Ints, npt.NDArray[np.bool_]]:
    """The lines of ``buffer`` (which ends with a newline): each one's position, where its
    text starts and ends, and whether it is well formed (one tab, after 1 to 18 digits).

    Example:
        >>> positions, starts, ends, ok = read_lines(b"7\\t a \\nbad\\n")
        >>> positions.tolist(), ok.tolist()
        ([7, 0], [True, False])
    """
    data = np.frombuffer(buffer, np.uint8)
    ends = np.flatnonzero(data == 10).astype(np.int64)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    tabs = np.flatnonzero(data == 9).astype(np.int64)
    owner = np.searchsorted(ends, tabs)
    inside = owner < len(ends)
    ok = np.bincount(owner[inside], minlength=len(ends)) == 1
    tab = np.zeros(len(ends), np.int64)
    tab[owner[inside]] = tabs[inside]
    digits = np.where(ok, tab - starts, 0)
    ok &= (digits >= 1) & (digits <= _MAX_DIGITS)
    positions = np.zeros(len(ends), np.int64)
    for place in range(int(digits.max(initial=0)) if ok.any() else 0):
        take = ok & (place < digits)
        digit = data[np.where(take, tab - 1 - place, 0)].astype(np.int64) - 48
        ok &= ~take | ((digit >= 0) & (digit <= 9))
        positions += np.where(take, digit, 0) * 10**place
    return positions, tab + 1, ends, ok


@dataclass(frozen=True, eq=False)
class ScanTexts:
    """Search texts in one buffer: text ``i`` is ``buffer[starts[i]:ends[i]]``, the turn
    at ``indexes[i]``; starts increase with ``i``."""

    buffer: bytes
    starts: Ints
    ends: Ints
    indexes: Ints

    @classmethod
    def from_lines(cls, buffer: bytes, window: range) -> tuple[ScanTexts, Ints]:
        """The texts of ``window``'s positions in a buffer of lines (a position's last line
        wins), and where the malformed lines end."""
        positions, starts, ends, ok = read_lines(buffer)
        wanted = np.flatnonzero(ok & (positions >= window.start) & (positions < window.stop))
        latest = wanted[::-1]
        _, first = np.unique(positions[latest], return_index=True)
        chosen = np.sort(latest[first])
        return cls(buffer, starts[chosen], ends[chosen], positions[chosen]), ends[~ok]

    @classmethod
    def from_texts(cls, texts: Sequence[tuple[int, str]]) -> ScanTexts:
        """From ``(index, scan text)`` pairs."""
        indexes = [index for index, _ in texts]
        window = range(min(indexes, default=0), max(indexes, default=-1) + 1)
        return cls.from_lines(text_lines(dict(texts)), window)[0]

    def __len__(self) -> int:
        return len(self.indexes)

    def text(self, index: int) -> str | None:
        """The scan text of the turn at ``index``, if it was read."""
        found = np.flatnonzero(self.indexes == index)
        if not len(found):
            return None
        i = int(found[-1])
        return self.buffer[int(self.starts[i]) : int(self.ends[i])].decode()

    def occurrences(self, tokens: Sequence[str], among: Ints | None = None) -> Floats:
        """How often ``tokens`` occur, as a phrase of whole tokens, in each text (or in each
        of the texts ``among``: their counts, in that order)."""
        needle = (" " + " ".join(tokens)).encode()
        if among is not None and len(among) <= _FIND_LIMIT * 10:
            spans = zip(self.starts[among].tolist(), self.ends[among].tolist(), strict=True)
            found = [_find_all(self.buffer, needle, start, end) for start, end in spans]
            return np.asarray([len(offsets) for offsets in found], np.float64)
        offsets = _find_all(self.buffer, needle, 0, len(self.buffer))
        text = np.searchsorted(self.starts, offsets, side="right") - 1
        inside = text >= 0
        inside[inside] = offsets[inside] < self.ends[text[inside]]
        counts = np.bincount(text[inside], minlength=len(self)).astype(np.float64)
        return counts if among is None else counts[among]

    def lengths(self, which: Ints) -> Floats:
        """Tokens in each of the texts ``which``: one fewer than its spaces."""
        spans = zip(self.starts[which].tolist(), self.ends[which].tolist(), strict=True)
        spaces = [self.buffer.count(b" ", start, end) for start, end in spans]
        return np.maximum(np.asarray(spaces, np.float64) - 1.0, 0.0)

    def average_length(self) -> float:
        """Tokens per text, from every space in the buffer (lines outside the window, a
        block's first few, count too: a small error that spares a pass per text)."""
        if not len(self):
            return 1.0
        spaces = np.count_nonzero(np.frombuffer(self.buffer, np.uint8) == _SPACE)
        return max(1.0, float(spaces - np.count_nonzero(self.ends > self.starts)) / len(self))


def rank(query: SearchQuery, texts: ScanTexts, limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` turns for ``query`` as ``(index, score)``, best first (score as
    in :mod:`~optical_memory.store.search`; ties go to the newest turn).

    Example:
        >>> from optical_memory.store.search import scan_text
        >>> texts = ScanTexts.from_texts([(0, scan_text(["a", "b"])), (1, scan_text(["b"]))])
        >>> [(i, int(s)) for i, s in rank(SearchQuery.parse("a b"), texts, 5)]
        [(0, 2)]
    """
    count = len(texts)
    if not query or not count or limit <= 0:
        return []
    terms = np.stack([texts.occurrences([term]) for term in query.terms])
    found = terms > 0
    which = np.flatnonzero(found.any(axis=0))
    if not len(which):
        return []
    terms, found = terms[:, which], found[:, which]
    every = found.all(axis=0)
    if len(query.tokens) == 1:
        phrase = terms[0]
    else:  # only a text holding every token can hold the phrase
        phrase = np.zeros(len(which), np.float64)
        phrase[every] = texts.occurrences(query.tokens, which[every])
    norm = _K1 * (1 - _B + _B * texts.lengths(which) / texts.average_length())
    frequencies = np.append(np.count_nonzero(terms, axis=1), np.count_nonzero(phrase))
    idf = np.log((count - frequencies + 0.5) / (frequencies + 0.5))
    idf = np.where(idf > 0, idf, _MIN_IDF)
    words = (idf[:-1, None] * _saturated(terms, norm)).sum(axis=0)
    as_phrase = idf[-1] * _saturated(phrase, norm)
    tier = np.where(phrase > 0, 2, np.where(every, 1, 0))
    bm25 = np.where(phrase > 0, as_phrase, words)
    score = tier + bm25 / (1.0 + bm25)
    indexes = texts.indexes[which]
    best = np.lexsort((-indexes, -score))[:limit]
    return [(int(indexes[i]), float(score[i])) for i in best]


def _find_all(buffer: bytes, needle: bytes, start: int, end: int) -> Ints:
    """Where ``needle``, followed by a space, starts in ``buffer[start:end]``: the first
    matches with ``bytes.find``, the rest (a common token) with numpy."""
    found: list[int] = []
    at = buffer.find(needle, start, end)
    while at >= 0 and len(found) < _FIND_LIMIT:
        found.append(at)
        at = buffer.find(needle, at + 1, end)  # +1: phrases like "a a" may overlap
    data = np.frombuffer(buffer, np.uint8)
    offsets = np.asarray(found, np.int64)
    if at >= 0:
        offsets = np.concatenate((offsets, at + _find_vectorised(data[at:end], needle)))
    # A match is a whole token (or phrase) only when a space follows it.
    follow = offsets + len(needle)
    whole = follow < len(buffer)
    whole[whole] = data[follow[whole]] == _SPACE
    return offsets[whole]


def _find_vectorised(data: npt.NDArray[np.uint8], needle: bytes) -> Ints:
    """Every start of ``needle`` (two bytes or more) in ``data``: two passes over it for
    the first two bytes, then a check of each further byte at the candidates only."""
    candidates = np.flatnonzero((data[:-1] == needle[0]) & (data[1:] == needle[1]))
    for place in range(2, len(needle)):
        candidates = candidates[candidates + place < len(data)]
        candidates = candidates[data[candidates + place] == needle[place]]
    return candidates.astype(np.int64)


def _saturated(occurrences: Floats, norm: Floats) -> Any:
    """BM25's term-frequency part: ``tf * (k1 + 1) / (tf + norm)``."""
    return occurrences * (_K1 + 1) / (occurrences + norm)
