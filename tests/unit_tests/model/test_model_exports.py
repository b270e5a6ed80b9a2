"""The public names of ``optical_memory.model``; changing them is a breaking change."""

from __future__ import annotations

import optical_memory.model


def test_model_exports() -> None:
    assert {
        "DeepSeekOCR",
        "DeepSeekOCRConfig",
        "ImageViews",
        "LoadReport",
        "VisionTokenLayout",
        "vision_token_layout",
    } <= set(optical_memory.model.__all__)
    for name in optical_memory.model.__all__:
        assert getattr(optical_memory.model, name) is not None
