"""HtmlRenderer: Markdown and HTML to page images through headless Chromium.

The document is laid out once in a multi-column box one page of content tall, so
Chromium's own fragmentation splits it into pages without cutting a line in half.
Each column is then captured as one page.

Example:
    >>> from optical_memory.renderers import HtmlRenderer
    >>> with HtmlRenderer(preset="dense") as renderer:
    ...     pages = renderer.render_markdown("# Notes\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |")
    >>> pages[0].image.size, pages[0].span
    ((640, 640), (0, 38))

Spans: each page's ``span`` runs from the first source block that starts on it to
the first block that starts on the next page. For Markdown a block is any block
token with a source map (headings, paragraphs, list items, table rows, quotes),
plus every line of a code block and every source line of a hard-wrapped
paragraph. For HTML it is the start tag of any block-level element (``p``,
``div``, ``li``, ``tr``, headings, ...). A page on which no block starts (the
middle of a very long paragraph) gets an empty span.

Empty input renders one blank page with span ``(0, 0)``.

The page runs with JavaScript disabled and every network request aborted, so
rendering is offline and untrusted HTML cannot run scripts or fetch anything.
Images work only as ``data:`` URLs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import TYPE_CHECKING, Any

from PIL import Image

from optical_memory.errors import InvalidSettingError, RenderError, UnknownPresetError

from .html_source import mark_html_blocks, markdown_to_html
from .page import FontSettings, RenderedPage
from .presets import Preset
from .tiers import Tier, TierLike, resolve_canvas

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import BrowserContext as AsyncBrowserContext
    from playwright.async_api import CDPSession as AsyncCDPSession
    from playwright.async_api import Page as AsyncPage
    from playwright.async_api import Playwright as AsyncPlaywright
    from playwright.async_api import Route as AsyncRoute
    from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Playwright, Route

__all__ = ["AsyncHtmlRenderer", "HtmlRenderer", "find_chromium"]

CHROMIUM_ENV = "OPTICAL_MEMORY_CHROMIUM"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
_CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
_INSTALL_HINT = (
    "install the extra with `pip install 'optical-memory[html]'` and a browser with "
    f"`apt install chromium` (or point {CHROMIUM_ENV} at a Chromium executable)"
)
_FAMILY = "DejaVu Sans"

# Fills #om-flow, waits for fonts and images, then reports the number of columns
# (pages), the page each marked block starts on and the text lines on each page.
_LAYOUT_JS = """
async ({html, vars, pitch, gap}) => {
  const root = document.documentElement;
  for (const [name, value] of Object.entries(vars)) root.style.setProperty(name, value);
  const flow = document.getElementById("om-flow");
  flow.innerHTML = html;
  window.scrollTo(0, 0);
  await document.fonts.ready;
  await Promise.all(Array.from(flow.querySelectorAll("img"), (i) => i.decode().catch(() => 0)));
  const pageOf = (rect) => Math.floor(rect.left / pitch);
  let pages = Math.max(1, Math.round((flow.scrollWidth + gap) / pitch));
  const blocks = [];
  for (const el of flow.querySelectorAll("[data-om-src]")) {
    const rects = Array.from(el.getClientRects());
    const first = rects.find((r) => r.height > 0) || rects[0];
    const offset = Number(el.dataset.omSrc);
    if (first && Number.isInteger(offset)) blocks.push([offset, pageOf(first)]);
  }
  const boxes = new Map();
  const range = document.createRange();
  const walker = document.createTreeWalker(flow, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim()) continue;
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width <= 0 || r.height <= 0) continue;
      const page = pageOf(r);
      if (!boxes.has(page)) boxes.set(page, []);
      boxes.get(page).push([r.top, r.bottom]);
    }
  }
  const lines = [];
  for (const [page, spans] of boxes) {
    pages = Math.max(pages, page + 1);
    spans.sort((a, b) => a[0] - b[0]);
    let count = 0;
    let bottom = -Infinity;
    for (const [top, end] of spans) {
      if (top >= bottom - 1) count += 1;
      bottom = Math.max(top >= bottom - 1 ? end : bottom, end);
    }
    lines.push([page, count]);
  }
  return {pages, blocks, lines};
}
"""


@dataclass(frozen=True)
class _Style:
    """A preset: body px, line height in ems, margin as a fraction of the side, supersampling."""

    font_px: float
    line_height: float
    margin: float
    device_scale: int


# Supersampling lifts tesseract's word accuracy on 7 px text from 0.45 to 0.57 and does
# nothing at 13 px, where it would only cost four times the pixels.
_PRESETS = {
    "dense": _Style(font_px=7.0, line_height=1.15, margin=0.01, device_scale=2),
    "legible": _Style(font_px=13.0, line_height=1.3, margin=0.02, device_scale=1),
}


@dataclass(frozen=True)
class _Geometry:
    width: int
    height: int
    margin: int
    tier: Tier | None


@dataclass(frozen=True)
class _Job:
    """One document to lay out: everything the browser needs, and the source to map back to."""

    source: str
    kind: str
    geometry: _Geometry
    script_args: dict[str, Any]


@dataclass(frozen=True)
class _Layout:
    pages: int
    blocks: list[tuple[int, int]]
    lines: dict[int, int]

    @classmethod
    def parse(cls, raw: Any) -> _Layout:
        return cls(
            pages=int(raw["pages"]),
            blocks=[(int(offset), int(page)) for offset, page in raw["blocks"]],
            lines={int(page): int(count) for page, count in raw["lines"]},
        )


def find_chromium() -> str | None:
    """Return the Chromium executable HtmlRenderer will launch, or ``None`` for Playwright's own.

    Looks at the ``OPTICAL_MEMORY_CHROMIUM`` environment variable, then for
    ``chromium``, ``chromium-browser`` and ``google-chrome`` on ``PATH``.

    Raises:
        RenderError: ``OPTICAL_MEMORY_CHROMIUM`` names a file that does not exist.
    """
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise RenderError(f"{CHROMIUM_ENV}={configured!r} is not an executable file")
        return found
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def _page_spans(layout: _Layout, length: int) -> list[tuple[int, int]]:
    """Page i shows [first block offset on page >= i, first block offset on page >= i+1)."""
    count = layout.pages
    bounds = [length] * (count + 1)
    for offset, page in layout.blocks:
        if not 0 <= offset <= length:
            continue  # a data-om-src the source itself carried, not one of ours
        index = min(max(page, 0), count - 1)
        bounds[index] = min(bounds[index], offset)
    for index in range(count - 1, 0, -1):
        bounds[index] = min(bounds[index], bounds[index + 1])
    bounds[0] = 0
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def _stylesheet() -> str:
    return (
        resources.files(__package__ or "optical_memory.renderers")
        .joinpath("html.css")
        .read_text(encoding="utf-8")
    )


def _style_of(preset: str | Preset) -> _Style:
    """The CSS settings of a named preset, or those of a custom :class:`Preset`."""
    if isinstance(preset, Preset):
        body = preset.latin_prose
        return _Style(body.size_px, body.line_pitch, preset.margin, preset.supersample)
    style = _PRESETS.get(preset.strip().lower()) if isinstance(preset, str) else None
    if style is None:
        names = ", ".join(_PRESETS)
        raise UnknownPresetError(f"unknown preset {preset!r}; expected one of: {names}")
    return style


class _HtmlRendererBase:
    """Everything HtmlRenderer and AsyncHtmlRenderer share: settings, layout jobs, pages."""

    def __init__(
        self,
        preset: str | Preset = "legible",
        *,
        font_size_px: float | None = None,
        line_height: float | None = None,
        device_scale: int | None = None,
        executable_path: str | None = None,
    ) -> None:
        style = _style_of(preset)
        if font_size_px is not None and font_size_px <= 0:
            raise InvalidSettingError(f"font_size_px must be positive, got {font_size_px!r}")
        if line_height is not None and line_height <= 0:
            raise InvalidSettingError(f"line_height must be positive, got {line_height!r}")
        if device_scale is None:
            device_scale = style.device_scale
        if device_scale < 1:
            raise InvalidSettingError(f"device_scale must be 1 or more, got {device_scale!r}")
        self.preset = preset if isinstance(preset, str) else preset.name
        self.font_size_px = font_size_px if font_size_px is not None else style.font_px
        self.line_height = line_height if line_height is not None else style.line_height
        self.device_scale = device_scale
        self.executable_path = executable_path
        self._margin_fraction = style.margin
        self._shell = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<style>{_stylesheet()}</style></head>"
            '<body><div id="om-flow"></div></body></html>'
        )

    @property
    def font(self) -> FontSettings:
        """The font settings every page of this renderer is drawn with."""
        return FontSettings(
            family=_FAMILY,
            size_px=self.font_size_px,
            line_pitch=self.line_height,
            supersample=self.device_scale,
            columns=1,
        )

    def _geometry(self, tier: TierLike, size: tuple[int, int] | None) -> _Geometry:
        resolved, (width, height) = resolve_canvas(tier, size)
        margin = max(1, round(min(width, height) * self._margin_fraction))
        return _Geometry(width=width, height=height, margin=margin, tier=resolved)

    def _job(self, source: str, kind: str, tier: TierLike, size: tuple[int, int] | None) -> _Job:
        if not isinstance(source, str):
            raise RenderError(f"{kind} source must be a str, got {type(source).__name__}")
        geometry = self._geometry(tier, size)
        body = markdown_to_html(source) if kind == "markdown" else mark_html_blocks(source)
        css_vars = {
            "--om-page-width": f"{geometry.width}px",
            "--om-page-height": f"{geometry.height}px",
            "--om-margin": f"{geometry.margin}px",
            "--om-font-size": f"{self.font_size_px}px",
            "--om-line-height": str(self.line_height),
        }
        args = {"html": body, "vars": css_vars, "pitch": geometry.width, "gap": 2 * geometry.margin}
        return _Job(source=source, kind=kind, geometry=geometry, script_args=args)

    def _launch_options(self) -> dict[str, Any]:
        path = self.executable_path or find_chromium()
        return {"executable_path": path, "args": list(_CHROMIUM_ARGS), "headless": True}

    def _context_options(self) -> dict[str, Any]:
        return {
            "no_viewport": True,
            "java_script_enabled": False,
            "offline": True,
        }

    def _launch_error(self, exc: Exception) -> RenderError:
        path = self.executable_path or find_chromium()
        tried = (
            f"executable {path!r}"
            if path
            else f"${CHROMIUM_ENV}, {', '.join(_CHROMIUM_NAMES)} on PATH and Playwright's browser"
        )
        return RenderError(f"could not launch Chromium (tried {tried}): {exc}; {_INSTALL_HINT}")

    def _viewport(self, geometry: _Geometry) -> dict[str, Any]:
        """CDP metrics for one page; set on our own CDP session, whose captures would reset
        an override made through Playwright's session."""
        return {
            "width": geometry.width,
            "height": geometry.height,
            "deviceScaleFactor": self.device_scale,
            "mobile": False,
        }

    @staticmethod
    def _scroll(geometry: _Geometry, index: int) -> dict[str, Any]:
        """Scroll page ``index`` into the viewport: Chromium only captures what is in view."""
        return {"expression": f"window.scrollTo({index * geometry.width}, 0)"}

    @staticmethod
    def _clip(geometry: _Geometry, index: int) -> dict[str, Any]:
        return {
            "format": "png",
            "clip": {
                "x": index * geometry.width,
                "y": 0,
                "width": geometry.width,
                "height": geometry.height,
                "scale": 1,
            },
            "optimizeForSpeed": True,
        }

    def _pages(self, job: _Job, layout: _Layout, captures: list[str]) -> list[RenderedPage]:
        geometry = job.geometry
        spans = _page_spans(layout, len(job.source))
        font = self.font
        pages = []
        for index, (capture, span) in enumerate(zip(captures, spans, strict=True)):
            image = Image.open(io.BytesIO(base64.b64decode(capture))).convert("L")
            # Lanczos keeps supersampled glyphs sharp: box or DCT halving costs OCR accuracy.
            if image.size != (geometry.width, geometry.height):
                image = image.resize((geometry.width, geometry.height), Image.Resampling.LANCZOS)
            pages.append(
                RenderedPage(
                    image=image,
                    span=span,
                    tier=geometry.tier,
                    font=font,
                    line_count=layout.lines.get(index, 0),
                    index=index,
                    metadata={"renderer": "html", "source": job.kind},
                )
            )
        return pages


def _abort_sync(route: Route) -> None:
    if route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort()


async def _abort_async(route: AsyncRoute) -> None:
    if route.request.url.startswith("data:"):
        await route.continue_()
    else:
        await route.abort()


class _SharedSyncBrowser(threading.local):
    """One Playwright driver and Chromium per thread: the sync API allows one driver a thread."""

    playwright: Playwright | None = None
    browser: Browser | None = None
    users: int = 0

    def acquire(self, launch: Callable[[Playwright], Browser]) -> Browser:
        if self.browser is None or not self.browser.is_connected():
            from playwright.sync_api import sync_playwright

            if self.playwright is None:
                self.playwright = sync_playwright().start()
            try:
                self.browser = launch(self.playwright)
            except Exception:
                if self.users == 0:
                    self.playwright.stop()
                    self.playwright = None
                raise
        self.users += 1
        return self.browser

    def release(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users:
            return
        browser, playwright = self.browser, self.playwright
        self.browser = self.playwright = None
        try:
            if browser is not None and browser.is_connected():
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()  # always, or the driver process outlives us


_SHARED = _SharedSyncBrowser()


def _import_error(exc: ImportError) -> RenderError:
    return RenderError(f"HtmlRenderer needs Playwright ({exc}); {_INSTALL_HINT}")


class HtmlRenderer(_HtmlRendererBase):
    """Render Markdown and HTML into page images with headless Chromium.

    Chromium starts on first use and is shared by every ``HtmlRenderer`` of the
    thread; each renderer keeps one browser tab and reuses it for every document.
    Not thread-safe: use one renderer per thread, or ``AsyncHtmlRenderer``.

    Args:
        preset: ``"dense"`` (7 px DejaVu Sans, line height 1.15, 1 % margins) or
            ``"legible"`` (13 px, line height 1.3, 2 % margins; readable by hosted
            multimodal models).
        font_size_px: Body text size in final-image pixels, overriding the preset.
        line_height: Line height in ems, overriding the preset.
        device_scale: Pages are drawn at this many device pixels per pixel and
            downsampled; 2 makes small glyphs sharper but costs about four times as
            long. Defaults to the preset's (2 for ``"dense"``, 1 for ``"legible"``).
        executable_path: Chromium to launch; defaults to :func:`find_chromium`.

    Raises:
        UnknownPresetError: ``preset`` is not a known preset.

    Example:
        >>> with HtmlRenderer(preset="legible") as renderer:
        ...     pages = renderer.render_html("<h1>Title</h1><p>Body</p>", tier="tiny")
        >>> len(pages), pages[0].size
        (1, (512, 512))
    """

    def __init__(
        self,
        preset: str | Preset = "legible",
        *,
        font_size_px: float | None = None,
        line_height: float | None = None,
        device_scale: int | None = None,
        executable_path: str | None = None,
    ) -> None:
        super().__init__(
            preset,
            font_size_px=font_size_px,
            line_height=line_height,
            device_scale=device_scale,
            executable_path=executable_path,
        )
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._cdp: CDPSession | None = None

    @property
    def browser(self) -> Browser | None:
        """The Chromium this renderer uses, or ``None`` before the first render."""
        return self._browser

    def render_markdown(
        self, text: str, tier: TierLike = "small", *, size: tuple[int, int] | None = None
    ) -> list[RenderedPage]:
        """Render CommonMark (with tables) into pages.

        Args:
            text: Markdown source; spans index into it.
            tier: Canvas to draw on.
            size: ``(width, height)`` of a custom canvas; overrides ``tier``.

        Returns:
            At least one page; their spans cover ``text`` with no gap or overlap.

        Raises:
            RenderError: Playwright or Chromium is missing, or the browser failed.
            UnknownTierError: ``tier`` names no tier.
        """
        return self._render(self._job(text, "markdown", tier, size))

    def render_html(
        self, html: str, tier: TierLike = "small", *, size: tuple[int, int] | None = None
    ) -> list[RenderedPage]:
        """Render an HTML fragment or document into pages.

        Args:
            html: HTML source; spans index into it at block-level start tags.
            tier: Canvas to draw on.
            size: ``(width, height)`` of a custom canvas; overrides ``tier``.

        Returns:
            At least one page; their spans cover ``html`` with no gap or overlap.

        Raises:
            RenderError: Playwright or Chromium is missing, or the browser failed.
            UnknownTierError: ``tier`` names no tier.
        """
        return self._render(self._job(html, "html", tier, size))

    def close(self) -> None:
        """Close this renderer's tab, and Chromium when no other renderer of the thread uses it."""
        context, self._context, self._page, self._cdp = self._context, None, None, None
        if self._browser is None:
            return
        self._browser = None
        try:
            if context is not None:
                context.close()
        finally:
            _SHARED.release()

    def __enter__(self) -> HtmlRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _render(self, job: _Job) -> list[RenderedPage]:
        try:
            from playwright.sync_api import Error
        except ImportError as exc:
            raise _import_error(exc) from exc
        page, cdp = self._open()
        geometry = job.geometry
        try:
            cdp.send("Emulation.setDeviceMetricsOverride", self._viewport(geometry))
            layout = _Layout.parse(page.evaluate(_LAYOUT_JS, job.script_args))
            captures = []
            for index in range(layout.pages):
                cdp.send("Runtime.evaluate", self._scroll(geometry, index))
                capture = cdp.send("Page.captureScreenshot", self._clip(geometry, index))
                captures.append(capture["data"])
        except Error as exc:
            raise RenderError(f"Chromium failed to render the {job.kind} document: {exc}") from exc
        return self._pages(job, layout, captures)

    def _open(self) -> tuple[Page, CDPSession]:
        if self._page is not None and self._cdp is not None and not self._page.is_closed():
            return self._page, self._cdp
        try:
            from playwright.sync_api import Error
        except ImportError as exc:
            raise _import_error(exc) from exc
        if self._browser is None:
            try:
                self._browser = _SHARED.acquire(
                    lambda pw: pw.chromium.launch(**self._launch_options())
                )
            except Error as exc:
                raise self._launch_error(exc) from exc
        try:
            self._context = self._browser.new_context(**self._context_options())
            self._context.route("**/*", _abort_sync)
            self._page = self._context.new_page()
            self._page.set_content(self._shell)
            self._cdp = self._context.new_cdp_session(self._page)
        except Error as exc:
            raise RenderError(f"could not open a Chromium tab: {exc}") from exc
        return self._page, self._cdp


class AsyncHtmlRenderer(_HtmlRendererBase):
    """Async twin of :class:`HtmlRenderer`: same arguments, ``await`` the renders.

    Each renderer launches its own Chromium on first use and reuses it and one tab
    for every document; concurrent renders on one renderer run one at a time.

    Example:
        >>> async with AsyncHtmlRenderer(preset="dense") as renderer:
        ...     pages = await renderer.render_markdown("# Notes\\n\\nSome text.")
    """

    def __init__(
        self,
        preset: str | Preset = "legible",
        *,
        font_size_px: float | None = None,
        line_height: float | None = None,
        device_scale: int | None = None,
        executable_path: str | None = None,
    ) -> None:
        super().__init__(
            preset,
            font_size_px=font_size_px,
            line_height=line_height,
            device_scale=device_scale,
            executable_path=executable_path,
        )
        self._playwright: AsyncPlaywright | None = None
        self._browser: AsyncBrowser | None = None
        self._context: AsyncBrowserContext | None = None
        self._page: AsyncPage | None = None
        self._cdp: AsyncCDPSession | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def browser(self) -> AsyncBrowser | None:
        """The Chromium this renderer uses, or ``None`` before the first render."""
        return self._browser

    async def render_markdown(
        self, text: str, tier: TierLike = "small", *, size: tuple[int, int] | None = None
    ) -> list[RenderedPage]:
        """Render CommonMark (with tables) into pages; see :meth:`HtmlRenderer.render_markdown`."""
        return await self._render(self._job(text, "markdown", tier, size))

    async def render_html(
        self, html: str, tier: TierLike = "small", *, size: tuple[int, int] | None = None
    ) -> list[RenderedPage]:
        """Render an HTML fragment or document into pages; see :meth:`HtmlRenderer.render_html`."""
        return await self._render(self._job(html, "html", tier, size))

    async def aclose(self) -> None:
        """Close the tab, Chromium and the Playwright driver."""
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        self._context = self._page = self._cdp = None
        try:
            if browser is not None and browser.is_connected():
                await browser.close()
        finally:
            if playwright is not None:
                await playwright.stop()

    async def __aenter__(self) -> AsyncHtmlRenderer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _render(self, job: _Job) -> list[RenderedPage]:
        try:
            from playwright.async_api import Error
        except ImportError as exc:
            raise _import_error(exc) from exc
        if self._lock is None:
            self._lock = asyncio.Lock()
        geometry = job.geometry
        async with self._lock:
            page, cdp = await self._open()
            try:
                await cdp.send("Emulation.setDeviceMetricsOverride", self._viewport(geometry))
                layout = _Layout.parse(await page.evaluate(_LAYOUT_JS, job.script_args))
                captures = []
                for index in range(layout.pages):
                    await cdp.send("Runtime.evaluate", self._scroll(geometry, index))
                    capture = await cdp.send("Page.captureScreenshot", self._clip(geometry, index))
                    captures.append(capture["data"])
            except Error as exc:
                message = f"Chromium failed to render the {job.kind} document: {exc}"
                raise RenderError(message) from exc
        return self._pages(job, layout, captures)

    async def _open(self) -> tuple[AsyncPage, AsyncCDPSession]:
        if self._page is not None and self._cdp is not None and not self._page.is_closed():
            return self._page, self._cdp
        try:
            from playwright.async_api import Error, async_playwright
        except ImportError as exc:
            raise _import_error(exc) from exc
        if self._browser is None:
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            try:
                self._browser = await self._playwright.chromium.launch(**self._launch_options())
            except Error as exc:
                raise self._launch_error(exc) from exc
        try:
            self._context = await self._browser.new_context(**self._context_options())
            await self._context.route("**/*", _abort_async)
            self._page = await self._context.new_page()
            await self._page.set_content(self._shell)
            self._cdp = await self._context.new_cdp_session(self._page)
        except Error as exc:
            raise RenderError(f"could not open a Chromium tab: {exc}") from exc
        return self._page, self._cdp
