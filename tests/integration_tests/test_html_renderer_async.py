"""AsyncHtmlRenderer against a real headless Chromium: mirrors test_html_renderer.py."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from optical_memory.errors import RenderError
from optical_memory.renderers import RenderedPage, Tier
from optical_memory.renderers.html import AsyncHtmlRenderer

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROSE = "The quick brown fox jumps over the lazy dog while the compressor keeps counting. "
TABLE = "| name | value | note |\n|---|---|---|\n" + "".join(
    f"| row {i} | {i * i} | some words in a cell |\n" for i in range(12)
)
CODE = "```python\ndef square(x):\n    return x * x  # keeps indentation\n```\n"


def require_browser(exc: Exception) -> None:
    """Fail in CI (``CI=true``), where Chromium must be installed; skip elsewhere."""
    reason = f"AsyncHtmlRenderer needs Playwright and Chromium: {exc}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def renderer() -> AsyncIterator[AsyncHtmlRenderer]:
    renderer = AsyncHtmlRenderer(preset="dense")
    try:
        await renderer.render_markdown("warm up", tier="tiny")
    except RenderError as exc:
        await renderer.aclose()
        require_browser(exc)
    yield renderer
    await renderer.aclose()


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


async def test_page_count_grows_with_text(renderer: AsyncHtmlRenderer) -> None:
    short = await renderer.render_markdown(markdown_document(1), tier="small")
    long = await renderer.render_markdown(markdown_document(12), tier="small")
    assert len(short) == 1
    assert len(long) > 3


@pytest.mark.parametrize("tier", [Tier.TINY, Tier.LARGE])
async def test_page_size_matches_tier(renderer: AsyncHtmlRenderer, tier: Tier) -> None:
    pages = await renderer.render_markdown(markdown_document(2), tier=tier)
    assert all(page.size == tier.size and page.tier is tier for page in pages)


async def test_spans_cover_source(renderer: AsyncHtmlRenderer) -> None:
    source = markdown_document(10)
    pages = await renderer.render_markdown(source, tier="tiny")
    assert len(pages) > 3
    assert_spans_cover(pages, source)
    html = "".join(f"<h2>Part {i}</h2><p>{PROSE * 10}</p>" for i in range(20))
    assert_spans_cover(await renderer.render_html(html, tier="tiny"), html)


async def test_table_and_code_render(renderer: AsyncHtmlRenderer) -> None:
    pages = await renderer.render_markdown(TABLE + "\n" + CODE, tier="small")
    assert len(pages) == 1
    assert dark_fraction(pages[0], (0, 0, 640, 200)) > 0.005
    assert dark_fraction(pages[0], (0, 300, 640, 640)) == 0


async def test_cjk_and_emoji(renderer: AsyncHtmlRenderer) -> None:
    source = "# 标题\n\n中文文本，日本語のテキスト，한국어 텍스트。😀 🚀 ✓ ∑ → ★\n"
    pages = await renderer.render_markdown(source, tier="tiny")
    assert len(pages) == 1
    assert dark_fraction(pages[0]) > 0.0003


async def test_empty_text_gives_one_blank_page(renderer: AsyncHtmlRenderer) -> None:
    pages = await renderer.render_markdown("", tier="tiny")
    assert len(pages) == 1
    assert pages[0].span == (0, 0)


async def test_concurrent_renders_share_one_tab(renderer: AsyncHtmlRenderer) -> None:
    browser = renderer.browser
    sources = [markdown_document(n) for n in (1, 3, 6)]
    results = await asyncio.gather(*(renderer.render_markdown(s, tier="tiny") for s in sources))
    for source, pages in zip(sources, results, strict=True):
        assert_spans_cover(pages, source)
    assert [len(pages) for pages in results] == sorted(len(pages) for pages in results)
    assert renderer.browser is browser is not None
