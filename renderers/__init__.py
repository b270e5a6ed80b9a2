"""Text, Markdown and HTML to page images, and visual decay.

Example:
    >>> from optical_memory.renderers import TextRenderer, decay
    >>> pages = TextRenderer(preset="dense").render(open("notes.txt").read(), tier="small")
    >>> pages[0].image.size, pages[0].span
    ((640, 640), (0, 16873))
    >>> older = decay(pages[0], "tiny")

This package imports nothing from the rest of optical-memory but its error types, so it
can be used on its own. Names load on first use: ``HtmlRenderer`` needs the ``html``
extra (Playwright and markdown-it-py) only when it is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decay import decay
    from .html import AsyncHtmlRenderer, HtmlRenderer
    from .page import FontSettings, RenderedPage
    from .presets import Preset
    from .text import TextRenderer
    from .tiers import Tier

__all__ = [
    "AsyncHtmlRenderer",
    "FontSettings",
    "HtmlRenderer",
    "Preset",
    "RenderedPage",
    "TextRenderer",
    "Tier",
    "decay",
]

_HOMES = {
    "AsyncHtmlRenderer": "html",
    "FontSettings": "page",
    "HtmlRenderer": "html",
    "Preset": "presets",
    "RenderedPage": "page",
    "TextRenderer": "text",
    "Tier": "tiers",
    "decay": "decay",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
