"""HtmlRenderer against a real headless Chromium (no mocks)."""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Iterator

import numpy as np
import pytest

from optical_memory.errors import RenderError
from optical_memory.renderers import RenderedPage, Tier
from optical_memory.renderers.html import AsyncHtmlRenderer, HtmlRenderer

PROSE = "The quick brown fox jumps over the lazy dog while the compressor keeps counting. "
TABLE = "| name | value | note |\n|---|---|---|\n" + "".join(
    f"| row {i} | {i * i} | some words in a cell |\n" for i in range(12)
)
CODE = "```python\ndef square(x):\n    return x * x  # keeps indentation\n```\n"


def require_browser(exc: Exception) -> None:
    """Fail in CI (``CI=true``), where Chromium must be installed; skip elsewhere."""
    reason = f"HtmlRenderer needs Playwright and Chromium: {exc}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def renderer() -> Iterator[HtmlRenderer]:
    renderer = HtmlRenderer(preset="dense")
    try:
        renderer.render_markdown("warm up", tier="tiny")
    except RenderError as exc:
        renderer.close()
        require_browser(exc)
    yield renderer
    renderer.close()


def markdown_document(sections: int) -> str:
    parts = [f"## Section {i}\n\n{PROSE * 12}\n\n{TABLE}\n{CODE}" for i in range(sections)]
    return "# Notes\n\n" + "\n".join(parts)


def dark_fraction(page: RenderedPage, box: tuple[int, int, int, int] | None = None) -> float:
    pixels = np.asarray(page.image.convert("L").crop(box) if box else page.image.convert("L"))
    return float((pixels < 128).mean())


def assert_spans_cover(pages: list[RenderedPage], source: str) -> None:
    assert pages[0].span[0] == 0
    assert pages[-1].span[1] == len(source)
    for before, after in itertools.pairwise(pages):
        assert before.span[1] == after.span[0]
    assert all(start <= end for start, end in (page.span for page in pages))
    assert [page.index for page in pages] == list(range(len(pages)))


def test_page_count_grows_with_text(renderer: HtmlRenderer) -> None:
    short = renderer.render_markdown(markdown_document(1), tier="small")
    long = renderer.render_markdown(markdown_document(12), tier="small")
    assert len(short) == 1
    assert len(long) > 3


@pytest.mark.parametrize("tier", list(Tier))
def test_page_size_matches_tier(renderer: HtmlRenderer, tier: Tier) -> None:
    pages = renderer.render_markdown(markdown_document(2), tier=tier.label)
    assert all(page.size == tier.size and page.tier is tier for page in pages)
    assert pages[0].font.family == "DejaVu Sans"
    assert pages[0].font.supersample == 2


def test_custom_size(renderer: HtmlRenderer) -> None:
    pages = renderer.render_markdown(markdown_document(2), size=(400, 300))
    assert all(page.size == (400, 300) and page.tier is None for page in pages)


def test_markdown_spans_cover_source(renderer: HtmlRenderer) -> None:
    source = markdown_document(10) + "\n" + "\n".join(f"line {i} of a long code" for i in range(3))
    pages = renderer.render_markdown(source, tier="tiny")
    assert len(pages) > 3
    assert_spans_cover(pages, source)
    # Later pages start where a block of the source starts.
    assert all(source[page.span[0] - 1] == "\n" for page in pages[1:] if page.span[0])


def test_html_spans_start_at_block_tags(renderer: HtmlRenderer) -> None:
    source = "".join(f"<h2>Part {i}</h2><p>{PROSE * 10}</p>" for i in range(20))
    pages = renderer.render_html(source, tier="tiny")
    assert len(pages) > 2
    assert_spans_cover(pages, source)
    assert all(source[page.span[0]] == "<" for page in pages[1:] if page.span[0] < len(source))


def test_lines_are_never_cut(renderer: HtmlRenderer) -> None:
    source = "\n\n".join(PROSE * (5 + i % 7) for i in range(60)) + "\n\n" + CODE * 20
    pages = renderer.render_markdown(source, tier="small")
    margin = 6
    assert len(pages) > 2
    for page in pages:
        width, height = page.size
        # A line split between pages would spill ink into the top or bottom margin.
        assert dark_fraction(page, (0, 0, width, margin - 1)) == 0
        assert dark_fraction(page, (0, height - margin + 1, width, height)) == 0
        assert page.line_count > 0


def test_table_and_code_render(renderer: HtmlRenderer) -> None:
    pages = renderer.render_markdown(TABLE + "\n" + CODE, tier="small")
    assert len(pages) == 1
    page = pages[0]
    # Table rows and the code block sit in the top third; the rest stays blank.
    assert dark_fraction(page, (0, 0, 640, 200)) > 0.005
    assert dark_fraction(page, (0, 300, 640, 640)) == 0
    assert page.line_count >= 15


def test_raw_html_cannot_escape_the_page_flow(renderer: HtmlRenderer) -> None:
    source = "</div></body><p>" + PROSE * 400 + "</p>"
    pages = renderer.render_html(source, tier="tiny")
    assert len(pages) > 1
    assert all(page.size == (512, 512) for page in pages)


def test_network_is_blocked(renderer: HtmlRenderer) -> None:
    source = '<img src="http://192.0.2.1/never.png"><p>offline</p>'
    pages = renderer.render_html(source, tier="tiny")
    assert len(pages) == 1


def test_cjk_and_emoji(renderer: HtmlRenderer) -> None:
    source = "# 标题\n\n中文文本，日本語のテキスト，한국어 텍스트。😀 🚀 ✓ ∑ → ★\n"
    pages = renderer.render_markdown(source, tier="tiny")
    assert len(pages) == 1
    assert dark_fraction(pages[0]) > 0.0003


def test_empty_text_gives_one_blank_page(renderer: HtmlRenderer) -> None:
    pages = renderer.render_markdown("", tier="tiny")
    assert len(pages) == 1
    assert pages[0].span == (0, 0)
    assert dark_fraction(pages[0]) == 0


def test_browser_is_reused(renderer: HtmlRenderer) -> None:
    browser = renderer.browser
    renderer.render_markdown("one", tier="tiny")
    renderer.render_html("<p>two</p>", tier="small")
    assert renderer.browser is browser is not None
    with HtmlRenderer(preset="legible") as other:
        other.render_markdown("three", tier="tiny")
        assert other.browser is browser
    assert browser.is_connected()


def test_twins_share_signatures() -> None:
    for name in ("__init__", "render_markdown", "render_html"):
        sync = inspect.signature(getattr(HtmlRenderer, name))
        asynchronous = inspect.signature(getattr(AsyncHtmlRenderer, name))
        assert sync == asynchronous, name
