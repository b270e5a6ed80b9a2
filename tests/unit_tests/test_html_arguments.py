"""HtmlRenderer checks its arguments before any browser starts (no Chromium needed)."""

from __future__ import annotations

import dataclasses

import pytest

from optical_memory.errors import InvalidSettingError, RenderError, UnknownPresetError
from optical_memory.renderers import HtmlRenderer
from optical_memory.renderers.presets import PRESETS


def test_presets_by_name_or_object() -> None:
    assert HtmlRenderer(preset="Dense").font.size_px == 7.0
    custom = dataclasses.replace(PRESETS["legible"], name="big")
    custom = custom.with_size(16)
    renderer = HtmlRenderer(preset=custom)
    assert renderer.font.size_px == 16
    with pytest.raises(UnknownPresetError):
        HtmlRenderer(preset="tiny-font")
    with pytest.raises(UnknownPresetError):
        HtmlRenderer(preset=None)  # type: ignore[arg-type]


def test_bad_arguments_fail_before_the_browser_starts() -> None:
    renderer = HtmlRenderer()
    with pytest.raises(RenderError, match="must be a str"):
        renderer.render_html(b"<p>bytes</p>")  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError):
        renderer.render_markdown("# x", size=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError):
        renderer.render_markdown("# x", size=(10, 100_000))
    with pytest.raises(InvalidSettingError):
        HtmlRenderer(font_size_px=-1)
    assert renderer.browser is None
