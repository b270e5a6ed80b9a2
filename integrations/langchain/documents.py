"""The RAG front end as LangChain document loaders, blob parsers and transformers.

::

    OpticalPageParser          BaseBlobParser: a PDF or image blob -> a Document per page
    OpticalDocumentLoader      BaseLoader: lazy, resumable ingestion into a store
    OpticalDocumentTransformer BaseDocumentTransformer: long Documents -> page Documents

A ``Document`` holds text only, so page images stay in the optical-memory store and
the page Documents name them in their metadata: ``optical_key`` (the store key of the
PNG, read with :meth:`DocumentPageStore.image`), ``mime_type`` and ``vision_tokens``
(the key of cached DeepSeek-OCR tokens, or ``None``). ``page`` counts from 1.

Example:
    >>> loader = OpticalDocumentLoader(["reports/"], store="sqlite:///docs.db",
    ...                                decoder="tesseract")
    >>> for document in loader.lazy_load():
    ...     index(document.page_content, document.metadata["optical_key"])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_core.document_loaders import BaseBlobParser, BaseLoader
from langchain_core.document_loaders.blob_loaders import Blob
from langchain_core.documents import BaseDocumentTransformer, Document

from optical_memory.documents import IngestedPage, ingest
from optical_memory.documents.formats import open_document
from optical_memory.documents.ingestion import DEFAULT_DPI, DEFAULT_MAX_PAGES, IngestSettings
from optical_memory.documents.pages import DecoderSpec, finish, prepare, resolve_decoder
from optical_memory.documents.sources import (
    DocumentKind,
    DocumentSource,
    SourceLike,
    expand_sources,
    text_source,
)
from optical_memory.errors import DocumentError

if TYPE_CHECKING:
    from optical_memory.renderers import TextRenderer
    from optical_memory.store import Store
    from optical_memory.vision_encoder import Encoder

__all__ = ["OpticalDocumentLoader", "OpticalDocumentTransformer", "OpticalPageParser"]

_BATCH = 4
_TEXT_KINDS: dict[str, DocumentKind] = {
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
}


def page_document(page: IngestedPage, metadata: dict[str, Any] | None = None) -> Document:
    """The LangChain view of a stored page: its text, and where its image is."""
    return Document(
        page_content=page.text,
        id=page.key,
        metadata={
            **(metadata or {}),
            "source": page.source,
            "page": page.page_number,
            "flow": page.flow,
            "decoder": page.decoder,
            "accuracy": page.accuracy,
            "sha256": page.sha256,
            "optical_key": page.key,
            "mime_type": "image/png",
            "vision_tokens": page.vision_tokens,
        },
    )


class OpticalPageParser(BaseBlobParser):
    """Parses a document blob (PDF, PNG/JPEG/TIFF, HTML, Markdown, text) into one
    ``Document`` per page; image-only pages are read by ``decoder``. Nothing is stored.

    Args:
        decoder: A decoder, its name (``"tesseract"``, ``"rapidocr"``) or a function
            making one. Pages with a text layer keep it, with read-back accuracy in the
            metadata.
        dpi: Resolution PDF pages are rasterised at.
        reader: The reader profile text documents are rendered for.
        max_pages: A document with more pages raises ``TooManyPages``.
    """

    def __init__(
        self,
        decoder: DecoderSpec | None = None,
        *,
        dpi: float = DEFAULT_DPI,
        reader: str = "deepseek-ocr",
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.decoder = resolve_decoder(decoder)
        self.settings = IngestSettings(dpi=float(dpi), max_pages=max_pages, reader=reader)

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """Yield the blob's pages in order.

        Raises:
            DocumentError: The blob is no readable document (its subclass says why).
        """
        name = str(blob.source or blob.path or "blob")
        found, bad = expand_sources([(name, blob.as_bytes())])
        if bad:
            raise bad[0].error
        source = found[0]
        renderer, tier = self.settings.page_renderer(None)
        document = open_document(
            source,
            dpi=self.settings.dpi,
            max_pages=self.settings.max_pages,
            renderer=renderer,
            tier=tier,
        )
        try:
            numbers = list(range(1, document.page_count + 1))
            for start in range(0, len(numbers), _BATCH):
                prepared = [
                    prepare(page) for page in document.pages(numbers[start : start + _BATCH])
                ]
                for stored in finish(name, source.sha256, "", prepared, self.decoder):
                    record = stored.record
                    yield Document(
                        page_content=record.text,
                        metadata={
                            **blob.metadata,
                            "source": name,
                            "page": record.page_number,
                            "flow": record.flow,
                            "decoder": record.decoder,
                            "accuracy": record.accuracy,
                        },
                    )
        finally:
            document.close()


class OpticalDocumentLoader(BaseLoader):
    """Ingests documents into a store, one at a time, yielding their page Documents.

    Ingestion is resumable: documents already complete in the store are read back, not
    made again. A document that fails raises its ``DocumentError`` when reached (after the
    pages of those before it were yielded), unless ``skip_failures`` is set; skipped
    failures are listed in :attr:`failures`.

    Args:
        sources: Paths, folders, globs, bytes, or ``(name, bytes)`` pairs.
        store: A store or store URL.
        skip_failures: Go on past documents that fail instead of raising.
        **options: Passed to :func:`~optical_memory.documents.ingest` (``decoder``,
            ``reader``, ``dpi``, ``encoder``, ``tenant`` ...).
    """

    def __init__(
        self,
        sources: SourceLike | Iterable[SourceLike],
        *,
        store: Store | str,
        skip_failures: bool = False,
        **options: Any,
    ) -> None:
        self.sources: list[SourceLike] = (
            [sources]
            if isinstance(sources, (str, bytes, tuple, Path, DocumentSource))
            else list(cast("Iterable[SourceLike]", sources))
        )
        self.store = store
        self.skip_failures = skip_failures
        self.options = options
        self.failures: list[str] = []

    def lazy_load(self) -> Iterator[Document]:
        """Yield each document's pages once it is ingested."""
        for source in self.sources:
            summary = ingest([source], store=self.store, **self.options)
            for failure in summary.failures:
                if not self.skip_failures:
                    raise DocumentError(f"{failure.error}: {failure.reason}")
                self.failures.append(f"{failure.source}: {failure.reason}")
            yield from (page_document(page) for page in summary.pages)


class OpticalDocumentTransformer(BaseDocumentTransformer):
    """Turns long text Documents into page Documents (the text-born flow).

    Each Document's text is rendered into pages for the reader and stored; each page
    comes back as a Document with the page's text, the original metadata and
    ``page``, ``optical_key`` (the page image's store key, also the Document's id),
    ``mime_type`` and ``vision_tokens``. A Document whose ``source`` metadata ends in
    ``.html`` or ``.md`` is read as HTML or Markdown.

    Args:
        store: A store or store URL for the page images.
        reader: The reader profile pages are drawn for (default ``"deepseek-ocr"``).
        renderer: A custom text renderer.
        encoder: Makes DeepSeek-OCR vision tokens for every page.
        decoder: Reads pages back to measure their accuracy (optional).
    """

    def __init__(
        self,
        store: Store | str,
        *,
        reader: str | None = None,
        renderer: TextRenderer | None = None,
        encoder: Encoder | None = None,
        decoder: DecoderSpec | None = None,
    ) -> None:
        self.store = store
        self.options: dict[str, Any] = {
            "reader": reader,
            "renderer": renderer,
            "encoder": encoder,
            "decoder": decoder,
        }

    def transform_documents(
        self, documents: Sequence[Document], **kwargs: Any
    ) -> Sequence[Document]:
        """Page Documents of every Document, in order.

        Raises:
            DocumentError: A Document has no text.
        """
        pages: list[Document] = []
        for position, document in enumerate(documents):
            name = str(document.metadata.get("source") or document.id or f"document[{position}]")
            kind = _TEXT_KINDS.get(Path(name).suffix.lower(), "text")
            source = text_source(name, document.page_content)
            summary = ingest([replace(source, kind=kind)], store=self.store, **self.options)
            if summary.failures:
                failure = summary.failures[0]
                raise DocumentError(f"{failure.error}: {failure.reason}")
            pages.extend(page_document(page, document.metadata) for page in summary.pages)
        return pages
