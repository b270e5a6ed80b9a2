"""The public names other code and users rely on; changing them is a breaking change."""

from __future__ import annotations

import optical_memory.errors
import optical_memory.renderers


def test_renderers_exports() -> None:
    assert sorted(optical_memory.renderers.__all__) == [
        "FontSettings",
        "HtmlRenderer",
        "Preset",
        "RenderedPage",
        "TextRenderer",
        "Tier",
        "decay",
    ]
    for name in optical_memory.renderers.__all__:
        assert getattr(optical_memory.renderers, name) is not None


def test_error_tree_has_one_root() -> None:
    root = optical_memory.errors.OpticalMemoryError
    for name in optical_memory.errors.__all__:
        assert issubclass(getattr(optical_memory.errors, name), root)
