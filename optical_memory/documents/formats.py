"""Turning one document's bytes into pages: PDF, images, HTML, Markdown and text.

Every format gives numbered pages (from 1) with an image and, where the document says
what the page reads, a reference text: a PDF page's text layer, or the span of the
source text a rendered page shows. Pages are made on demand, a few at a time, so a long
PDF is never held rasterised in memory, and pages already stored are not made again.

Flows:
- ``"image-born"``: the page is an image only (a scan, a photo); its text comes from a
  decoder.
- ``"text-born"``: the document has text (a PDF text layer, HTML, Markdown, plain text);
  text documents are rendered into pages for a reader, PDF pages keep their own look.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Literal, TypeAlias

from PIL import Image

from optical_memory.documents.sources import DocumentSource
from optical_memory.errors import (
    EmptyDocument,
    EncryptedDocument,
    TooManyPages,
    UnreadableDocument,
)

if TYPE_CHECKING:
    from optical_memory.renderers import TextRenderer

__all__ = ["Flow", "OpenedDocument", "SourcePage", "open_document"]

Flow: TypeAlias = Literal["image-born", "text-born"]


@dataclass(frozen=True)
class SourcePage:
    """One page as the document gives it.

    Attributes:
        page_number: Position in the document, from 1.
        image: The page image (RGB or greyscale).
        reference: What the page reads, when the document says so: the PDF text layer or
            the rendered source text; ``None`` for an image-only page.
        flow: ``"text-born"`` when ``reference`` is set, else ``"image-born"``.
    """

    page_number: int
    image: Image.Image
    reference: str | None
    flow: Flow


class OpenedDocument:
    """A document whose pages can be made, by number, any number of times.

    Attributes:
        name: The source's name (for messages).
        page_count: How many pages it has.
    """

    name: str
    page_count: int

    def pages(self, numbers: Sequence[int]) -> Iterator[SourcePage]:
        """Make the pages ``numbers`` (from 1), in that order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the document's resources."""


def open_document(
    source: DocumentSource,
    *,
    dpi: float,
    max_pages: int,
    renderer: TextRenderer,
    tier: str,
) -> OpenedDocument:
    """Open ``source`` and count its pages.

    Args:
        source: The document.
        dpi: Resolution PDF pages are rasterised at.
        max_pages: Largest page count accepted.
        renderer: Draws text-born documents (HTML, Markdown, text).
        tier: The page canvas text is drawn on.

    Raises:
        UnreadableDocument: The bytes are not a readable document of its kind.
        EncryptedDocument: A password-protected PDF.
        EmptyDocument: No pages or no text.
        TooManyPages: More pages than ``max_pages``.
    """
    data = source.read_bytes()
    if not data:
        raise EmptyDocument(f"{source.name}: the file is empty (0 bytes)")
    opened: OpenedDocument
    if source.kind == "pdf":
        opened = _PdfDocument(source.name, data, dpi)
    elif source.kind == "image":
        opened = _ImageDocument(source.name, data)
    else:
        opened = _TextDocument(source, data, renderer, tier)
    if opened.page_count == 0:
        opened.close()
        raise EmptyDocument(f"{source.name}: the document has no pages")
    if opened.page_count > max_pages:
        count = opened.page_count
        opened.close()
        raise TooManyPages(
            f"{source.name}: {count:,} pages is more than the limit of {max_pages:,} "
            "(raise max_pages to ingest it)"
        )
    return opened


class _PdfDocument(OpenedDocument):
    def __init__(self, name: str, data: bytes, dpi: float) -> None:
        import pypdfium2 as pdfium

        self.name = name
        self._scale = dpi / 72
        try:
            self._pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise EncryptedDocument(
                    f"{name}: the PDF is encrypted (password-protected): {exc}"
                ) from exc
            raise UnreadableDocument(f"{name}: not a readable PDF: {exc}") from exc
        self.page_count = len(self._pdf)

    def pages(self, numbers: Sequence[int]) -> Iterator[SourcePage]:
        import pypdfium2 as pdfium

        for number in numbers:
            try:
                page = self._pdf[number - 1]
                try:
                    textpage = page.get_textpage()
                    text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
                    textpage.close()
                    image = page.render(scale=self._scale).to_pil()
                finally:
                    page.close()
            except pdfium.PdfiumError as exc:
                raise UnreadableDocument(
                    f"{self.name}: page {number} is unreadable: {exc}"
                ) from exc
            has_layer = bool(text.strip())
            yield SourcePage(
                number,
                image,
                text if has_layer else None,
                "text-born" if has_layer else "image-born",
            )

    def close(self) -> None:
        self._pdf.close()


class _ImageDocument(OpenedDocument):
    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        try:
            self._image = Image.open(io.BytesIO(data))
            self.page_count = getattr(self._image, "n_frames", 1)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise UnreadableDocument(f"{name}: not a readable image: {exc}") from exc

    def pages(self, numbers: Sequence[int]) -> Iterator[SourcePage]:
        for number in numbers:
            try:
                self._image.seek(number - 1)
                frame = (
                    self._image.convert("RGB")
                    if self._image.mode not in ("L", "RGB")
                    else (self._image.copy())
                )
                frame.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise UnreadableDocument(
                    f"{self.name}: image page {number} cannot be decoded: {exc}"
                ) from exc
            yield SourcePage(number, frame, None, "image-born")

    def close(self) -> None:
        self._image.close()


class _TextDocument(OpenedDocument):
    def __init__(
        self, source: DocumentSource, data: bytes, renderer: TextRenderer, tier: str
    ) -> None:
        self.name = source.name
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnreadableDocument(
                f"{source.name}: not UTF-8 text (byte {exc.start}): {exc.reason}"
            ) from exc
        if "\x00" in text:
            raise UnreadableDocument(f"{source.name}: binary data, not text (NUL bytes)")
        if source.kind == "html":
            text = html_text(text)
        text = text.replace("\r\n", "\n")
        if not text.strip():
            raise EmptyDocument(f"{source.name}: the document has no text")
        self._pages = renderer.render(text, tier=tier, kind="prose")
        self._text = text
        self.page_count = len(self._pages)

    def pages(self, numbers: Sequence[int]) -> Iterator[SourcePage]:
        for number in numbers:
            page = self._pages[number - 1]
            start, end = page.span
            yield SourcePage(number, page.image, self._text[start:end], "text-born")


_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "pre",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "title",
        "dt",
        "dd",
        "figcaption",
        "hr",
    ]
)
_HIDDEN_TAGS = frozenset({"script", "style", "head", "noscript", "template"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The visible text of an HTML document: one line per block, scripts and styles
    left out, runs of blank lines collapsed to one."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    paragraphs: list[str] = []
    for line in lines:
        if line or (paragraphs and paragraphs[-1]):
            paragraphs.append(line)
    return "\n".join(paragraphs).strip()
