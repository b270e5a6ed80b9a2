"""Drawing laid-out lines onto a page: a cache of word bitmaps composed with numpy.

Pillow's ``draw.text`` costs about 4 us per character, 35-40 ms for a dense 640x640
page. Words repeat, so each distinct (text, font) run is drawn once by Pillow (at the
supersampling factor, then downsampled) and kept as a small ink array; a page is then a
few hundred ``numpy.concatenate`` calls, one per line. Shaping, bidi and fallback stay
Pillow's: every run is still drawn by Pillow the first time it is seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from .layout import Entry, FontKey, Line

__all__ = ["Band", "GlyphCache"]

Ink = npt.NDArray[np.uint8]


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
        self._blank: dict[int, list[Ink]] = {}

    def table(self, key: FontKey) -> dict[str, Entry]:
        """The runs already made for font ``key``."""
        return self._tables[key]

    def entry(self, text: str, key: FontKey) -> Entry:
        """The run for ``text`` in font ``key``: drawn by Pillow the first time only."""
        table = self._tables[key]
        entry = table.get(text)
        if entry is None:
            if len(table) >= self.max_entries:
                table.clear()
            entry = self._draw(text, key)
            table[text] = entry
        return entry

    def _draw(self, text: str, key: FontKey) -> Entry:
        ss = self.supersample
        font = self.fonts[key]
        band = self.bands[key[0]]
        advance = font.getlength(text) / ss
        left, _, right, _ = font.getbbox(text, anchor="ls")
        if right <= left:
            return (advance, None, 0, text, key)
        x0 = math.floor(left / ss) * ss
        x1 = math.ceil(right / ss) * ss
        image = Image.new("L", (x1 - x0, band.height * ss), 0)
        ImageDraw.Draw(image).text((-x0, band.ascent * ss), text, fill=255, font=font, anchor="ls")
        if ss > 1:
            image = image.resize(((x1 - x0) // ss, band.height), Image.Resampling.LANCZOS)
        return (advance, np.asarray(image), x0 // ss, text, key)

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
        stray: list[tuple[Ink, int]] = []
        start = cursor = -1
        for x, (_, ink, offset, _, _) in line.runs:
            if ink is None:
                continue
            at = left + int(x + 0.5) + offset
            if cursor < 0:
                start = cursor = at
            elif at < cursor:
                stray.append((ink, at))
                continue
            elif at > cursor:
                gap = at - cursor
                parts.append(blanks[gap] if gap < 256 else np.zeros((rows, gap), np.uint8))
            parts.append(ink)
            cursor = at + ink.shape[1]
        if parts:
            _stamp(canvas, parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1), start, top)
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
