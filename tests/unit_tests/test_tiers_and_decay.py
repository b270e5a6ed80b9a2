from __future__ import annotations

import numpy as np
import pytest

from optical_memory.errors import DecayError, FontNotFoundError, UnknownTierError
from optical_memory.renderers import TextRenderer, Tier, decay
from optical_memory.renderers.fonts import FontChain, find_font
from tests.conftest import missing_component


def test_tier_ladder_matches_deepseek_ocr_modes() -> None:
    assert [(t.label, t.side, t.vision_tokens) for t in Tier] == [
        ("large", 1280, 400),
        ("base", 1024, 256),
        ("small", 640, 100),
        ("tiny", 512, 64),
    ]
    assert Tier.coerce(" Small ") is Tier.SMALL
    assert Tier.coerce(Tier.BASE) is Tier.BASE
    with pytest.raises(UnknownTierError, match="large, base, small, tiny"):
        Tier.coerce("medium")
    with pytest.raises(UnknownTierError):
        Tier.coerce(640)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def large_page():  # type: ignore[no-untyped-def]
    try:
        return TextRenderer(preset="legible").render("Visual decay. " * 600, tier="large")[0]
    except FontNotFoundError as exc:
        missing_component(str(exc))


@pytest.mark.parametrize("tier", [Tier.LARGE, Tier.BASE, Tier.SMALL, Tier.TINY])
def test_decay_downsamples_to_the_tier_canvas(large_page, tier: Tier) -> None:  # type: ignore[no-untyped-def]
    older = decay(large_page, tier)
    assert older.image.size == (tier.side, tier.side)
    assert older.tier is tier
    assert older.span == large_page.span
    assert older.line_count == large_page.line_count
    assert older.font.size_px == pytest.approx(large_page.font.size_px * tier.side / 1280)
    # Same layout, fewer pixels: the ink sits in the same relative place.
    big = np.asarray(large_page.image, dtype=float)
    small = np.asarray(older.image.resize(large_page.image.size), dtype=float)
    assert np.corrcoef(big.ravel(), small.ravel())[0, 1] > 0.5


def test_decay_chain_matches_direct_decay(large_page) -> None:  # type: ignore[no-untyped-def]
    stepwise = decay(decay(decay(large_page, "base"), "small"), "tiny")
    direct = decay(large_page, "tiny")
    difference = np.abs(
        np.asarray(stepwise.image, dtype=int) - np.asarray(direct.image, dtype=int)
    ).mean()
    assert difference < 12


def test_decay_refuses_to_grow(large_page) -> None:  # type: ignore[no-untyped-def]
    tiny = decay(large_page, "tiny")
    with pytest.raises(DecayError, match="re-render"):
        decay(tiny, "large")
    with pytest.raises(ValueError):
        decay(tiny, "small")


def test_font_fallback_chain_picks_cjk_and_symbol_faces() -> None:
    try:
        chain = FontChain.for_family("DejaVu Sans")
    except FontNotFoundError as exc:
        missing_component(str(exc))
    families = [face.family for face in chain.faces]
    if "Noto Sans CJK SC" not in families or "Symbola" not in families:
        missing_component(f"fallback fonts missing; have {families}")
    assert families[chain.face_index("a")] == "DejaVu Sans"
    assert families[chain.face_index("中")] == "Noto Sans CJK SC"
    assert families[chain.face_index("🦀")] == "Symbola"  # an emoji DejaVu lacks
    assert chain.face_index("\ue000") == -1


def test_missing_font_error_lists_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTICAL_MEMORY_FONT_DIR", "/nonexistent-font-dir")
    find_font.cache_clear()
    try:
        with pytest.raises(FontNotFoundError) as info:
            find_font("No Such Family 7")
        assert "fc-match" in str(info.value)
        assert "OPTICAL_MEMORY_FONT_DIR" in str(info.value)
    finally:
        find_font.cache_clear()
