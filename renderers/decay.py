"""Visual decay: an existing page shrinks to a smaller tier, the layout untouched."""

from __future__ import annotations

import dataclasses

from PIL import Image

from optical_memory.errors import DecayError

from .page import RenderedPage
from .tiers import Tier, TierLike

__all__ = ["decay"]


def decay(page: RenderedPage, tier: TierLike) -> RenderedPage:
    """Downsample ``page`` to the canvas of a smaller ``tier``.

    The page keeps its layout, span and line count; it only loses pixels, so the text
    gets blurrier and cheaper, as memories do. Lanczos filtering keeps strokes as
    legible as the smaller grid allows. A non-square page (a custom ``size``) keeps its
    aspect ratio: its longer side becomes the tier's side.

    Args:
        page: A rendered page.
        tier: The target tier; its canvas must not be larger than the page.

    Returns:
        A new page at the target tier. Decaying to the page's own size returns a copy.

    Raises:
        DecayError: The target canvas is larger than the page (that would be sharpening,
            which re-renders from text instead).
        UnknownTierError: ``tier`` names no tier.

    Example:
        >>> pages = TextRenderer().render("hello " * 500, tier="base")
        >>> decay(pages[0], "tiny").size
        (512, 512)
    """
    target = Tier.coerce(tier)
    width, height = page.image.size
    scale = target.side / max(width, height)
    if scale > 1:
        raise DecayError(
            f"cannot decay a {width}x{height} page to tier {target.label!r} "
            f"({target.side}x{target.side}): decay only shrinks; re-render to sharpen"
        )
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = (
        page.image.copy()
        if new_size == page.image.size
        else page.image.resize(new_size, Image.Resampling.LANCZOS)
    )
    font = dataclasses.replace(page.font, size_px=page.font.size_px * scale)
    return dataclasses.replace(page, image=image, tier=target, font=font)
