"""TextRenderer: plain text and chat transcripts onto dense, paginated page images."""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from optical_memory.errors import InvalidSettingError, RenderError

from .fonts import PLACEHOLDER, FontChain
from .layout import (
    BOLD,
    MONO,
    REGULAR,
    Line,
    LineBreaker,
    display_text,
    is_cjk,
    is_mixed_cjk,
    paginate,
    split_blocks,
)
from .page import FontSettings, RenderedPage
from .presets import Preset, Script, get_preset
from .raster import Band, GlyphCache
from .tiers import TierLike, resolve_canvas

__all__ = ["ChatTranscript", "TextRenderer", "chat_transcript", "looks_like_code"]

Kind = Literal["auto", "prose", "code"]
_CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*(def|class|import|from|return|if|elif|else|for|while|try|except|with|"
    r"const|let|var|function|fn|use|package|public|private|#include|#define)\b|"
    r"^( {4}|\t).*[=()\[\]]"
)


def looks_like_code(text: str) -> bool:
    """Guess whether ``text`` is source code rather than prose.

    True when over 40% of the non-blank lines end in ``;``/``{``/``}``, start with a
    common keyword, or are indented and hold brackets or ``=``, and lines are short.
    """
    lines = [line for line in text.splitlines()[:400] if line.strip()]
    if len(lines) < 3:
        return False
    codey = sum(1 for line in lines if _CODE_LINE.search(line))
    mean_length = sum(map(len, lines)) / len(lines)
    return codey / len(lines) > 0.4 and mean_length < 100


@dataclass(frozen=True)
class ChatTranscript:
    """A chat rendered to one string, with where each turn and role label sits.

    Attributes:
        text: The transcript; page spans index into it.
        turn_spans: ``(start, end)`` of each message in ``text``.
        label_spans: ``(start, end)`` of each role label (drawn in bold).
    """

    text: str
    turn_spans: tuple[tuple[int, int], ...]
    label_spans: tuple[tuple[int, int], ...]

    def turns_on(self, page: RenderedPage) -> range:
        """Indexes of the messages that ``page`` shows, wholly or in part."""
        start, end = page.span
        hits = [i for i, (s, e) in enumerate(self.turn_spans) if s < end and e > start]
        return range(hits[0], hits[-1] + 1) if hits else range(0)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                else:
                    parts.append(f"[{block.get('type', 'attachment')}]")
        return "\n".join(parts)
    return str(content)


def chat_transcript(messages: Sequence[Mapping[str, Any] | Sequence[str]]) -> ChatTranscript:
    """Join role-labelled turns into one transcript (``"User: ..."``, blank line between).

    Args:
        messages: Any of: dicts with ``role`` and ``content`` (OpenAI style); LangChain's
            ``message_to_dict`` data (``{"type": "human", "data": {"content": ...}}``);
            ``(role, text)`` pairs (tuples or lists). Content may be a string or a list
            of content blocks; non-text blocks show as ``[image]`` and the like.

    Returns:
        The transcript with the span of every turn and role label.

    Raises:
        InvalidSettingError: A message is of none of these shapes; the error names it.
    """
    parts: list[str] = []
    turns: list[tuple[int, int]] = []
    labels: list[tuple[int, int]] = []
    pos = 0
    for i, message in enumerate(messages):
        role, content = _role_and_text(message, i)
        label = f"{role[:1].upper()}{role[1:]}:"
        piece = f"{label} {content}"
        if i:
            parts.append("\n\n")
            pos += 2
        labels.append((pos, pos + len(label)))
        turns.append((pos, pos + len(piece)))
        parts.append(piece)
        pos += len(piece)
    return ChatTranscript("".join(parts), tuple(turns), tuple(labels))


def _role_and_text(message: Any, index: int) -> tuple[str, str]:
    if isinstance(message, Mapping):
        data = message.get("data")
        body = data if isinstance(data, Mapping) else message
        role = message.get("role") or message.get("type") or body.get("type") or "message"
        return str(role), _message_text(body.get("content", ""))
    if isinstance(message, Sequence) and not isinstance(message, str) and len(message) == 2:
        role, content = message
        if isinstance(role, str):
            return role, _message_text(content)
    raise InvalidSettingError(
        f"message {index} must be a dict with role/content, LangChain message data, or a "
        f"(role, text) pair; got {type(message).__name__}"
    )


@dataclass
class _Typesetter:
    """Fonts, caches and metrics for one preset, script and size; reused across calls."""

    preset: Preset
    script: Script
    chains: dict[int, FontChain]
    glyphs: GlyphCache
    prose_height: float
    code_height: float
    prose_size: float
    code_size: float
    mono_advance: float

    def split_faces(self, word: str, style: int) -> list[tuple[str, tuple[int, int]]]:
        """Cut ``word`` into runs, each drawn by the first face of the chain that has it."""
        if word.isascii() and word.isprintable():
            return [(word, (style, 0))]
        chain = self.chains[style]
        runs: list[list[Any]] = []
        for char in display_text(word):
            category = unicodedata.category(char)
            if category in ("Mn", "Me", "Mc", "Cf") and runs:
                # Combining marks and zero-width format characters (joiners, bidi marks)
                # stay with their base: shaping needs them, and a run's text must keep
                # the source's length for spans to stay exact.
                runs[-1][0] += char
                continue
            face = chain.face_index(char)
            if face < 0:
                char, face = PLACEHOLDER, max(chain.face_index(PLACEHOLDER), 0)
            if runs and runs[-1][1] == face:
                runs[-1][0] += char
            else:
                runs.append([char, face])
        return [(text, (style, face)) for text, face in runs]


class TextRenderer:
    """Renders plain text and chat transcripts onto square (or any) page canvases.

    Prose is reflowed to the full column width; code blocks stay monospace with their
    indentation; long unbreakable tokens and CJK text wrap anywhere; characters the
    main font lacks fall back to a CJK and a symbol font, and a character no font has
    is drawn as U+FFFD. Pages report the exact source span they show.

    Args:
        preset: ``"legible"`` (default; for hosted multimodal models), ``"dense"``
            (most text a CPU OCR engine still reads back), or a :class:`Preset`.
        font_size: Override the preset's Latin prose size in pixels (other sizes scale).

    Rendering is fast because each word is drawn once and then reused from a cache
    shared by all renderers of the process with the same preset (see
    :meth:`clear_caches`); a renderer is safe to use from several threads.

    Example:
        >>> renderer = TextRenderer(preset="dense")
        >>> pages = renderer.render("Old turns become pages. " * 2000, tier="small")
        >>> len(pages), pages[0].image.size, pages[0].span[0]
        (3, (640, 640), 0)
    """

    def __init__(self, preset: str | Preset = "legible", *, font_size: float | None = None):
        base = get_preset(preset)
        if font_size is not None:
            if not (math.isfinite(font_size) and 2 <= font_size <= 200):
                raise InvalidSettingError(
                    f"font_size must be between 2 and 200 px, got {font_size!r}"
                )
            base = base.with_size(font_size)
        self.preset = base

    def render(
        self,
        text: str,
        tier: TierLike = "small",
        *,
        size: tuple[int, int] | None = None,
        kind: Kind = "auto",
    ) -> list[RenderedPage]:
        """Render ``text`` into as many pages as it needs.

        Args:
            text: Any Unicode text. Empty or blank text gives one blank page.
            tier: Tier whose canvas to use (``"large"``, ``"base"``, ``"small"``,
                ``"tiny"``); ignored when ``size`` is given.
            size: A custom ``(width, height)`` canvas instead of a tier's.
            kind: ``"prose"`` (reflowed; fenced code kept), ``"code"`` (every line
                kept, monospace), or ``"auto"`` to guess.

        Returns:
            Pages in order; their spans cover ``text`` with no gap or overlap.

        Raises:
            RenderError: ``text`` is not a string, or no usable font was found.
            InvalidSettingError: A bad ``size`` or ``kind``, or a canvas too small for the text.
            UnknownTierError: ``tier`` names no tier.
        """
        return list(self.iter_pages(text, tier, size=size, kind=kind))

    def render_chat(
        self,
        messages: Sequence[Mapping[str, Any] | Sequence[str]],
        tier: TierLike = "small",
        *,
        size: tuple[int, int] | None = None,
    ) -> tuple[ChatTranscript, list[RenderedPage]]:
        """Render role-labelled turns; page spans index into the returned transcript.

        Role labels are drawn in bold; each turn starts on a new line.

        Args:
            messages: Turns in any shape :func:`chat_transcript` takes.
            tier: Tier whose canvas to use; ignored when ``size`` is given.
            size: A custom ``(width, height)`` canvas.

        Returns:
            The transcript (``transcript.turns_on(page)`` maps pages to turns) and pages.

        Raises:
            InvalidSettingError: A malformed message, or a bad ``size``.
        """
        transcript = chat_transcript(messages)
        pages = list(
            self.iter_pages(
                transcript.text, tier, size=size, kind="prose", bold=transcript.label_spans
            )
        )
        return transcript, pages

    def iter_pages(
        self,
        text: str,
        tier: TierLike = "small",
        *,
        size: tuple[int, int] | None = None,
        kind: Kind = "auto",
        bold: Sequence[tuple[int, int]] = (),
    ) -> Iterator[RenderedPage]:
        """Like :meth:`render`, yielding pages one at a time.

        Arguments are checked and the text laid out when this is called; pages are
        drawn as they are asked for.

        Args:
            text: Any Unicode text.
            tier: Tier whose canvas to use; ignored when ``size`` is given.
            size: A custom ``(width, height)`` canvas.
            kind: ``"prose"``, ``"code"`` or ``"auto"``.
            bold: Source spans to draw in bold (role labels of a chat transcript).
        """
        if not isinstance(text, str):
            raise RenderError(f"text must be a str, got {type(text).__name__}")
        if kind not in ("auto", "prose", "code"):
            raise InvalidSettingError(f"kind must be 'auto', 'prose' or 'code', got {kind!r}")
        page_tier, (width, height) = resolve_canvas(tier, size)
        code = kind == "code" or (kind == "auto" and looks_like_code(text))
        sample = text[:20_000]
        script: Script = "latin"
        if is_cjk(sample):
            script = "cjk_mixed" if is_mixed_cjk(sample) else "cjk"
        setter = self._typesetter(script, code)
        preset = self.preset
        margin = max(2, round(min(width, height) * preset.margin))
        inner = width - 2 * margin
        columns = max(1, math.ceil(inner / preset.max_column_px))
        gutter = 2 * margin
        if code:
            columns = max(columns, _code_columns(text, inner, gutter, setter.mono_advance))
        column_width = (inner - gutter * (columns - 1)) / columns
        if column_width < 4 * setter.prose_size:
            raise InvalidSettingError(
                f"a {width}x{height} canvas is too small for {setter.prose_size:g}px text"
            )
        breaker = LineBreaker(
            width=column_width,
            glyphs=setter.glyphs,
            split_faces=setter.split_faces,
            prose_height=setter.prose_height,
            code_height=setter.code_height,
            paragraph_gap=preset.paragraph_gap,
            word_space=None if preset.word_space is None else preset.word_space * setter.prose_size,
            bold_spans=sorted(bold),
        )
        for block in split_blocks(text, code=code):
            breaker.add(block)
        pages = paginate(breaker.lines, height - 2 * margin, columns) or [[[]]]
        font = FontSettings(
            family=setter.chains[MONO if code else REGULAR].faces[0].family,
            size_px=setter.code_size if code else setter.prose_size,
            line_pitch=preset.type_for(setter.script, "code" if code else "prose").line_pitch,
            supersample=preset.supersample,
            columns=columns,
        )
        starts = [0] + [_first_line(page).start for page in pages[1:]] + [len(text)]
        lefts = [margin + round(n * (column_width + gutter)) for n in range(columns)]

        def draw() -> Iterator[RenderedPage]:
            for index, page in enumerate(pages):
                canvas = np.zeros((height, width), dtype=np.uint8)
                for left, column in zip(lefts, page, strict=False):
                    setter.glyphs.draw_lines(canvas, column, left, margin)
                yield RenderedPage(
                    image=Image.fromarray(255 - canvas),  # 2-D uint8: greyscale "L"
                    span=(starts[index], starts[index + 1]),
                    tier=page_tier,
                    font=font,
                    line_count=sum(len(column) for column in page),
                    index=index,
                )

        return draw()

    @staticmethod
    def clear_caches() -> None:
        """Drop the glyph and word caches every renderer of this process shares.

        Rendering stays correct; the next pages are slower until the caches refill.
        """
        with _TYPESETTERS_LOCK:
            _TYPESETTERS.clear()

    def _typesetter(self, script: Script, code: bool) -> _Typesetter:
        # Shared by every renderer of the process with the same preset: the glyph and
        # word caches are what make rendering fast, so a new renderer starts warm.
        key = (self.preset, script, code)
        setter = _TYPESETTERS.get(key)
        if setter is None:
            with _TYPESETTERS_LOCK:
                setter = _TYPESETTERS.get(key)
                if setter is None:
                    setter = _build_typesetter(self.preset, script, code)
                    if len(_TYPESETTERS) >= 32:
                        _TYPESETTERS.pop(next(iter(_TYPESETTERS)), None)
                    _TYPESETTERS[key] = setter
        return setter


_TYPESETTERS: dict[tuple[Preset, Script, bool], _Typesetter] = {}
_TYPESETTERS_LOCK = threading.Lock()


def _build_typesetter(preset: Preset, script: Script, code: bool) -> _Typesetter:
    prose = preset.type_for(script, "prose")
    code_type = preset.type_for(script, "code")
    ss = preset.supersample
    chains = {
        REGULAR: FontChain.for_family(preset.family),
        BOLD: FontChain.for_family(preset.bold_family),
        MONO: FontChain.for_family(preset.mono_family),
    }
    sizes = {REGULAR: prose.size_px, BOLD: prose.size_px, MONO: code_type.size_px}
    fonts = {
        (style, i): face.load(sizes[style] * ss)
        for style, chain in chains.items()
        for i, face in enumerate(chain.faces)
    }
    bands = {style: Band(fonts[(style, 0)], ss) for style in chains}
    glyphs = GlyphCache(fonts, bands, ss)
    return _Typesetter(
        preset=preset,
        script=script,
        chains=chains,
        glyphs=glyphs,
        prose_height=prose.size_px * prose.line_pitch,
        code_height=code_type.size_px * code_type.line_pitch,
        prose_size=prose.size_px,
        code_size=code_type.size_px,
        mono_advance=glyphs.entry("M", (MONO, 0))[0],
    )


def _code_columns(text: str, inner: int, gutter: int, cell: float) -> int:
    """How many columns code can be set in with 80% of its lines unwrapped (at most 4).

    Source lines are short, so a single column leaves most of a wide page empty.
    """
    lengths = sorted(len(line.expandtabs(4)) for line in text.splitlines()[:4000])
    if not lengths:
        return 1
    needed = max(lengths[int(len(lengths) * 0.8)], 20) * cell
    return max(1, min(4, int((inner + gutter) // (needed + gutter))))


def _first_line(page: list[list[Line]]) -> Line:
    return page[0][0]
