"""RenderedPage: one page image and what part of the source it shows."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

from .tiers import Tier

__all__ = ["FontSettings", "RenderedPage"]


@dataclass(frozen=True)
class FontSettings:
    """How a page's text was set.

    Attributes:
        family: Main font family (e.g. ``"DejaVu Sans"``).
        size_px: Glyph size in final-image pixels (the em size).
        line_pitch: Distance between baselines, in ems.
        supersample: Factor the text was drawn at before downsampling (1 = direct).
        columns: Number of text columns on the page.
    """

    family: str
    size_px: float
    line_pitch: float
    supersample: int = 1
    columns: int = 1


@dataclass(frozen=True, eq=False)
class RenderedPage:
    """One rendered page.

    Attributes:
        image: The page as a greyscale or RGB PIL image.
        span: ``(start, end)`` character offsets into the source text this page shows.
            The spans of a render cover the source exactly, with no gap or overlap.
        tier: The tier whose canvas the page was drawn on, or ``None`` for a custom size.
        font: Font settings used for the page.
        line_count: Number of text lines drawn.
        index: Position of the page in its render, from 0.
        metadata: Renderer-specific facts (e.g. ``{"renderer": "html", "source": "markdown"}``).
    """

    image: Image.Image
    span: tuple[int, int]
    tier: Tier | None
    font: FontSettings
    line_count: int
    index: int = 0
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the image in pixels."""
        return self.image.size

    def text(self, source: str) -> str:
        """The part of ``source`` this page shows."""
        return source[self.span[0] : self.span[1]]

    def png_bytes(self, *, optimize: bool = False) -> bytes:
        """The page encoded as PNG."""
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", optimize=optimize)
        return buffer.getvalue()
