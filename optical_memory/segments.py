"""Cutting old turns into segments and drawing a segment's pages (no IO here).

Segments are cut greedily from the end of the previous one: turns are added while the
segment still fits ``segment_pages`` pages (:func:`page_fill`), then it is extended over the
tool results that answer its tool calls, so a call never lands in another segment than
its result. A segment is cut only when it is full and lies wholly before the verbatim
tail. The cut therefore depends on the turns alone, and so does the segment's id (a hash
of its page style and turn ids): two processes compacting one thread at once write the
same segments, never overlapping ones.

A :class:`PageStyle` is how one kind of reader wants pages drawn: canvas, glyph size,
preset, and whether to crop the blank bottom of a page (readers that bill by area pay
less for a short page; DeepSeek-OCR pads every image to its mode's square anyway).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from optical_memory.errors import InvalidSettingError
from optical_memory.messages import answered_call_ids, tool_call_ids, turn_text
from optical_memory.policy import FORGOTTEN, LADDER_TIERS, DecayPolicy
from optical_memory.records import Page, Turn
from optical_memory.renderers import TextRenderer, Tier, decay
from optical_memory.renderers.page import FontSettings, RenderedPage
from optical_memory.renderers.presets import get_preset
from optical_memory.renderers.text import chat_transcript
from optical_memory.tokens import count_tokens

__all__ = [
    "PageStyle",
    "decay_page",
    "keep_start",
    "page_fill",
    "plan_cuts",
    "render_segment",
    "segment_id",
    "segment_transcript",
    "shown_tier",
]


@dataclass(frozen=True)
class PageStyle:
    """How pages are drawn for one kind of reader.

    Attributes:
        side: Canvas side in pixels of a fresh page (a tier's side: 1280, 1024, 640, 512).
        font_px: Glyph size of prose on a fresh page.
        preset: Renderer preset (``"dense"`` spacing or ``"legible"``).
        crop: Cut the blank bottom of the last page of a segment.
        tiers: The tiers pages take for this reader, sharpest first (its decay ladder).
    """

    side: int
    font_px: float
    preset: str = "legible"
    crop: bool = True
    tiers: tuple[str, ...] = ("base", "small", "tiny")

    def __post_init__(self) -> None:
        if not self.tiers or any(tier not in LADDER_TIERS[:-1] for tier in self.tiers):
            raise InvalidSettingError(f"a page style's tiers must be tier names: {self.tiers}")
        if self.side not in {tier.side for tier in Tier}:
            raise InvalidSettingError(f"a page style's side must be a tier's side: {self.side}")

    @property
    def top(self) -> str:
        """The tier of a fresh page."""
        return next(tier.label for tier in Tier if tier.side == self.side)

    def renderer(self) -> TextRenderer:
        """A renderer that draws pages in this style.

        Cropped pages are set in one column as wide as the page, lines 1.15 ems apart
        and no gap between turns: a reader that bills by area pays for the inked height
        only, so every blank row costs, and two columns would fill the left one to the
        bottom first, leaving nothing to cut.
        """
        preset = get_preset(self.preset)
        if self.crop:
            preset = dataclasses.replace(
                preset,
                max_column_px=self.side,
                paragraph_gap=0.0,
                latin_prose=dataclasses.replace(preset.latin_prose, line_pitch=1.15),
                latin_code=dataclasses.replace(preset.latin_code, line_pitch=1.15),
                cjk_prose=dataclasses.replace(preset.cjk_prose, line_pitch=1.15),
            )
        return TextRenderer(preset, font_size=self.font_px)

    @property
    def key(self) -> str:
        """A short stable name, stored with each segment drawn in this style."""
        return f"{self.preset}-{self.side}-{self.font_px:g}px" + ("-crop" if self.crop else "")


def shown_tier(style: PageStyle, ladder_tier: str) -> str:
    """The sharpest of the style's tiers no sharper than the ladder's (its last tier when
    the ladder goes below it); ``"forgotten"`` stays forgotten."""
    if ladder_tier == FORGOTTEN:
        return FORGOTTEN
    wanted = LADDER_TIERS.index(ladder_tier)
    for tier in style.tiers:
        if LADDER_TIERS.index(tier) >= wanted:
            return tier
    return style.tiers[-1]


# Segment ids are 15 decimal digits (50 bits): tokenizers take digits three at a time, so
# an id costs 5 text tokens in every page label and fact line, where 12 hex digits cost 12.
_ID_DIGITS = 15


def segment_id(style: PageStyle, turn_ids: Sequence[str]) -> str:
    """The deterministic id of the segment covering ``turn_ids`` in ``style``."""
    digest = hashlib.sha256("\x1f".join([style.key, *turn_ids]).encode("utf-8", "surrogatepass"))
    number = int.from_bytes(digest.digest()[:8], "big") % 10**_ID_DIGITS
    return f"{number:0{_ID_DIGITS}d}"


def keep_start(turns: Sequence[Turn], policy: DecayPolicy) -> int:
    """Index (into ``turns``) where the verbatim tail that ``policy.keep`` holds begins."""
    kind, count = policy.keep
    if kind == "messages":
        return max(0, len(turns) - count)
    total, start = 0, len(turns)
    while start > 0 and total + turns[start - 1].text_tokens <= count:
        start -= 1
        total += turns[start].text_tokens
    return start


# Page fill, in thousandths of a DeepSeek-OCR page (640 px, 10.7 px type: the tightest
# style, and the one that pays a whole page for a spilled line). Fitted by least squares
# on 135 rendered chat segments (prose, code, Chinese, tool calls; residual 3% of a page,
# worst 10%): a prose character takes 0.17, a character of code 0.13 and each code line
# 17 (short lines leave the rest blank), a Chinese character 0.40, and every paragraph or
# turn starts a new line (6.9, the part of a line it leaves blank on average).
_PROSE_CHAR = 0.170
_CODE_CHAR = 0.132
_CODE_LINE = 17.3
_CJK_CHAR = 0.403
_NEW_LINE = 6.9
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


# Outside code fences a page runs a turn's paragraphs, list items and lines on, marked with
# a pilcrow: each line break left a third of a line blank on average, a quarter of a page.
PARAGRAPH_MARK = " \u00b6 "
_LINE_BREAKS = re.compile(r"[ \t]*\n\s*")


def run_in(text: str) -> str:
    """``text`` as a page shows it: line breaks outside code fences become ``" ¶ "``; a
    fence keeps its lines and stands on lines of its own."""
    parts, last = [], 0
    for fence in _FENCE.finditer(text):
        parts.append(_LINE_BREAKS.sub(PARAGRAPH_MARK, text[last : fence.start()].strip()))
        parts.append(fence.group(0).strip("\n"))
        last = fence.end()
    parts.append(_LINE_BREAKS.sub(PARAGRAPH_MARK, text[last:].strip()))
    return "\n".join(part for part in parts if part)


def page_fill(turn: Turn) -> float:
    """How many DeepSeek-OCR pages ``turn`` takes (0.2 is a fifth of one): an estimate from
    its characters alone (not from rendering, which depends on the fonts a machine
    has), so that every process and machine cuts the same segments."""
    text = run_in(turn_text(turn))
    blocks = _FENCE.findall(text)
    code = sum(len(block) for block in blocks)
    code_lines = sum(block.count("\n") + 1 for block in blocks)
    cjk = len(_CJK.findall(text))
    prose = max(0, len(text) - code - cjk)
    paragraphs = text.count("\n") + 1 - sum(block.count("\n") for block in blocks)
    thousandths = (
        prose * _PROSE_CHAR
        + code * _CODE_CHAR
        + code_lines * _CODE_LINE
        + cjk * _CJK_CHAR
        + paragraphs * _NEW_LINE
    )
    return float(thousandths) / 1000


def plan_cuts(turns: Sequence[Turn], limit: int, segment_pages: float) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges of the full segments that fit before ``limit``.

    A segment takes turns while their :func:`page_fill` stays within ``segment_pages``
    (a turn larger than that alone makes a segment of its own); it is full when the next
    turn would not fit. Stopping short of the limit, rather than past it, keeps a segment
    on its pages: a few lines over a page would cost a DeepSeek-OCR reader a whole page.

    Args:
        turns: The turns after the last segment, in order (``turns[0]`` starts the first cut).
        limit: Segments must end at or before this index (where the kept tail starts).
        segment_pages: Most a segment holds, in DeepSeek-OCR pages (:func:`page_fill`).
    """
    cuts: list[tuple[int, int]] = []
    fills = [page_fill(turn) for turn in turns[: limit + 1]]
    start = 0
    while start < limit:
        end, fill = start, 0.0
        while end < len(fills) and (end == start or fill + fills[end] <= segment_pages):
            fill += fills[end]
            end += 1
        if end > limit or end == len(turns):
            break  # not known to be full yet: wait for more turns, so every process cuts alike
        closed = _past_tool_results(turns, start, end)
        if closed is None or closed > limit:
            break
        cuts.append((start, closed))
        start = closed
    return cuts


def _past_tool_results(turns: Sequence[Turn], start: int, end: int) -> int | None:
    """``end`` moved past the results of the segment's tool calls; ``None`` when they may
    still come (the segment's last turn calls a tool and nothing follows it yet)."""
    calls = {call for turn in turns[start:end] for call in tool_call_ids(turn)}
    while end < len(turns):
        answered = answered_call_ids(turns[end])
        if (answered and set(answered) & calls) or (turns[end].role == "tool" and not answered):
            end += 1
            continue
        return end
    return None if tool_call_ids(turns[end - 1]) else end


def _pairs(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    return [(turn.role, run_in(turn_text(turn)) or " ") for turn in turns]


def segment_transcript(turns: Sequence[Turn]) -> str:
    """The text a segment's pages show: role-labelled turns joined by blank lines
    (``Page.span`` indexes into it)."""
    return chat_transcript(_pairs(turns)).text


def render_segment(
    turns: Sequence[Turn], style: PageStyle, renderer: TextRenderer | None = None
) -> list[tuple[Page, RenderedPage]]:
    """Draw a segment's turns as fresh pages (at ``style.top``), each with its record.

    ``Page.span`` indexes into the segment's transcript (role-labelled turn texts joined
    by blank lines); ``Page.text_tokens`` counts (cl100k) the text the page shows.
    """
    renderer = renderer or style.renderer()
    transcript, rendered = renderer.render_chat(_pairs(turns), tier=style.top)
    result = []
    for number, page in enumerate(rendered):
        if style.crop and number == len(rendered) - 1:
            page = _cropped(page)
        png = _png(page.image)
        result.append(
            (
                Page(
                    png=png,
                    width=page.size[0],
                    height=page.size[1],
                    span=page.span,
                    tier=style.top,
                    text_tokens=count_tokens(page.text(transcript.text)),
                ),
                page,
            )
        )
    return result


def _cropped(page: RenderedPage) -> RenderedPage:
    """The page without its blank bottom (keeping a margin of one line)."""
    grey = np.asarray(page.image.convert("L"))
    inked = np.flatnonzero(grey.min(axis=1) < 200)
    if inked.size == 0:
        return page
    margin = max(4, round(page.font.size_px * page.font.line_pitch))
    height = min(grey.shape[0], int(inked[-1]) + 1 + margin)
    height = max(height, 2 * margin)
    return dataclasses.replace(page, image=page.image.crop((0, 0, page.image.width, height)))


def decay_page(page: Page, tier: str, font_px: float) -> Page:
    """``page`` shrunk to ``tier`` (its longer side becomes the tier's side)."""
    image = Image.open(io.BytesIO(page.png))
    image.load()
    rendered = RenderedPage(
        image=image,
        span=page.span,
        tier=Tier.coerce(page.tier),
        font=FontSettings(family="", size_px=font_px, line_pitch=1.2),
        line_count=0,
    )
    smaller = decay(rendered, tier)
    return Page(
        png=_png(smaller.image),
        width=smaller.size[0],
        height=smaller.size[1],
        span=page.span,
        tier=tier,
        text_tokens=page.text_tokens,
        legibility=None,
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(image: Image.Image) -> bytes:
    """The page as PNG: deflate level 1, rows unfiltered.

    Grey pages are written here rather than by Pillow, which tries five row filters per
    row: 4 ms a 640 px page against 7, and about 8% smaller (unfiltered anti-aliased
    text on white deflates well). Compaction writes a page for every draw and decay step.
    """
    if image.mode != "L":
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    pixels = np.asarray(image, dtype=np.uint8)
    height, width = pixels.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # a 0 byte starts each row: no filter
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
