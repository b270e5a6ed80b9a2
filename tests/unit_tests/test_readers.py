"""Reader profiles: the providers' published image-token examples, resizes, the registry."""

from __future__ import annotations

import dataclasses
import math

import pytest

from optical_memory import readers
from optical_memory.errors import (
    InvalidSettingError,
    OpticalMemoryError,
    UnknownReader,
    UnknownTierError,
)
from optical_memory.readers import (
    AnthropicRule,
    DeepSeekOCRRule,
    GeminiBudgetRule,
    GeminiRule,
    NoImageRule,
    OpenAIPatchRule,
    OpenAITileRule,
    QwenVLRule,
    ReaderProfile,
)
from optical_memory.renderers.tiers import Tier
from optical_memory.tokens import count_tokens

IMAGE_READERS = [name for name in readers.names() if readers.get(name).image_input]
# The pages of the reference's worked-cost table (reference/image-token-costs.md, 5.2).
A4_72, A4_96, SQUARE, DENSE, SMALL = (595, 842), (794, 1123), (1024, 1024), (1568, 1568), (512, 512)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registrations in a test must not leak into the next one.
    monkeypatch.setattr(readers, "_PROFILES", dict(readers._PROFILES))


# --- OpenAI tiles -----------------------------------------------------------------------


def test_openai_tile_published_examples() -> None:
    rule = OpenAITileRule()
    assert rule.tokens(1024, 1024) == 765
    assert rule.tokens(2048, 4096) == 1105
    assert rule.tokens(*SMALL) == 255
    assert rule.tokens(*A4_72) == 765
    assert rule.tokens(*A4_96) == 1105
    assert rule.tokens(*DENSE) == 765


def test_openai_tile_resize_fits_2048_then_short_side_768() -> None:
    rule = OpenAITileRule()
    assert rule.effective_size(2048, 4096) == (768, 1536)
    assert rule.effective_size(1024, 1024) == (768, 768)
    assert rule.effective_size(4096, 1024) == (2048, 512)  # short side already under 768
    assert rule.effective_size(512, 512) == (512, 512)  # not scaled up by default
    assert OpenAITileRule(upscale=True).effective_size(512, 512) == (768, 768)
    assert OpenAITileRule(upscale=True).tokens(*A4_72) == 1105  # the table's "if upscaled"


def test_openai_low_detail_bills_base_only_and_sees_512() -> None:
    rule = OpenAITileRule("low")
    assert rule.tokens(4096, 4096) == rule.tokens(100, 100) == 85
    assert rule.effective_size(2048, 1024) == (512, 256)


def test_openai_tile_other_models_by_base_and_per_tile() -> None:
    gpt5 = OpenAITileRule(base=70, per_tile=140)
    assert [gpt5.tokens(*page) for page in (A4_72, A4_96, SQUARE, DENSE, SMALL)] == [
        630,
        910,
        630,
        630,
        210,
    ]


# --- OpenAI patches ---------------------------------------------------------------------


def test_openai_patch_reference_table() -> None:
    rule = OpenAIPatchRule(1.62)
    assert [rule.tokens(*page) for page in (A4_72, A4_96, SQUARE, DENSE, SMALL)] == [
        832,
        1458,
        1659,
        2465,
        415,
    ]


def test_openai_patch_downscale_over_budget() -> None:
    rule = OpenAIPatchRule(1.0)
    # 49 x 49 = 2,401 patches > 1,536: shrunk, then whole patches across.
    assert rule.effective_size(*DENSE) == (1248, 1248)
    assert rule.tokens(*DENSE) == 39 * 39
    # OpenAI's own worked example: 1800 x 2400 -> 1056 x 1408, 33 x 44 = 1,452 patches.
    assert rule.effective_size(1800, 2400) == (1056, 1408)
    assert rule.tokens(1800, 2400) == 1452
    assert rule.tokens(8000, 8000) <= 1536
    assert rule.effective_size(*SQUARE) == SQUARE  # under budget: untouched


# --- Anthropic --------------------------------------------------------------------------


def test_anthropic_published_examples() -> None:
    rule = AnthropicRule()
    assert rule.tokens(1092, 1092) == 1590
    assert rule.effective_size(1092, 1092) == (1092, 1092)
    assert [rule.tokens(*page) for page in (A4_72, A4_96, SQUARE, SMALL)] == [668, 1189, 1399, 350]


def test_anthropic_shrinks_long_edge_and_area() -> None:
    rule = AnthropicRule()
    assert rule.effective_size(3000, 500) == (1568, 261)
    width, height = rule.effective_size(*DENSE)
    assert width == height and width * height <= 1_200_000
    assert 1534 <= rule.tokens(*DENSE) <= 1600
    # The reference table's 1.15 MP reading: about 1,534.
    assert abs(AnthropicRule(max_pixels=1_150_000).tokens(*DENSE) - 1534) <= 2


# --- Gemini -----------------------------------------------------------------------------


def test_gemini_2_small_image_and_tiles() -> None:
    rule = GeminiRule()
    assert rule.tokens(384, 384) == rule.tokens(300, 100) == 258
    assert [rule.tokens(*page) for page in (A4_72, A4_96, SQUARE, DENSE, SMALL)] == [
        516,
        1032,
        1032,
        2322,
        258,
    ]
    assert rule.effective_size(*DENSE) == DENSE


def test_gemini_3_fixed_budget_per_media_resolution() -> None:
    budgets = {"low": 280, "medium": 560, "high": 1120, "ultra_high": 2240}
    for resolution, budget in budgets.items():
        rule = GeminiBudgetRule(resolution)  # type: ignore[arg-type]
        assert rule.tokens(*SMALL) == rule.tokens(4000, 3000) == budget
    # Assumed working area: 2.x pixels per token, so LOW shrinks a 1024 page, HIGH does not.
    assert GeminiBudgetRule("high").effective_size(*SQUARE) == SQUARE
    width, height = GeminiBudgetRule("low").effective_size(*SQUARE)
    assert width == height < 1024
    with pytest.raises(InvalidSettingError, match="media_resolution"):
        GeminiBudgetRule("extreme")  # type: ignore[arg-type]


# --- Qwen2.5-VL -------------------------------------------------------------------------


def test_qwen_reference_table_plus_two_markers() -> None:
    rule = QwenVLRule()
    table = [630, 1120, 1369, 3136, 324]
    assert [rule.tokens(*page) for page in (A4_72, A4_96, SQUARE, DENSE, SMALL)] == [
        t + 2 for t in table
    ]
    assert QwenVLRule(markers=0).tokens(*SQUARE) == 1369


def test_qwen_smart_resize_bounds() -> None:
    rule = QwenVLRule()
    assert rule.effective_size(*SQUARE) == (1036, 1036)
    assert rule.effective_size(*SMALL) == (504, 504)
    assert rule.effective_size(10, 10) == (56, 56)  # raised to min_pixels (4 tokens)
    assert rule.tokens(10, 10) == 6
    width, height = rule.effective_size(9000, 9000)
    assert width % 28 == height % 28 == 0 and width * height <= 12_845_056


# --- DeepSeek-OCR -----------------------------------------------------------------------


def test_deepseek_fixed_tokens_per_mode() -> None:
    for mode, tokens in (("tiny", 64), ("small", 100), ("base", 256), ("large", 400)):
        rule = DeepSeekOCRRule(mode, downshift=False)  # type: ignore[arg-type]
        assert rule.tokens(*SMALL) == rule.tokens(3000, 1000) == tokens


def test_deepseek_modes_match_the_renderer_tiers() -> None:
    rule = DeepSeekOCRRule("large")
    for tier in Tier:
        assert rule.tokens(*tier.size) == tier.vision_tokens
        assert rule.effective_size(*tier.size) == tier.size


def test_deepseek_downshift_reads_decayed_pages_in_their_mode() -> None:
    small = DeepSeekOCRRule("small")
    assert small.tokens(512, 512) == 64
    assert small.tokens(640, 640) == small.tokens(1024, 1024) == 100
    assert DeepSeekOCRRule("small", downshift=False).tokens(512, 512) == 100
    assert DeepSeekOCRRule("base").tokens(600, 400) == 100


def test_deepseek_resize_stretches_small_modes_and_pads_large_ones() -> None:
    assert DeepSeekOCRRule("small").effective_size(1000, 500) == (640, 640)
    assert DeepSeekOCRRule("base").effective_size(2048, 1024) == (1024, 512)
    assert DeepSeekOCRRule("large", downshift=False).effective_size(640, 320) == (1280, 640)


@pytest.mark.parametrize(
    ("size", "max_tiles", "grid"),
    [
        ((1024, 1024), 9, (2, 2)),
        ((1920, 1080), 9, (4, 2)),
        ((1920, 1080), 6, (2, 1)),
        ((800, 600), 9, (3, 2)),
        ((1240, 1754), 9, (2, 3)),
        ((1654, 2339), 6, (2, 3)),
    ],
)
def test_deepseek_gundam_tiles(
    size: tuple[int, int], max_tiles: int, grid: tuple[int, int]
) -> None:
    rule = DeepSeekOCRRule("gundam", max_tiles=max_tiles)
    assert rule.tiles(*size) == grid
    assert rule.tokens(*size) == 256 + 100 * grid[0] * grid[1]
    assert rule.effective_size(*size) == (640 * grid[0], 640 * grid[1])


def test_deepseek_gundam_small_image_has_no_tiles() -> None:
    rule = DeepSeekOCRRule("gundam", downshift=False)
    assert rule.tiles(640, 300) == (0, 0)
    assert rule.tokens(640, 300) == 256
    assert DeepSeekOCRRule("gundam").tokens(500, 500) == 64


def test_rules_reject_bad_sizes_and_settings() -> None:
    for bad in [(0, 10), (10, -1), (1.5, 10), (True, 10)]:
        with pytest.raises(InvalidSettingError):
            AnthropicRule().tokens(*bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError, match="mode"):
        DeepSeekOCRRule("huge")  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError, match="detail"):
        OpenAITileRule("auto")  # type: ignore[arg-type]


# --- Profiles ---------------------------------------------------------------------------


def test_shipped_names() -> None:
    assert readers.names() == [
        "anthropic",
        "deepseek-ocr",
        "deepseek-ocr-base",
        "deepseek-ocr-large",
        "deepseek-ocr-tiny",
        "gemini",
        "gemini-3",
        "openai",
        "openai-low",
        "openai-patch",
        "qwen2.5-vl",
        "text",
    ]


@pytest.mark.parametrize("name", IMAGE_READERS)
def test_shipped_pages_are_legible_after_the_resize(name: str) -> None:
    profile = readers.get(name)
    side = profile.page_side
    assert profile.effective_font_px(side, profile.font_px) >= profile.min_text_px
    assert profile.effective_font_px(side, profile.font_px, side) >= profile.min_text_px
    assert profile.source


@pytest.mark.parametrize("name", IMAGE_READERS)
def test_shipped_tiers_are_a_ladder_that_saves_tokens(name: str) -> None:
    profile = readers.get(name)
    tiers = [Tier.coerce(label) for label in profile.tiers]
    assert [tier.label for tier in tiers] == list(profile.tiers)
    assert tiers[0].side == profile.page_side
    costs = [profile.image_tokens(*tier.size) for tier in tiers]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) == len(costs)


@pytest.mark.parametrize("name", IMAGE_READERS)
def test_shipped_fresh_pages_beat_their_text(name: str) -> None:
    profile = readers.get(name)
    side = profile.page_side
    holds = readers.estimate_page_tokens(side, side, profile.font_px)
    assert readers.break_even(profile, math.floor(holds), side, side)


def test_profile_numbers() -> None:
    deepseek = readers.get("deepseek-ocr")
    assert (deepseek.page_side, deepseek.font_px, deepseek.tiers) == (640, 10.7, ("small", "tiny"))
    # About 10 text tokens per vision token, the paper's ~97% point.
    assert 9.5 < readers.estimate_page_tokens(640, 640, deepseek.font_px) / 100 < 10.5
    openai = readers.get("openai")
    assert openai.encoding == "o200k_base" and openai.image_tokens(513, 300) == 85 + 2 * 170
    # a decayed page within 512 px goes at low detail: same pixels, base price
    assert openai.image_tokens(512, 512) == 85
    assert openai.image_rule.detail_for(512, 370) == "low"
    assert readers.OpenAITileRule("high").tokens(512, 512) == 255
    # A 1024 page is seen at 768 px by GPT-4o: 16 px type is read as 12 px.
    assert openai.effective_font_px(1024, 16.0) == pytest.approx(12.0)
    claude = readers.get("anthropic")
    assert (claude.page_side, claude.font_px) == (1024, 12.0)
    assert claude.effective_font_px(1568, 12.0) < 12.0


@pytest.mark.parametrize("name", readers.names())
def test_text_tokens_use_the_profile_encoding(name: str) -> None:
    profile = readers.get(name)
    text = "Reader profiles bill pages after the provider's resize. 读者配置按缩放后的尺寸计费。"
    assert profile.text_tokens(text) == count_tokens(text, profile.encoding)


def test_text_reader_refuses_images() -> None:
    text = readers.get("text")
    assert not text.image_input and text.tiers == ()
    with pytest.raises(InvalidSettingError, match="no image"):
        text.image_tokens(640, 640)
    with pytest.raises(InvalidSettingError):
        text.effective_size(640, 640)
    with pytest.raises(InvalidSettingError):
        NoImageRule().tokens(640, 640)
    assert readers.break_even("text", 10_000, 640, 640) is False


def test_break_even() -> None:
    claude = readers.get("anthropic")  # 1,399 tokens for a 1024 page
    assert readers.break_even(claude, 1400, 1024, 1024)
    assert not readers.break_even(claude, 1399, 1024, 1024)
    assert not readers.break_even("anthropic", 1400, 1024, 1024, refetch_tokens=1.0)


# --- Registry ---------------------------------------------------------------------------


def test_get_is_case_insensitive_and_passes_profiles_through() -> None:
    profile = readers.get(" Anthropic ")
    assert profile is readers.get("anthropic")
    assert readers.get(profile) is profile


def test_unknown_reader_names_the_known_ones() -> None:
    with pytest.raises(UnknownReader) as info:
        readers.get("gpt-9")
    assert isinstance(info.value, ValueError) and isinstance(info.value, OpticalMemoryError)
    message = str(info.value)
    assert "'gpt-9'" in message
    assert all(name in message for name in readers.names())
    with pytest.raises(UnknownReader):
        readers.get(None)  # type: ignore[arg-type]


def _custom(name: str = "my-claude", side: int = 640) -> ReaderProfile:
    return ReaderProfile(
        name=name,
        image_input=True,
        encoding="cl100k_base",
        image_rule=AnthropicRule(),
        min_text_px=14.0,
        page_side=side,
        font_px=14.0,
        tiers=("small", "tiny"),
        source="test",
    )


@pytest.mark.usefixtures("registry")
def test_register_and_duplicates() -> None:
    mine = _custom()
    readers.register(mine)
    assert readers.get("my-claude") is mine and "my-claude" in readers.names()
    with pytest.raises(InvalidSettingError, match="already registered"):
        readers.register(_custom())
    replacement = dataclasses.replace(mine, min_text_px=13.0)
    readers.register(replacement, replace=True)
    assert readers.get("my-claude") is replacement
    with pytest.raises(InvalidSettingError):
        readers.register(dataclasses.replace(readers.get("openai")))
    with pytest.raises(InvalidSettingError, match="ReaderProfile"):
        readers.register("openai")  # type: ignore[arg-type]


def test_registry_fixture_restored() -> None:
    assert "my-claude" not in readers.names()


def test_profile_validation() -> None:
    with pytest.raises(InvalidSettingError, match="below min_text_px"):
        dataclasses.replace(_custom(), font_px=10.0)
    with pytest.raises(InvalidSettingError, match="largest canvas"):
        dataclasses.replace(_custom(), tiers=("tiny", "small"), page_side=512)
    with pytest.raises(InvalidSettingError, match="page_side"):
        dataclasses.replace(_custom(), page_side=1024)
    with pytest.raises(UnknownTierError):
        dataclasses.replace(_custom(), tiers=("huge",))
    with pytest.raises(InvalidSettingError, match="NoImageRule"):
        dataclasses.replace(_custom(), image_input=False)
    with pytest.raises(InvalidSettingError, match="name"):
        _custom(name=" ")
    profile = _custom()
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.font_px = 20.0  # type: ignore[misc]


def test_exports() -> None:
    assert sorted(readers.__all__) == [
        "AnthropicRule",
        "DeepSeekOCRRule",
        "GeminiBudgetRule",
        "GeminiRule",
        "ImageRule",
        "NoImageRule",
        "OpenAIPatchRule",
        "OpenAITileRule",
        "PROSE_TOKEN_DENSITY",
        "QwenVLRule",
        "ReaderProfile",
        "UnknownReader",
        "break_even",
        "estimate_page_tokens",
        "get",
        "names",
        "register",
    ]
    for name in readers.__all__:
        assert getattr(readers, name) is not None


def test_module_docstring_table_matches_the_profiles() -> None:
    doc = readers.__doc__ or ""
    rows = [
        line.split()
        for line in doc.splitlines()
        if line.split() and line.split()[0] in IMAGE_READERS
    ]
    assert sorted(row[0] for row in rows) == sorted(IMAGE_READERS)
    for name, side, font, image, text, ratio in rows:
        profile = readers.get(name)
        holds = readers.estimate_page_tokens(profile.page_side, profile.page_side, profile.font_px)
        tokens = profile.image_tokens(profile.page_side, profile.page_side)
        assert (int(side), float(font)) == (profile.page_side, profile.font_px)
        assert int(image.replace(",", "")) == tokens
        assert int(text.replace(",", "")) == round(holds)
        assert float(ratio) == round(holds / tokens, 1)
