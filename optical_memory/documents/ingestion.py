"""``ingest``: documents in, stored pages with text (and vision tokens) out.

The single-process loop: for each document, skip it when its manifest says it is
complete; else open it, make only the pages not yet stored, a batch at a time, decode
them, store each page atomically, and write the manifest last. Documents that fail are
reported in the summary with their reason and never stop the others; a store that
fails stops the run (nothing more could be stored), after which a new run resumes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from optical_memory.documents.formats import OpenedDocument, open_document
from optical_memory.documents.page_store import DocumentPageStore, PageRecord, profile_id
from optical_memory.documents.pages import DecoderSpec, finish, prepare, resolve_decoder
from optical_memory.documents.sources import DocumentSource, SourceLike, expand_sources
from optical_memory.documents.summary import IngestedPage, IngestFailure, IngestSummary
from optical_memory.errors import InvalidSettingError, OpticalMemoryError, StoreError

if TYPE_CHECKING:
    from optical_memory.decoders.base import Decoder
    from optical_memory.readers import ReaderProfile
    from optical_memory.renderers import TextRenderer
    from optical_memory.store import Store
    from optical_memory.vision_encoder import Encoder

__all__ = ["DEFAULT_DPI", "DEFAULT_MAX_PAGES", "IngestSettings", "ingest"]

DEFAULT_DPI = 144.0
DEFAULT_MAX_PAGES = 10_000
DEFAULT_READER = "deepseek-ocr"


@dataclass(frozen=True)
class IngestSettings:
    """What shapes the pages (and so their profile id in the store).

    Attributes:
        dpi: Resolution PDF pages are rasterised at.
        max_pages: Largest page count a document may have.
        reader: The reader profile text-born documents are rendered for.
        decoder: The decoder's name, or ``None``.
        renderer: ``"default"``, or the class of a custom renderer.
    """

    dpi: float = DEFAULT_DPI
    max_pages: int = DEFAULT_MAX_PAGES
    reader: str = DEFAULT_READER
    decoder: str | None = None
    renderer: str = "default"

    def __post_init__(self) -> None:
        if not self.dpi > 0:
            raise InvalidSettingError(f"dpi must be positive, not {self.dpi}")
        if self.max_pages < 1:
            raise InvalidSettingError(f"max_pages must be at least 1, not {self.max_pages}")

    @property
    def profile(self) -> str:
        """The settings' id: the store keeps pages made with other settings apart."""
        return profile_id(
            {"dpi": self.dpi, "reader": self.reader, "decoder": self.decoder, "r": self.renderer}
        )

    def page_renderer(self, renderer: TextRenderer | None) -> tuple[TextRenderer, str]:
        """The renderer and tier text-born documents are drawn with for the reader."""
        from optical_memory import readers
        from optical_memory.memory import page_style

        style = page_style(readers.get(self.reader))
        return (renderer or style.renderer()), style.top

    def open(self, source: DocumentSource, renderer: TextRenderer | None) -> OpenedDocument:
        """Open ``source`` at these settings (text-born ones drawn by ``renderer``, else
        the reader's page style) and count its pages."""
        page_renderer, tier = self.page_renderer(renderer)
        return open_document(
            source, dpi=self.dpi, max_pages=self.max_pages, renderer=page_renderer, tier=tier
        )


def ingest(
    sources: SourceLike | Iterable[SourceLike],
    *,
    store: Store | str,
    decoder: DecoderSpec | None = None,
    renderer: TextRenderer | None = None,
    encoder: Encoder | None = None,
    reader: str | ReaderProfile | None = None,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    batch_size: int = 4,
    tenant: str | None = None,
    progress: bool | None = None,
    on_page: Callable[[IngestedPage], None] | None = None,
    ray_address: str | None = None,
    ray_workers: int | None = None,
) -> IngestSummary:
    """Ingest documents into ``store``: pages, text per page, and read-back accuracy.

    Args:
        sources: Paths, folders (searched recursively), globs, bytes, or ``(name, bytes)``
            pairs; PDF, PNG, JPEG, TIFF (every frame), HTML, Markdown and plain text.
        store: A store, or a store URL (``sqlite:///docs.db``, ``redis://host:6379/0``).
        decoder: Reads page images to text: a decoder, its name (``"rapidocr"``,
            ``"tesseract"``), or a function making one. Needed for image-only pages; on
            pages with a reference text it measures read-back accuracy.
        renderer: Draws text-born documents (default: the reader's page style).
        encoder: Makes DeepSeek-OCR vision tokens for every page, stored beside it.
        reader: The reader profile text is rendered for (default ``"deepseek-ocr"``).
        dpi: Resolution PDF pages are rasterised at.
        max_pages: A document with more pages fails with ``TooManyPages``.
        batch_size: Pages decoded (and stored) together.
        tenant: The tenant to store under, when ``store`` is a URL.
        progress: Show a progress bar on stderr; ``None``: only when stderr is a terminal.
        on_page: Called with each page once it is stored (single-process path only).
        ray_address: Run the pipeline on Ray: ``"local"`` starts a local instance,
            ``"auto"`` joins the running cluster, ``"ray://host:10001"`` a remote one.
            Needs the ``ray`` extra and ``store`` as a URL every worker can reach.
        ray_workers: Decoder actors on Ray (default: the cluster's CPUs).

    Returns:
        The summary: every page with its text and accuracy, the failures with reasons,
        and the time taken.

    Raises:
        StoreError: The store failed (the run stops; the next run resumes).
        InvalidSettingError: A bad setting.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise InvalidSettingError(f"batch_size must be at least 1, not {batch_size}")
    reader_name = _reader_name(reader)
    decoder_name = _decoder_name(decoder)
    settings = IngestSettings(
        dpi=float(dpi),
        max_pages=max_pages,
        reader=reader_name,
        decoder=decoder_name,
        renderer="default" if renderer is None else type(renderer).__name__,
    )
    found, bad = expand_sources(sources)
    summary = IngestSummary(
        failures=[IngestFailure(f.name, str(f.error), type(f.error).__name__) for f in bad]
    )
    if ray_address is not None:
        from optical_memory.documents.ray_pipeline import ingest_on_ray

        if not isinstance(store, str):
            raise InvalidSettingError("on Ray, store must be a URL every worker can open")
        ingest_on_ray(
            found,
            settings,
            summary,
            store_url=store,
            tenant=tenant,
            decoder=decoder,
            renderer=renderer,
            encoder=encoder,
            address=ray_address,
            workers=ray_workers,
            batch_size=batch_size,
        )
    else:
        with _opened(store, tenant) as opened, _resolved(decoder) as engine:
            pages = DocumentPageStore(opened)
            with tqdm(
                total=0,
                unit="page",
                desc="ingesting",
                file=sys.stderr,
                disable=not (sys.stderr.isatty() if progress is None else progress),
            ) as bar:
                for source in found:
                    _ingest_one(
                        source, settings, pages, engine, renderer, encoder, batch_size,
                        summary, bar, on_page,
                    )  # fmt: skip
    summary.seconds = time.perf_counter() - started
    return summary


def _ingest_one(
    source: DocumentSource,
    settings: IngestSettings,
    pages: DocumentPageStore,
    decoder: Decoder | None,
    renderer: TextRenderer | None,
    encoder: Encoder | None,
    batch_size: int,
    summary: IngestSummary,
    bar: tqdm[Any],
    on_page: Callable[[IngestedPage], None] | None,
) -> None:
    profile = settings.profile
    try:
        manifest = pages.manifest(source.sha256, profile)
        if manifest is not None:
            records = pages.records(source.sha256, profile, int(manifest["pages"]))
            summary.pages.extend(page_summary(record, source.name) for record in records)
            summary.skipped += 1
            return
        document = settings.open(source, renderer)
        try:
            todo = sorted(set(range(1, document.page_count + 1)) - pages.stored_pages(
                source.sha256, profile
            ))  # fmt: skip
            bar.total = (bar.total or 0) + len(todo)
            bar.refresh()
            for start in range(0, len(todo), batch_size):
                prepared = [
                    prepare(page) for page in document.pages(todo[start : start + batch_size])
                ]
                for stored in finish(
                    source.name, source.sha256, profile, prepared, decoder, encoder
                ):
                    pages.put_page(stored.record, stored.png, stored.tokens)
                    summary.written += 1
                    bar.update(1)
                    if on_page is not None:
                        on_page(page_summary(stored.record, source.name))
            count = document.page_count
        finally:
            document.close()
        records = pages.records(source.sha256, profile, count)
        pages.put_manifest(source.sha256, profile, manifest_of(source, settings, records))
        summary.pages.extend(page_summary(record, source.name) for record in records)
    except StoreError:
        raise
    except OpticalMemoryError as exc:
        summary.failures.append(IngestFailure(source.name, str(exc), type(exc).__name__))


def manifest_of(
    source: DocumentSource, settings: IngestSettings, records: list[PageRecord]
) -> dict[str, Any]:
    """What a complete source's manifest says."""
    return {
        "source": source.name,
        "kind": source.kind,
        "sha256": source.sha256,
        "pages": len(records),
        "settings": {
            "dpi": settings.dpi,
            "reader": settings.reader,
            "decoder": settings.decoder,
            "renderer": settings.renderer,
        },
    }


def page_summary(record: PageRecord, source: str) -> IngestedPage:
    """The summary's view of a stored page, under the name the source has now."""
    return IngestedPage(
        source=source,
        page_number=record.page_number,
        text=record.text,
        accuracy=record.accuracy,
        flow=record.flow,
        decoder=record.decoder,
        key=record.key,
        sha256=record.sha256,
        vision_tokens=record.vision_tokens,
    )


def _reader_name(reader: str | ReaderProfile | None) -> str:
    if reader is None:
        return DEFAULT_READER
    if isinstance(reader, str):
        from optical_memory import readers

        return readers.get(reader).name  # UnknownReader now, not per document
    return reader.name


def _decoder_name(decoder: DecoderSpec | None) -> str | None:
    if decoder is None:
        return None
    if isinstance(decoder, str):
        return decoder
    name = getattr(decoder, "name", None)
    if isinstance(name, str):
        return name
    # a factory: its name is the decoder's it makes (functools.partial of a class, or a class)
    target = getattr(decoder, "func", decoder)
    name = getattr(target, "name", None)
    return name if isinstance(name, str) else getattr(target, "__name__", "custom")


@contextmanager
def _opened(store: Store | str, tenant: str | None) -> Iterator[Store]:
    if not isinstance(store, str):
        yield store if tenant is None else store.with_tenant(tenant)
        return
    from optical_memory.store import open_store

    opened = open_store(store) if tenant is None else open_store(store, tenant=tenant)
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _resolved(spec: DecoderSpec | None) -> Iterator[Decoder | None]:
    decoder = resolve_decoder(spec)
    try:
        yield decoder
    finally:
        # a decoder made here is ours to close; one handed in is the caller's
        close = getattr(decoder, "close", None)
        if decoder is not spec and callable(close):
            close()
