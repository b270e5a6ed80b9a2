"""What ``OpticalMemory.context`` returns: parts in conversation order, and provider messages.

An :class:`OpticalContext` holds, oldest first: older segments as page images (or as
their verbatim text where the reader takes no images or text is cheaper), the fact sheet,
then the recent turns verbatim. ``to_openai()`` and ``to_anthropic()`` turn it into the
message lists those SDKs take, with base64 PNG image blocks each labelled with the id of
the segment it shows, so a model (or a tool) can ask for that segment back.
``to_deepseek()`` gives DeepSeek-OCR's prompt and the pages' cached vision tokens (see
:mod:`optical_memory.deepseek_context`).
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from optical_memory.messages import openai_message, turn_text
from optical_memory.records import Turn, VisionTokens

if TYPE_CHECKING:
    from optical_memory.deepseek_context import DeepSeekPrompt

__all__ = ["ContextPage", "ContextPart", "OpticalContext", "PartKind", "page_label"]

PartKind = Literal["page", "text", "facts", "turn"]

MEMORY_PREAMBLE = (
    "Earlier turns of this conversation, oldest first, as page images (older pages are "
    "smaller and blurrier) and text. Each page is labelled with its segment id; the "
    "verbatim text of a segment can be recalled by that id."
)
FACTS_HEADING = "Exact values from earlier turns (by segment):"
IMAGE_MARKER = "<image>"


def page_label(segment_id: str, number: int = 1, count: int = 1) -> str:
    """The short text shown before a page image (and a segment's text):
    ``segment 483920571038465 p1/2``; 7 tokens for one page."""
    return f"segment {segment_id}" + (f" p{number}/{count}" if count > 1 else "")


@dataclass(frozen=True, eq=False)
class ContextPage:
    """One page image in a context.

    Attributes:
        png: The PNG bytes, as stored.
        page_id: The page's content id.
        segment_id: The segment the page shows part of.
        tier: Its current tier.
        turn_ids: The ids of the segment's turns.
        image_tokens: What the page costs the context's reader.
        width, height: Pixel size.
        label: The text shown before the image.
        detail: The OpenAI ``detail`` the page is priced at (``"low"`` for a page that fits
            a 512 px square, which low detail sees whole at the base price), else ``None``.
        vision_tokens: Its DeepSeek-OCR vision tokens, when the context was made for a
            DeepSeek-OCR reader by a memory with an encoder.
    """

    png: bytes
    page_id: str
    segment_id: str
    tier: str
    turn_ids: tuple[str, ...]
    image_tokens: int
    width: int
    height: int
    label: str
    vision_tokens: VisionTokens | None = None
    detail: Literal["high", "low"] | None = None

    @functools.cached_property
    def image(self) -> Image.Image:
        """The page decoded as a PIL image (on first access)."""
        image = Image.open(io.BytesIO(self.png))
        image.load()
        return image

    def base64(self) -> str:
        """The PNG bytes in base64, as image blocks carry them."""
        return base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class ContextPart:
    """One part of a context, in conversation order.

    ``kind`` is ``"page"`` (``page`` set), ``"text"`` (a segment shown as its verbatim
    transcript in ``text``), ``"facts"`` (the fact sheet in ``text``) or ``"turn"`` (a recent
    turn, verbatim, in ``turn``). ``tokens`` is what the part costs the reader.
    """

    kind: PartKind
    tokens: int
    segment_id: str = ""
    turn_ids: tuple[str, ...] = ()
    text: str = ""
    page: ContextPage | None = None
    turn: Turn | None = None


@dataclass(frozen=True)
class OpticalContext:
    """A thread's memory, fitted to one reader's token budget.

    Attributes:
        thread: The thread.
        reader: The reader profile's name.
        budget: The budget it was fitted to (``None``: no limit).
        parts: Everything shown, oldest first.
        dropped: Ids of segments left out for the budget (the oldest).
        dropped_turns: Ids of unsegmented recent turns left out for the budget.
        forgotten: Ids of segments past the decay ladder's end.
        tokens: What the context costs the reader: its parts and ``frame_tokens``.
        raw_tokens: What the same turns would cost the reader as text.
        frame_tokens: What the message holding the pages and fact sheet costs on its own
            (its framing and the preamble ``to_openai()`` and the others open it with).
    """

    thread: str
    reader: str
    budget: int | None
    parts: tuple[ContextPart, ...]
    dropped: tuple[str, ...] = ()
    dropped_turns: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()
    tokens: int = 0
    raw_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    frame_tokens: int = 0

    @property
    def turns(self) -> list[Turn]:
        """The recent turns it holds verbatim, oldest first."""
        return [part.turn for part in self.parts if part.turn is not None]

    @property
    def pages(self) -> list[ContextPage]:
        """Its page images, oldest first."""
        return [part.page for part in self.parts if part.page is not None]

    @property
    def facts(self) -> str:
        """The fact sheet as shown ("" when there is none)."""
        return next((part.text for part in self.parts if part.kind == "facts"), "")

    @property
    def ratio(self) -> float:
        """``tokens / raw_tokens`` (1.0 for an empty context)."""
        return self.tokens / self.raw_tokens if self.raw_tokens else 1.0

    def _memory_parts(self) -> list[ContextPart]:
        return [part for part in self.parts if part.kind != "turn"]

    def _memory_message(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The user message holding the memory's blocks, opened by the preamble (none when
        there are no blocks)."""
        if not blocks:
            return []
        preamble = [{"type": "text", "text": text} for text in self._preamble()]
        return [{"role": "user", "content": [*preamble, *blocks]}]

    def _preamble(self) -> list[str]:
        """The preamble, when the memory shows pages or a fact sheet (segments shown only
        as their text need no explaining)."""
        framed = any(part.kind in ("page", "facts") for part in self.parts)
        return [MEMORY_PREAMBLE] if framed else []

    def to_openai(
        self, *, detail: Literal["high", "low", "auto"] | None = None
    ) -> list[dict[str, Any]]:
        """OpenAI chat messages: one user message holding the pages, segment texts and fact
        sheet (image blocks as base64 PNG data URLs), then the recent turns.

        Args:
            detail: The ``detail`` of every image block; ``None`` (the default) sends each
                page at the detail its reader priced it at (``"high"``, or ``"low"`` for
                pages that fit a 512 px square on the ``openai`` reader).
        """
        blocks: list[dict[str, Any]] = []
        for part in self._memory_parts():
            if part.page is not None:
                blocks.append({"type": "text", "text": part.page.label})
                url = "data:image/png;base64," + part.page.base64()
                shown = detail or part.page.detail or "high"
                blocks.append({"type": "image_url", "image_url": {"url": url, "detail": shown}})
            else:
                blocks.append({"type": "text", "text": part.text})
        messages = self._memory_message(blocks)
        messages.extend(openai_message(turn) for turn in self.turns)
        return messages

    def to_anthropic(self, *, cache_control: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Anthropic Messages API messages: the memory as one user message of text and
        base64 PNG image blocks, then the recent turns (tool exchanges as plain text, and
        system turns as user text: the API takes the system prompt apart).

        Args:
            cache_control: Page ids to mark with ``cache_control: ephemeral`` (pages that
                did not change since the last call keep the provider's prompt cache warm).
        """
        marked = set(cache_control)
        blocks: list[dict[str, Any]] = []
        for part in self._memory_parts():
            if part.page is not None:
                blocks.append({"type": "text", "text": part.page.label})
                image: dict[str, Any] = {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": part.page.base64(),
                    },
                }
                if part.page.page_id in marked:
                    image["cache_control"] = {"type": "ephemeral"}
                blocks.append(image)
            else:
                blocks.append({"type": "text", "text": part.text})
        messages = self._memory_message(blocks)
        for turn in self.turns:
            role = "assistant" if turn.role == "assistant" else "user"
            text = turn_text(turn)
            if turn.role not in ("user", "assistant"):
                text = f"[{turn.role}] {text}"
            messages.append({"role": role, "content": text or " "})
        return messages

    def to_deepseek(self, *, instruction: str = "") -> DeepSeekPrompt:
        """DeepSeek-OCR's plain-template prompt over this context, with the pages' tokens.

        The prompt holds, oldest first: the preamble, each page's label followed by one
        ``<image>`` marker, segments shown as text, the fact sheet, the recent turns as
        ``role: text`` lines, then ``instruction``. A literal ``<image>`` in any text is
        broken with a zero-width space so that only page markers take images.

        Args:
            instruction: Text put last (e.g. a question about the memory).

        Returns:
            The prompt and the vision tokens that fill its markers, in order; pass them to
            ``DeepSeekOCR.generate(prompt.prompt, vision_tokens=prompt.tensors())``.

        Raises:
            NoVisionTokens: The context carries no vision tokens (its memory has no
                encoder, or the reader is not a DeepSeek-OCR reader).
        """
        from optical_memory.deepseek_context import FINGERPRINT_KEY, DeepSeekPrompt, NoVisionTokens

        fingerprint = self.metadata.get(FINGERPRINT_KEY)
        missing = [page.page_id for page in self.pages if page.vision_tokens is None]
        if not fingerprint or missing:
            raise NoVisionTokens(
                f"the context of thread {self.thread!r} for reader {self.reader!r} carries no "
                "vision tokens; make it with an OpticalMemory that has an encoder and a "
                "DeepSeek-OCR reader (e.g. reader='deepseek-ocr')"
            )
        lines: list[str] = []
        tokens: list[VisionTokens] = []
        for part in self._memory_parts():
            if part.page is not None and part.page.vision_tokens is not None:
                lines += [_no_marker(part.page.label), IMAGE_MARKER]
                tokens.append(part.page.vision_tokens)
            else:
                lines.append(_no_marker(part.text))
        lines = [*self._preamble(), *lines]
        lines += [_no_marker(f"{turn.role}: {turn_text(turn)}") for turn in self.turns]
        if instruction:
            lines.append(_no_marker(instruction))
        return DeepSeekPrompt(
            prompt="\n".join(lines),
            vision_tokens=tuple(tokens),
            fingerprint=str(fingerprint),
            page_ids=tuple(page.page_id for page in self.pages),
        )


def _no_marker(text: str) -> str:
    """``text`` with any ``<image>`` broken up, so it takes no image slots."""
    return text.replace(IMAGE_MARKER, "<\u200bimage>")
