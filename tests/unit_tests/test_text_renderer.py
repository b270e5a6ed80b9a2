from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from PIL import Image

from optical_memory.errors import (
    FontNotFoundError,
    InvalidSettingError,
    OpticalMemoryError,
    RenderError,
    UnknownPresetError,
    UnknownTierError,
)
from optical_memory.renderers import RenderedPage, TextRenderer, Tier
from optical_memory.renderers.layout import Line, LineBreaker, split_blocks
from optical_memory.renderers.text import chat_transcript, looks_like_code
from tests.conftest import missing_component

PROSE = (
    "Memory is only worth having if it is never lost. Old turns are rendered into page "
    "images whose resolution decays with age, the way human memory blurs.\n"
    "This line was hard-wrapped by an email client and continues\n"
    "on the next line, which the renderer joins back into one paragraph.\n\n"
)


@pytest.fixture(scope="module")
def dense() -> TextRenderer:
    renderer = TextRenderer(preset="dense")
    try:
        renderer.render("probe", tier="tiny")
    except FontNotFoundError as exc:
        missing_component(str(exc))
    return renderer


@pytest.fixture(scope="module")
def legible() -> TextRenderer:
    renderer = TextRenderer()
    try:
        renderer.render("probe", tier="tiny")
    except FontNotFoundError as exc:
        missing_component(str(exc))
    return renderer


def ink(page: RenderedPage) -> int:
    """Number of pixels noticeably darker than paper."""
    return int((np.asarray(page.image) < 160).sum())


def assert_spans_cover(pages: list[RenderedPage], text: str) -> None:
    assert pages[0].span[0] == 0
    assert pages[-1].span[1] == len(text)
    for before, after in itertools.pairwise(pages):
        assert before.span[1] == after.span[0]
        assert before.span[0] < before.span[1]
    assert "".join(page.text(text) for page in pages) == text


@pytest.mark.parametrize("tier", list(Tier))
def test_page_has_the_tier_canvas(dense: TextRenderer, tier: Tier) -> None:
    pages = dense.render(PROSE, tier=tier)
    assert len(pages) == 1
    assert pages[0].image.size == (tier.side, tier.side)
    assert pages[0].tier is tier
    assert pages[0].image.mode == "L"
    assert ink(pages[0]) > 500


def test_custom_size(dense: TextRenderer) -> None:
    pages = dense.render(PROSE * 20, size=(300, 200))
    assert all(page.image.size == (300, 200) for page in pages)
    assert all(page.tier is None for page in pages)
    assert len(pages) > 1


def test_pagination_spans_cover_source_without_gap_or_overlap(dense: TextRenderer) -> None:
    text = PROSE * 400
    pages = dense.render(text, tier="tiny")
    assert len(pages) >= 5
    assert_spans_cover(pages, text)
    assert [page.index for page in pages] == list(range(len(pages)))
    # Full pages hold about the same amount of text; the last holds the rest.
    lengths = [page.span[1] - page.span[0] for page in pages[:-1]]
    assert max(lengths) - min(lengths) < 0.1 * max(lengths)
    assert all(page.line_count > 50 for page in pages[:-1])


def test_dense_page_holds_far_more_text_than_legible(
    dense: TextRenderer, legible: TextRenderer
) -> None:
    text = PROSE.replace("\n\n", " ") * 300
    dense_chars = dense.render(text, tier="small")[0].span[1]
    legible_chars = legible.render(text, tier="small")[0].span[1]
    assert dense_chars > 14_000  # about 3,000 cl100k tokens of English prose
    assert dense_chars > 3 * legible_chars


def test_prose_is_reflowed_to_full_width(dense: TextRenderer) -> None:
    wrapped = "\n".join(["short hard-wrapped line of prose"] * 60)
    page = dense.render(wrapped, tier="small", kind="prose")[0]
    # Sixty 32-character source lines fit in far fewer full-width lines.
    assert page.line_count <= 20


def test_code_keeps_lines_and_indentation(dense: TextRenderer) -> None:
    code = "def f(x):\n    if x:\n\t\treturn 1\n    return 2\n"
    page = dense.render(code, tier="tiny", kind="code")[0]
    assert page.line_count == 5  # four lines of code and the empty last line
    assert page.font.family == "DejaVu Sans Mono"
    lines = _layout(dense, code, code=True)
    cell = lines[0].runs[1][0] - lines[0].runs[0][0]  # "def" then "f(x):" at 4 cells
    lefts = [line.runs[0][0] if line.runs else None for line in lines]
    assert lefts[:4] == [0, pytest.approx(cell), pytest.approx(2 * cell), pytest.approx(cell)]


def test_fenced_code_inside_prose_is_monospace_and_kept(dense: TextRenderer) -> None:
    text = "Some prose.\n```python\nx = 1\n    y = 2\n```\nMore prose."
    page = dense.render(text, tier="tiny", kind="prose")[0]
    assert page.line_count == 6


def test_long_unbreakable_token_wraps_anywhere(dense: TextRenderer) -> None:
    url = "https://example.com/" + "a1b2c3d4" * 120
    pages = dense.render(url, tier="tiny")
    assert len(pages) == 1
    assert pages[0].line_count >= 3
    assert_spans_cover(pages, url)


@pytest.mark.parametrize(
    "text",
    [
        "tab\tseparated\tcolumns\tand\ttrailing\t",
        "emoji 😀🎉👍🏽 and a family 👨‍👩‍👧 and flags 🇫🇷",
        "combining: e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u0334 \u0301 at start",
        "right to left: שלום עולם and مرحبا بالعالم in one line",
        "controls: \x00 \x07 \x1b[31m red \x7f \x85 \x9b done",
        "lone surrogate \ud800 and noncharacter \uffff",
        "zero width\u200b\u200c\u200d joiners and BOM \ufeff and soft\u00adhyphen",
        "中文和English混排，标点符号。日本語のテキスト、한국어 텍스트",
        "\r\nwindows\r\nline\rendings\u2028and separators\u2029",
        "ﷺ ﷽ 𒐫 𝕬𝖇𝖈 ∀x∈ℝ: x²≥0",
    ],
)
def test_unicode_renders_without_crashing_and_spans_cover(dense: TextRenderer, text: str) -> None:
    pages = dense.render(text * 3, tier="tiny")
    assert_spans_cover(pages, text * 3)
    assert ink(pages[0]) > 50


def test_character_no_font_has_is_drawn_as_placeholder(legible: TextRenderer) -> None:
    # U+E000 is private use and U+0378 unassigned: no installed font draws them.
    for char in ("\ue000", "\u0378"):
        page = legible.render(char, tier="tiny")[0]
        assert ink(page) > 3, f"{char!r} vanished"


def test_control_character_is_visible(legible: TextRenderer) -> None:
    assert ink(legible.render("\x1b", tier="tiny")[0]) > 10


def test_right_to_left_words_are_drawn_in_visual_order(dense: TextRenderer) -> None:
    (line,) = _layout(dense, "abc שלום עולם")
    texts = [run[1][3] for run in line.runs]
    assert texts == ["abc", "עולם", "שלום"]
    (hebrew_line,) = _layout(dense, "שלום עולם abc")
    # A right-to-left paragraph is set from the right edge.
    xs = {run[1][3]: run[0] for run in hebrew_line.runs}
    assert xs["abc"] < xs["עולם"] < xs["שלום"]


def _layout(renderer: TextRenderer, text: str, *, code: bool = False) -> list[Line]:
    setter = renderer._typesetter("latin", code)
    breaker = LineBreaker(
        width=600,
        glyphs=setter.glyphs,
        split_faces=setter.split_faces,
        prose_height=setter.prose_height,
        code_height=setter.code_height,
    )
    for block in split_blocks(text, code=code):
        breaker.add(block)
    return breaker.lines


def test_empty_and_blank_text_give_one_blank_page(dense: TextRenderer) -> None:
    for text in ("", "   \n\n\t "):
        pages = dense.render(text, tier="tiny")
        assert len(pages) == 1
        assert pages[0].span == (0, len(text))
        assert ink(pages[0]) == 0


def test_rendering_is_deterministic(dense: TextRenderer) -> None:
    text = PROSE * 30
    first = dense.render(text, tier="small")[0].png_bytes()
    again = TextRenderer(preset="dense").render(text, tier="small")[0].png_bytes()
    assert first == again
    assert Image.open(__import__("io").BytesIO(first)).size == (640, 640)


def test_chat_transcript_labels_turns() -> None:
    transcript = chat_transcript(
        [
            {"role": "user", "content": "Hi there"},
            {"type": "ai", "content": [{"type": "text", "text": "Hello!"}, {"type": "image"}]},
            ("tool", "42"),
        ]
    )
    assert transcript.text == "User: Hi there\n\nAi: Hello!\n[image]\n\nTool: 42"
    assert [transcript.text[s:e] for s, e in transcript.label_spans] == ["User:", "Ai:", "Tool:"]
    assert transcript.text[slice(*transcript.turn_spans[2])] == "Tool: 42"


def test_render_chat_pages_map_to_turns(dense: TextRenderer) -> None:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": PROSE * 3} for i in range(40)
    ]
    transcript, pages = dense.render_chat(messages, tier="tiny")
    assert len(pages) > 1
    assert_spans_cover(pages, transcript.text)
    covered = [i for page in pages for i in transcript.turns_on(page)]
    assert set(covered) == set(range(40))


def test_chat_labels_are_bold(dense: TextRenderer) -> None:
    _, pages = dense.render_chat([("user", "word")], tier="tiny")
    plain = dense.render("User: word", tier="tiny")[0]
    assert ink(pages[0]) > ink(plain)


def test_looks_like_code() -> None:
    assert looks_like_code("def f():\n    return 1\n\nclass A:\n    pass\n")
    assert looks_like_code('int main() {\n  printf("hi");\n  return 0;\n}\n')
    assert not looks_like_code(PROSE * 3)
    assert not looks_like_code("- a list item\n  continued here\n- another item\n  more\n")


def test_bad_arguments_raise_project_errors(dense: TextRenderer) -> None:
    with pytest.raises(UnknownTierError):
        dense.render("x", tier="huge")
    with pytest.raises(UnknownPresetError):
        TextRenderer(preset="tiny-font")
    with pytest.raises(RenderError):
        dense.render(b"bytes", tier="tiny")  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError):
        dense.render("x", size=(5, 5))
    with pytest.raises(InvalidSettingError):
        dense.render("x", size=("wide", 3))  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError):
        dense.render("x", kind="poetry")  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError):
        TextRenderer(font_size=float("nan"))
    with pytest.raises(InvalidSettingError):
        dense.render("x", size=(20, 200))  # too narrow for the text size
    with pytest.raises(ValueError):
        dense.render("x", tier="")
    assert issubclass(RenderError, OpticalMemoryError)


def test_font_size_override_scales_text(dense: TextRenderer) -> None:
    big = TextRenderer(preset="dense", font_size=12)
    text = PROSE * 50
    assert big.render(text, tier="small")[0].font.size_px == 12
    assert (
        big.render(text, tier="small")[0].span[1] < dense.render(text, tier="small")[0].span[1] / 3
    )


def test_wide_canvas_is_split_into_columns(dense: TextRenderer) -> None:
    page = dense.render(PROSE * 200, tier="large")[0]
    assert page.font.columns == 2
    image = np.asarray(page.image) < 160
    middle = image[:, 630:650]
    assert middle.sum() < image[:, 300:320].sum() / 5  # the gutter is (almost) empty


def test_cjk_and_joined_latin_wrap_within_the_column(dense: TextRenderer) -> None:
    text = ("中文和English混排的段落" * 60) + ("汉字" * 500)
    lines = _layout(dense, text)
    assert len(lines) > 5
    for line in lines:
        end = max(x + entry[0] for x, entry in line.runs)
        assert end <= 600 + 1e-6


def test_line_starts_stay_exact_with_zero_width_characters(dense: TextRenderer) -> None:
    text = "\u200b".join("abcdefghij" * 30) + " e\u0301\u200d x\ufe0f"
    for line in _layout(dense, text):
        first_drawn = line.runs[0][1][3]
        assert text[line.start : line.start + len(first_drawn)] == first_drawn


def test_breaking_a_huge_token_stays_linear(dense: TextRenderer) -> None:
    token = "QUJD" * 20_000  # 80,000 characters with no break opportunity
    pages = dense.render(token, tier="small", kind="prose")
    assert_spans_cover(pages, token)
    cached = dense._typesetter("latin", False).glyphs.table((0, 0))
    # One cached run per drawn line chunk, not one per bisection probe of the token.
    assert sum(len(text) for text in cached) < 3 * len(token)


def test_space_like_control_characters_are_drawn(legible: TextRenderer) -> None:
    for control in ("\x0b", "\x0c", "\x1c", "\x1f"):
        with_control = np.asarray(legible.render(f"a{control}b", tier="tiny")[0].image)
        with_space = np.asarray(legible.render("a b", tier="tiny")[0].image)
        assert (with_control != with_space).any(), repr(control)


def test_chat_accepts_langchain_message_data_and_pairs() -> None:
    transcript = chat_transcript(
        [
            {"type": "human", "data": {"content": "hello there", "type": "human"}},
            {"type": "ai", "data": {"content": [{"type": "text", "text": "hi back"}]}},
            ["tool", "42"],
        ]
    )
    assert transcript.text == "Human: hello there\n\nAi: hi back\n\nTool: 42"


@pytest.mark.parametrize("bad", [None, 7, ["only-one"], (1, "x"), "user: hi"])
def test_malformed_chat_message_is_named(bad: object) -> None:
    with pytest.raises(InvalidSettingError, match="message 1"):
        chat_transcript([("user", "fine"), bad])  # type: ignore[list-item]


def test_custom_presets_are_validated() -> None:
    from optical_memory.renderers.presets import PRESETS, TypeSpec

    with pytest.raises(InvalidSettingError):
        TypeSpec(0.0)
    with pytest.raises(InvalidSettingError):
        dataclasses.replace(PRESETS["dense"], supersample=0)
    with pytest.raises(InvalidSettingError):
        dataclasses.replace(PRESETS["dense"], max_column_px=0)
    with pytest.raises(InvalidSettingError):
        dataclasses.replace(PRESETS["dense"], word_space=-1.0)
    custom = dataclasses.replace(PRESETS["dense"], name="mine", margin=0.05)
    assert TextRenderer(preset=custom).render("x" * 100, tier="tiny")[0].image.size == (512, 512)


def test_iter_pages_checks_arguments_when_called(dense: TextRenderer) -> None:
    with pytest.raises(RenderError):
        dense.iter_pages(None)  # type: ignore[arg-type]
