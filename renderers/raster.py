"""Drawing laid-out lines onto a page: a cache of word bitmaps composed with numpy.

Pillow's ``draw.text`` costs about 4 us per character, 35-40 ms for a dense 640x640
page. Words repeat, so each distinct (text, font) run is drawn once by Pillow (at the
supersampling factor, then downsampled) and kept as a small ink array; a page is then a
few hundred ``numpy.concatenate`` calls, one per line. Shaping, bidi and fallback stay
Pillow's: every run is still drawn by Pillow the first time it is seen.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from .fonts import FREETYPE_LOCK
from .layout import Entry, FontKey, Line

__all__ = ["Band", "GlyphCache"]

Ink = npt.NDArray[np.uint8]
# A glyph: its advance and its ink (or None) at each quarter-pixel pen phase.
Glyph = tuple[float, list[tuple[Ink | None, int]]]
_PHASES = 4
_FAINT = 24


def _needs_no_shaping(char: str) -> bool:
    """True for characters drawn the same alone as inside a word (no shaping, no bidi)."""
    code = ord(char)
    if code < 0x0300 or 0x0370 <= code < 0x0590:  # Latin, Greek, Cyrillic, Armenian
        return True
    if 0x2000 <= code < 0x2C00 or 0x3000 <= code < 0xA000 or 0xAC00 <= code < 0xD7A4:
        # punctuation, symbols, arrows, maths; CJK; precomposed Hangul
        return unicodedata.category(char) not in ("Cf", "Mn", "Me", "Mc", "Zl", "Zp")
    return 0xFF00 <= code < 0xFFEF


class Band:
    """Vertical extent of a line's ink, shared by every run drawn at one size.

    Attributes:
        ascent: Rows above the baseline.
        height: Total rows (ascent plus descent).
    """

    def __init__(self, font: ImageFont.FreeTypeFont, supersample: int) -> None:
        ascent, descent = font.getmetrics()
        self.ascent = math.ceil(ascent / supersample)
        self.height = self.ascent + math.ceil(descent / supersample)


class GlyphCache:
    """Runs (text drawn with one font) with their advance and ink, made once and reused.

    Implements :class:`~.layout.Glyphs`.

    Args:
        fonts: Font per key, loaded at ``supersample`` times the final size.
        bands: Line band per style (the first element of a font key).
        supersample: Drawing scale; bitmaps are downsampled by it with Lanczos.
        max_entries: Bound per font; a font's cache is cleared when it is exceeded.
    """

    def __init__(
        self,
        fonts: dict[FontKey, ImageFont.FreeTypeFont],
        bands: dict[int, Band],
        supersample: int,
        max_entries: int = 100_000,
    ) -> None:
        self.fonts = fonts
        self.bands = bands
        self.supersample = supersample
        self.max_entries = max_entries
        self._tables: dict[FontKey, dict[str, Entry]] = {key: {} for key in fonts}
        self._glyphs: dict[FontKey, dict[str, Glyph | None]] = {key: {} for key in fonts}
        self._blank: dict[int, list[Ink]] = {}

    def table(self, key: FontKey) -> dict[str, Entry]:
        """The runs already made for font ``key``."""
        return self._tables[key]

    def entry(self, text: str, key: FontKey) -> Entry:
        """The run for ``text`` in font ``key``: drawn by Pillow the first time only."""
        table = self._tables[key]
        entry = table.get(text)
        if entry is None:
            with FREETYPE_LOCK:  # font objects are shared; FreeType is not thread-safe
                if len(table) >= self.max_entries:
                    table.clear()
                entry = self._draw(text, key)
                table[text] = entry
        return entry

    def _draw(self, text: str, key: FontKey) -> Entry:
        return self._compose(text, key) or self._draw_shaped(text, key)

    def _compose(self, text: str, key: FontKey) -> Entry | None:
        """Build a run from cached glyphs at quarter-pixel phases, without Pillow.

        About 10x cheaper than drawing the run, and only for scripts that need no
        shaping; returns ``None`` for anything else. Kerning is not applied.
        """
        glyphs = self._glyphs[key]
        pen = 0.0
        placed: list[tuple[int, Ink]] = []
        for char in text:
            glyph = glyphs.get(char)
            if glyph is None:
                if char in glyphs or not _needs_no_shaping(char):
                    return None
                glyph = glyphs[char] = self._draw_glyph(char, key)
                if glyph is None:
                    return None
            advance, phases = glyph
            x, phase = divmod(int(pen * _PHASES + 0.5), _PHASES)
            ink, offset = phases[phase]
            if ink is not None:
                placed.append((x + offset, ink))
            pen += advance
        if not placed:
            return (pen, None, 0, text, key)
        left = min(x for x, _ in placed)
        right = max(x + ink.shape[1] for x, ink in placed)
        word = np.zeros((placed[0][1].shape[0], right - left), dtype=np.uint8)
        for x, ink in placed:
            region = word[:, x - left : x - left + ink.shape[1]]
            np.maximum(region, ink, out=region)
        return (pen, word, left, text, key)

    def _draw_glyph(
        self, char: str, key: FontKey
    ) -> tuple[float, list[tuple[Ink | None, int]]] | None:
        try:
            phases = [self._draw_ink(char, key, phase / _PHASES) for phase in range(_PHASES)]
        except (OSError, ValueError, RuntimeError):
            return None
        return self.fonts[key].getlength(char) / self.supersample, phases

    def _draw_shaped(self, text: str, key: FontKey) -> Entry:
        advance = self.fonts[key].getlength(text) / self.supersample
        ink, offset = self._draw_ink(text, key, 0.0)
        return (advance, ink, offset, text, key)

    def _draw_ink(self, text: str, key: FontKey, shift: float) -> tuple[Ink | None, int]:
        """Draw ``text`` with its pen ``shift`` pixels right of the origin; crop to ink."""
        ss = self.supersample
        font = self.fonts[key]
        band = self.bands[key[0]]
        left, _, right, _ = font.getbbox(text, anchor="ls")
        if right <= left:
            return None, 0
        shift *= ss
        # Whole final pixels around the ink, one spare on each side for the filter.
        x0 = (math.floor((left + shift) / ss) - 1) * ss
        x1 = (math.ceil((right + shift) / ss) + 1) * ss
        image = Image.new("L", (x1 - x0, band.height * ss), 0)
        ImageDraw.Draw(image).text(
            (shift - x0, band.ascent * ss), text, fill=255, font=font, anchor="ls"
        )
        if ss > 1:
            image = image.resize(((x1 - x0) // ss, band.height), Image.Resampling.LANCZOS)
        ink = np.asarray(image)
        # Columns of faint filter ringing are dropped: invisible, and they would make
        # neighbouring words overlap and take the slow path in _draw_line.
        columns = np.flatnonzero(ink.max(axis=0) >= _FAINT)
        if columns.size == 0:
            return None, 0
        first, last = int(columns[0]), int(columns[-1]) + 1
        return np.ascontiguousarray(ink[:, first:last]), x0 // ss + first

    def _blanks(self, rows: int) -> list[Ink]:
        blanks = self._blank.get(rows)
        if blanks is None:
            blanks = [np.zeros((rows, n), dtype=np.uint8) for n in range(256)]
            self._blank[rows] = blanks
        return blanks

    def draw_lines(self, canvas: Ink, lines: Iterable[Line], left: int, top: float) -> None:
        """Draw ``lines`` top to bottom into ``canvas`` (ink: 0 paper, 255 full ink)."""
        y = top
        first = True
        for line in lines:
            if not first:
                y += line.gap_before
            first = False
            if line.runs:
                self._draw_line(canvas, line, left, y)
            y += line.height

    def _draw_line(self, canvas: Ink, line: Line, left: int, y: float) -> None:
        # One concatenate per line: word inks separated by blank gaps. Runs that would
        # overlap their left neighbour (kerning, overhangs) are added separately.
        rows = self.bands[line.runs[0][1][4][0]].height
        top = round(y + (line.height - rows) / 2)
        blanks = self._blanks(rows)
        parts: list[Ink] = []
        append = parts.append
        stray: list[tuple[Ink, int]] = []
        start = cursor = -1
        origin = left + 0.5
        for x, entry in line.runs:
            ink = entry[1]
            if ink is None:
                continue
            at = int(x + origin) + entry[2]
            if cursor < 0:
                start = cursor = at
            elif at > cursor:
                gap = at - cursor
                append(blanks[gap] if gap < 256 else np.zeros((rows, gap), np.uint8))
            elif at < cursor:
                stray.append((ink, at))
                continue
            append(ink)
            cursor = at + ink.shape[1]
        if parts:
            _stamp(
                canvas, parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1), start, top
            )
        for ink, at in stray:
            _stamp(canvas, ink, at, top)


def _stamp(canvas: Ink, ink: Ink, x: int, y: int) -> None:
    """Add ``ink`` into ``canvas`` at (x, y), clipped to the canvas."""
    height, width = canvas.shape
    rows, cols = ink.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + cols, width), min(y + rows, height)
    if x0 >= x1 or y0 >= y1:
        return
    region = canvas[y0:y1, x0:x1]
    np.maximum(region, ink[y0 - y : y1 - y, x0 - x : x1 - x], out=region)
