"""Cutting old turns into segments and drawing a segment's pages (no IO here).

Segments are cut greedily from the end of the previous one: turns are added until the
segment holds ``segment_tokens`` text tokens, then the segment is extended over the
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
from optical_memory.renderers.text import chat_transcript
from optical_memory.tokens import count_tokens

__all__ = [
    "PageStyle",
    "decay_page",
    "keep_start",
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


def segment_id(style: PageStyle, turn_ids: Sequence[str]) -> str:
    """The deterministic id of the segment covering ``turn_ids`` in ``style``."""
    digest = hashlib.sha256("\x1f".join([style.key, *turn_ids]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:12]


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


def plan_cuts(turns: Sequence[Turn], limit: int, segment_tokens: int) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges of the full segments that fit before ``limit``.

    Args:
        turns: The turns after the last segment, in order (``turns[0]`` starts the first cut).
        limit: Segments must end at or before this index (where the kept tail starts).
        segment_tokens: Text tokens that fill a segment.
    """
    cuts: list[tuple[int, int]] = []
    start = 0
    while start < limit:
        end, tokens = start, 0
        while end < limit and tokens < segment_tokens:
            tokens += max(1, turns[end].text_tokens)
            end += 1
        if tokens < segment_tokens:
            break  # not full yet: wait for more turns, so every process cuts alike
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
    return [(turn.role, turn_text(turn) or " ") for turn in turns]


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
    renderer = renderer or TextRenderer(style.preset, font_size=style.font_px)
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


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
