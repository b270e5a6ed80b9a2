"""Breaking source text into lines of positioned runs, and lines into pages.

The layout is pure arithmetic over advance widths supplied by the caller, so it can be
tested without drawing. Every line remembers the source offset it starts at; a page's
span runs from its first line's start to the next page's first line's start, so the
spans of a render cover the source with no gap or overlap.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BOLD",
    "MONO",
    "REGULAR",
    "Block",
    "Entry",
    "FontKey",
    "Glyphs",
    "Line",
    "LineBreaker",
    "Run",
    "display_text",
    "is_cjk",
    "is_mixed_cjk",
    "paginate",
    "split_blocks",
]

# Styles a run can have; each maps to a font chain in the renderer.
REGULAR, BOLD, MONO = 0, 1, 2

_NEWLINE = re.compile(r"\r\n|[\n\r\u2028\u2029\x85]")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
# A line starting like this begins a new visual line instead of joining the previous one.
_BLOCK_START = re.compile(r"^\s*([-*+•]\s|\d{1,3}[.)]\s|#{1,6}\s|>|\||[A-Za-z][\w ]{0,30}:\s)")
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f"
    "\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f"
)
_ATOM = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
# Ideographs, kana and hangul syllables: the CJK letters, without punctuation.
_CJK_LETTER = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# Below this share of CJK letters CJK text counts as mixed: Chinese prose with a few Latin
# words is 0.83-0.91 in our corpus, technical writing and chat with tables 0.23-0.71.
_MIXED_CJK_SHARE = 0.75
_RTL_CLASSES = frozenset({"R", "AL"})
_TAB_COLUMNS = 4
_SPACE_LIKE_CONTROLS = re.compile("[\x0b\x0c\x1c-\x1f]")
_CODE_TOKEN = re.compile(r"[^ \t]+|\t| +")


def is_cjk(text: str) -> bool:
    """True when CJK characters make up more than 30% of the non-space characters."""
    visible = len(text) - sum(map(str.isspace, text))
    return visible > 0 and len(_CJK_CHAR.findall(text)) / visible > 0.3


def is_mixed_cjk(text: str) -> bool:
    """True for CJK text in which CJK letters are under 75% of the non-space characters.

    Technical writing and chat mix in Latin words, numbers and Markdown tables; set at
    the size of CJK prose they read back several points worse (``|``, ``:`` and Latin
    words next to 8 px ideographs), so presets can give them a size of their own.
    """
    visible = len(text) - sum(map(str.isspace, text))
    return is_cjk(text) and len(_CJK_LETTER.findall(text)) < _MIXED_CJK_SHARE * visible


@dataclass(frozen=True)
class Block:
    """A run of source text set one way: a prose paragraph or one code line.

    Attributes:
        start: Source offset of the block's first character.
        text: The block's source text (soft line breaks included, for prose).
        code: Set in monospace with line breaks and indentation kept.
        gap_before: Start with a paragraph gap.
    """

    start: int
    text: str
    code: bool
    gap_before: bool = False


def split_blocks(text: str, *, code: bool = False) -> list[Block]:
    """Cut source text into prose paragraphs and code lines.

    Prose is reflowed: a single line break inside a paragraph becomes a space, unless the
    next line starts a list item, heading, quote, table row or a ``Label:`` line. A blank
    line ends a paragraph. Fenced code blocks (and the whole text when ``code`` is set)
    keep every line as it is.
    """
    blocks: list[Block] = []
    in_fence = code
    para_start = -1
    para_end = 0
    gap = False
    pos = 0
    for match in [*_NEWLINE.finditer(text), None]:
        end = match.start() if match else len(text)
        line = text[pos:end]
        next_pos = match.end() if match else len(text)
        fence = not code and _FENCE.match(line) is not None
        if in_fence or fence:
            if para_start >= 0:
                blocks.append(Block(para_start, text[para_start:para_end], False, gap))
                para_start, gap = -1, False
            blocks.append(Block(pos, line, True, gap))
            gap = False
            if fence:
                in_fence = not in_fence
        elif not line.strip():
            if para_start >= 0:
                blocks.append(Block(para_start, text[para_start:para_end], False, gap))
                para_start = -1
            gap = bool(blocks)
        else:
            if para_start >= 0 and _BLOCK_START.match(line):
                blocks.append(Block(para_start, text[para_start:para_end], False, gap))
                para_start, gap = -1, False
            if para_start < 0:
                para_start = pos
            para_end = end
        pos = next_pos
    if para_start >= 0:
        blocks.append(Block(para_start, text[para_start:para_end], False, gap))
    return blocks


def display_text(text: str) -> str:
    """Map characters that would draw nothing to visible stand-ins.

    C0 controls become Unicode control pictures (``\\x1b`` -> ``␛``), DEL becomes ``␡``,
    C1 controls and lone surrogates become U+FFFD. Format characters (zero-width joiners,
    bidi marks, soft hyphens) are left alone: they legitimately draw nothing.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("\u2421")
        elif 0x80 <= code < 0xA0 or 0xD800 <= code < 0xE000:
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


class Glyphs(Protocol):
    """What line breaking needs from the font side: cached runs with their widths."""

    def entry(self, text: str, key: FontKey) -> Entry:
        """The cached run for ``text`` drawn with font ``key``."""
        ...

    def table(self, key: FontKey) -> dict[str, Entry]:
        """The cache of runs already made for font ``key`` (read-only use)."""
        ...


FontKey = tuple[int, int]
# A cached run: (advance width, ink bitmap or None, ink offset from the pen, text, font key).
Entry = tuple[float, Any, int, str, FontKey]
# A run placed on a line: (pen x from the column's left edge, entry).
Run = tuple[float, Entry]
Splitter = Callable[[str, int], list[tuple[str, FontKey]]]


class Line:
    """One visual line: where its source starts, its height and its runs."""

    __slots__ = ("gap_before", "height", "runs", "start")

    def __init__(self, start: int, height: float, gap_before: float = 0.0) -> None:
        self.start = start
        self.height = height
        self.gap_before = gap_before
        self.runs: list[Run] = []


class LineBreaker:
    """Greedy line breaking of blocks into lines of one column width.

    Args:
        width: Column width in pixels.
        glyphs: Source of cached runs and their advance widths.
        split_faces: Cuts a word into runs per font face for a style.
        prose_height: Line height of prose in pixels.
        code_height: Line height of code in pixels.
        paragraph_gap: Extra space before a paragraph, in prose lines.
        word_space: Width of the space between words in pixels (default: the font's).
        bold_spans: Sorted, non-overlapping source spans drawn in bold.
    """

    def __init__(
        self,
        *,
        width: float,
        glyphs: Glyphs,
        split_faces: Splitter,
        prose_height: float,
        code_height: float,
        paragraph_gap: float = 0.0,
        word_space: float | None = None,
        bold_spans: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.width = width
        self.glyphs = glyphs
        self.split_faces = split_faces
        self.prose_height = prose_height
        self.code_height = code_height
        self.paragraph_gap = paragraph_gap
        self.bold_spans = bold_spans
        self._bold_starts = [s for s, _ in bold_spans]
        self.space = word_space if word_space is not None else glyphs.entry(" ", (REGULAR, 0))[0]
        self.cell = glyphs.entry("M", (MONO, 0))[0]
        self.lines: list[Line] = []

    def add(self, block: Block) -> None:
        """Lay out one block, appending its lines."""
        gap = self.paragraph_gap * self.prose_height if block.gap_before else 0.0
        if block.code:
            self._add_code(block, gap)
        else:
            self._add_prose(block, gap)

    def _style(self, offset: int) -> int:
        i = bisect_right(self._bold_starts, offset) - 1
        return BOLD if i >= 0 and offset < self.bold_spans[i][1] else REGULAR

    def _pieces(self, word: str, style: int) -> list[Entry]:
        entry = self.glyphs.entry
        return [entry(piece, key) for piece, key in self.split_faces(word, style)]

    def _add_prose(self, block: Block, gap: float) -> None:
        # The hot loop of the renderer: plain words of the regular style take one dict
        # lookup each; anything else goes through font-face splitting.
        text = block.text
        if _SPACE_LIKE_CONTROLS.search(text):
            # str.split() and \s count these as spaces; draw them as symbols instead.
            text = _SPACE_LIKE_CONTROLS.sub(lambda m: chr(0x2400 + ord(m.group())), text)
        width, space = self.width, self.space
        fast = self.glyphs.table((REGULAR, 0)).get
        line = Line(block.start, self.prose_height, gap)
        runs = line.runs
        x = 0.0
        rtl = False
        bold = bool(self.bold_spans)
        for word, offset, joined in _atoms(text, block.start):
            entry = None if bold else fast(word)
            if entry is not None:
                w = entry[0]
                pieces = None
            else:
                pieces = self._pieces(word, self._style(offset) if bold else REGULAR)
                w = sum(p[0] for p in pieces)
            word_rtl = not word.isascii() and _is_rtl(word)
            step = 0.0 if joined or not runs else space
            if x + step + w > width and runs:
                self._finish(line, rtl)
                line = Line(offset, self.prose_height)
                runs = line.runs
                x, step, rtl = 0.0, 0.0, False
            rtl = rtl or word_rtl
            x += step
            if pieces is None:
                runs.append((x, entry))  # type: ignore[arg-type]
                x += w
            elif w > width:
                line, x = self._split_long(pieces, offset, line, x)
                runs = line.runs
            else:
                for piece in pieces:
                    runs.append((x, piece))
                    x += piece[0]
        self._finish(line, rtl)

    def _split_long(
        self, pieces: list[Entry], offset: int, line: Line, x: float
    ) -> tuple[Line, float]:
        """Break a word wider than the column anywhere, filling each line.

        Returns the line still open after the word and the pen position on it.
        """
        entry = self.glyphs.entry
        for piece in pieces:
            rest, key = piece[3], piece[4]
            while rest:
                n = _fit(rest, key, self.width - x, entry)
                if n == 0 and line.runs:
                    self._finish(line, False)
                    line, x = Line(offset, self.prose_height), 0.0
                    continue
                n = max(n, 1)  # a single glyph wider than the column: draw it anyway
                chunk = entry(rest[:n], key)
                line.runs.append((x, chunk))
                x += chunk[0]
                offset += n
                rest = rest[n:]
        return line, x

    def _add_code(self, block: Block, gap: float) -> None:
        line = Line(block.start, self.code_height, gap)
        col = 0
        cell = self.cell
        max_cols = max(1, int(self.width // cell))
        entry = self.glyphs.entry
        for match in _CODE_TOKEN.finditer(block.text):
            token = match.group()
            if token == "\t":
                col += _TAB_COLUMNS - col % _TAB_COLUMNS
                continue
            if token[0] == " ":
                col += len(token)
                continue
            offset = block.start + match.start()
            for piece, key in self.split_faces(token, MONO):
                rest = piece
                while rest:
                    if col >= max_cols:
                        self._finish(line, False)
                        line = Line(offset, self.code_height)
                        col = 0
                    if rest.isascii():
                        n = min(len(rest), max_cols - col)
                    else:
                        n = max(1, _fit(rest, key, (max_cols - col) * cell, entry))
                    chunk = entry(rest[:n], key)
                    line.runs.append((col * cell, chunk))
                    col += n if rest.isascii() else max(n, round(chunk[0] / cell))
                    offset += n
                    rest = rest[n:]
        self._finish(line, any(_is_rtl(run[1][3]) for run in line.runs))

    def _finish(self, line: Line, rtl: bool) -> None:
        if rtl:
            _reorder_bidi(line, self.width)
        self.lines.append(line)


def _atoms(text: str, start: int) -> Iterator[tuple[str, int, bool]]:
    """Words of a paragraph with their source offsets and whether they join the previous one.

    CJK characters are atoms of their own that join their neighbours (no space between).
    Text of words separated by single whitespace characters, the common case, takes a
    fast path that needs no regular expression.
    """
    words = text.split()
    if len(text) == sum(map(len, words)) + len(words) - 1 and not _CJK_CHAR.search(text):
        pos = start
        for word in words:
            yield word, pos, False
            pos += len(word) + 1
        return
    prev_end = -1
    for match in _ATOM.finditer(text):
        begin, end = match.span()
        yield match.group(), start + begin, begin == prev_end
        prev_end = end


def _fit(text: str, key: FontKey, room: float, entry: Callable[[str, FontKey], Entry]) -> int:
    """How many leading characters of ``text`` fit in ``room`` pixels.

    Sums per-character advances (cached per glyph, kerning ignored), so breaking a
    token of any length stays linear in the part that is placed.
    """
    total = 0.0
    for count, char in enumerate(text):
        total += entry(char, key)[0]
        if total > room:
            return count
    return len(text)


def _is_rtl(text: str) -> bool:
    return not text.isascii() and any(unicodedata.bidirectional(c) in _RTL_CLASSES for c in text)


def _reorder_bidi(line: Line, width: float) -> None:
    """Put the runs of a line in visual order (a simplified Unicode bidi algorithm).

    A line whose first strong character is right-to-left is set from the right edge;
    runs of the other direction inside it keep their own order. Each run's glyphs are
    shaped and ordered by the font engine.
    """
    runs = line.runs
    first_strong = next(
        (
            unicodedata.bidirectional(c)
            for _, entry in runs
            for c in entry[3]
            if unicodedata.bidirectional(c) in ("L", "R", "AL")
        ),
        "L",
    )
    base_rtl = first_strong in _RTL_CLASSES
    groups: list[list[Run]] = []
    for run in runs:
        rtl = _is_rtl(run[1][3])
        if groups and _is_rtl(groups[-1][0][1][3]) == rtl:
            groups[-1].append(run)
        else:
            groups.append([run])
    if base_rtl:
        groups.reverse()
    ordered = [
        run for group in groups for run in (reversed(group) if _is_rtl(group[0][1][3]) else group)
    ]
    # Keep the original gaps between runs, in visual order.
    gaps = [0.0] + [b[0] - (a[0] + a[1][0]) for a, b in itertools.pairwise(runs)]
    used = sum(run[1][0] for run in runs) + sum(gaps)
    x = width - used if base_rtl else 0.0
    placed: list[Run] = []
    for (_, entry), gap in zip(ordered, gaps, strict=False):
        x += gap
        placed.append((x, entry))
        x += entry[0]
    line.runs = placed


def paginate(lines: list[Line], column_height: float, columns: int) -> list[list[list[Line]]]:
    """Group lines into pages of ``columns`` columns each at most ``column_height`` tall.

    A paragraph gap at the top of a column is dropped. Every page holds at least one
    line, so a line taller than a column still lands somewhere.
    """
    pages: list[list[list[Line]]] = []
    column: list[Line] = []
    used = 0.0
    page: list[list[Line]] = []
    for line in lines:
        need = line.height + (line.gap_before if column else 0.0)
        if column and used + need > column_height:
            page.append(column)
            if len(page) == columns:
                pages.append(page)
                page = []
            column, used = [], 0.0
            need = line.height
        column.append(line)
        used += need
    if column:
        page.append(column)
    if page:
        pages.append(page)
    return pages
