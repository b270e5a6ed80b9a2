"""The ingestion as a Ray Data pipeline: the same steps, spread over a cluster.

::

    from_items(page batches to make)            planned on the driver: what is not stored yet
      -> flat_map(make_pages)                   open the document, rasterise/render, PNG
      -> map_batches(PageDecoder, actors)       one decoder per actor; read-back accuracy
      -> map_batches(PageWriter, 1 actor)       atomic put_blobs per page into the store
    driver: manifest per complete document, then the summary from the store

Every step calls the functions of the single-process path (:mod:`.pages`), so the pages,
PNG bytes and texts stored are identical. Errors of one document travel as an ``error``
column instead of failing the dataset, so a bad document never stops the others.

Each worker needs optical-memory installed with the extras its steps use (``documents``
for PDFs, ``ocr`` for RapidOCR, the ``tesseract`` binary for Tesseract), the sources'
files at the same paths (or pass bytes), and network access to the store.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from optical_memory.documents.formats import Flow
from optical_memory.documents.page_store import DocumentPageStore, encode_page
from optical_memory.documents.pages import (
    DecoderSpec,
    PreparedPage,
    finish,
    prepare,
    resolve_decoder,
)
from optical_memory.documents.sources import DocumentSource
from optical_memory.documents.summary import IngestFailure, IngestSummary
from optical_memory.errors import InvalidSettingError, OpticalMemoryError, StoreError

if TYPE_CHECKING:
    from optical_memory.documents.ingestion import IngestSettings
    from optical_memory.renderers import TextRenderer
    from optical_memory.vision_encoder import Encoder

__all__ = ["PageDecoder", "PageWriter", "ingest_on_ray", "make_pages"]

_CPU_DECODERS = ("rapidocr", "tesseract")
_RASTERISE_CPUS = 0.5


def ingest_on_ray(
    found: list[DocumentSource],
    settings: IngestSettings,
    summary: IngestSummary,
    *,
    store_url: str,
    tenant: str | None,
    decoder: DecoderSpec | None,
    renderer: TextRenderer | None,
    encoder: Encoder | None,
    address: str,
    workers: int | None,
    batch_size: int,
) -> None:
    """Ingest ``found`` on Ray, adding pages and failures to ``summary``.

    Args:
        address: ``"local"`` (a local instance), ``"auto"`` or a cluster address; an
            instance already started in this process is used as it is.
        workers: Decoder actors (default: the cluster's CPUs).
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InvalidSettingError(
            "ingesting on Ray needs the ray extra: pip install 'optical-memory[ray]'"
        ) from exc
    from optical_memory.store import open_store

    worker_decoder = _for_workers(decoder)
    if not ray.is_initialized():
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            log_to_driver=False,
        )
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    actors = workers or max(1, int(cpus))
    # The decoder actors hold their CPUs for the whole run: leave a share for the tasks
    # that rasterise, or a cluster whose every CPU has an actor waits for pages forever.
    actor_cpus = max(0.1, min(1.0, (cpus - _RASTERISE_CPUS) / actors))
    store = open_store(store_url) if tenant is None else open_store(store_url, tenant=tenant)
    try:
        pages = DocumentPageStore(store)
        profile = settings.profile
        rows, planned = _plan(found, settings, renderer, pages, summary, batch_size)
        errors: dict[str, str] = {}
        if rows:
            dataset = (
                ray.data.from_items(rows)
                .flat_map(
                    cast(Any, make_pages),
                    fn_kwargs={"settings": settings, "renderer": renderer},
                    num_cpus=_RASTERISE_CPUS,
                )
                .map_batches(
                    PageDecoder,
                    fn_constructor_kwargs={
                        "decoder": worker_decoder,
                        "encoder": encoder,
                        "profile": profile,
                    },
                    batch_size=batch_size,
                    concurrency=actors,
                    num_cpus=actor_cpus,
                    # one core per actor: OpenMP engines (Tesseract) left to size their own
                    # thread pools spin against each other, 5x slower on 2 cores
                    runtime_env={"env_vars": {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1"}},
                )
                .map_batches(
                    PageWriter,
                    fn_constructor_kwargs={"store_url": store_url, "tenant": tenant},
                    batch_size=batch_size,
                    concurrency=1,
                    num_cpus=0,
                )
            )
            for row in dataset.iter_rows():
                summary.written += int(row["written"])
                if row["error"]:
                    errors.setdefault(str(row["name"]), str(row["error"]))
        for source, count in planned:
            _complete(source, count, settings, pages, summary, errors)
    finally:
        store.close()


def _for_workers(decoder: DecoderSpec | None) -> DecoderSpec | None:
    """What each actor gets: a CPU decoder by name reads one page at a time (the actors
    are the parallelism); an instance must pickle (engines usually do not: give a name
    or a function making one)."""
    if decoder is None or isinstance(decoder, (str, type)) or not hasattr(decoder, "decode"):
        return decoder  # a name, a class or a function: each actor makes its own
    try:
        pickle.dumps(decoder)
    except Exception as exc:  # pickling fails with many types (TypeError, PicklingError, ...)
        raise InvalidSettingError(
            f"decoder {getattr(decoder, 'name', decoder)!r} cannot be sent to Ray workers "
            f"({exc}); pass its name or a function that makes it"
        ) from exc
    return decoder


def _plan(
    found: list[DocumentSource],
    settings: IngestSettings,
    renderer: TextRenderer | None,
    pages: DocumentPageStore,
    summary: IngestSummary,
    batch_size: int,
) -> tuple[list[dict[str, Any]], list[tuple[DocumentSource, int]]]:
    """The page batches still to make, and the documents they complete."""
    from optical_memory.documents.ingestion import page_summary

    profile = settings.profile
    rows: list[dict[str, Any]] = []
    planned: list[tuple[DocumentSource, int]] = []
    # Drawn once for every document (the reader's page style unless one is given).
    page_renderer, _ = settings.page_renderer(renderer)
    for source in found:
        try:
            manifest = pages.manifest(source.sha256, profile)
            if manifest is not None:
                records = pages.records(source.sha256, profile, int(manifest["pages"]))
                summary.pages.extend(page_summary(record, source.name) for record in records)
                summary.skipped += 1
                continue
            document = settings.open(source, page_renderer)
            count = document.page_count
            document.close()
        except StoreError:
            raise
        except OpticalMemoryError as exc:
            summary.failures.append(IngestFailure(source.name, str(exc), type(exc).__name__))
            continue
        todo = sorted(set(range(1, count + 1)) - pages.stored_pages(source.sha256, profile))
        # text is rendered whole to find a page's span: one batch per text document
        step = batch_size if source.kind in ("pdf", "image") else max(1, len(todo))
        for start in range(0, len(todo), step):
            rows.append(
                {
                    "name": source.name,
                    "kind": source.kind,
                    "sha256": source.sha256,
                    "path": "" if source.path is None else str(source.path),
                    "data": source.data or b"",
                    "numbers": todo[start : start + step],
                }
            )
        planned.append((source, count))
    return rows, planned


def _complete(
    source: DocumentSource,
    count: int,
    settings: IngestSettings,
    pages: DocumentPageStore,
    summary: IngestSummary,
    errors: dict[str, str],
) -> None:
    from optical_memory.documents.ingestion import manifest_of, page_summary

    profile = settings.profile
    if source.name in errors:
        reason = errors[source.name]
        kind, _, message = reason.partition(": ")
        summary.failures.append(IngestFailure(source.name, message, kind))
        return
    records = pages.records(source.sha256, profile, count)
    pages.put_manifest(source.sha256, profile, manifest_of(source, settings, records))
    summary.pages.extend(page_summary(record, source.name) for record in records)


def make_pages(
    row: dict[str, Any], *, settings: IngestSettings, renderer: TextRenderer | None
) -> Iterator[dict[str, Any]]:
    """Ray step: one batch of page numbers of one document -> a row per page (PNG)."""
    from pathlib import Path

    source = DocumentSource(
        name=row["name"],
        kind=row["kind"],
        sha256=row["sha256"],
        path=Path(row["path"]) if row["path"] else None,
        data=bytes(row["data"]) if not row["path"] else None,
    )
    numbers = [int(number) for number in row["numbers"]]
    try:
        document = settings.open(source, renderer)
        try:
            prepared = [prepare(page) for page in document.pages(numbers)]
        finally:
            document.close()
    except OpticalMemoryError as exc:
        yield _page_row(source, None, f"{type(exc).__name__}: {exc}")
        return
    for page in prepared:
        yield _page_row(source, page, "")


def _page_row(source: DocumentSource, page: PreparedPage | None, error: str) -> dict[str, Any]:
    return {
        "name": source.name,
        "sha256": source.sha256,
        "page_number": 0 if page is None else page.page_number,
        "png": b"" if page is None else page.png,
        "reference": "" if page is None or page.reference is None else page.reference,
        "has_reference": page is not None and page.reference is not None,
        "flow": "image-born" if page is None else page.flow,
        "width": 0 if page is None else page.width,
        "height": 0 if page is None else page.height,
        "error": error,
    }


class PageDecoder:
    """Ray actor: holds one decoder (and encoder) and turns page rows into stored values."""

    def __init__(self, decoder: DecoderSpec | None, encoder: Encoder | None, profile: str) -> None:
        if isinstance(decoder, str) and decoder in _CPU_DECODERS:
            from optical_memory.decoders import get_decoder

            self.decoder = resolve_decoder(lambda: get_decoder(decoder, workers=1))
        else:
            self.decoder = resolve_decoder(decoder)
        self.encoder = encoder
        self.profile = profile

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"name": [], "key": [], "value": [], "tokens_key": [],
                                     "tokens": [], "error": []}  # fmt: skip
        groups: dict[tuple[str, str], list[int]] = {}
        for index, name in enumerate(batch["name"]):
            groups.setdefault((str(name), str(batch["sha256"][index])), []).append(index)
        for (name, sha256), indexes in groups.items():
            failed = next((str(batch["error"][i]) for i in indexes if batch["error"][i]), "")
            try:
                if failed:
                    raise _Carried(failed)
                prepared = [
                    PreparedPage(
                        int(batch["page_number"][i]),
                        bytes(batch["png"][i]),
                        str(batch["reference"][i]) if batch["has_reference"][i] else None,
                        _flow(str(batch["flow"][i])),
                        int(batch["width"][i]),
                        int(batch["height"][i]),
                    )
                    for i in indexes
                ]
                finished = finish(name, sha256, self.profile, prepared, self.decoder, self.encoder)
            except (OpticalMemoryError, _Carried) as exc:
                message = str(exc) if isinstance(exc, _Carried) else f"{type(exc).__name__}: {exc}"
                empty = {"name": name, "key": "", "value": b"", "tokens_key": "", "tokens": b""}
                for column, value in {**empty, "error": message}.items():
                    out[column].append(value)
                continue
            for stored in finished:
                out["name"].append(name)
                out["key"].append(stored.record.key)
                out["value"].append(encode_page(stored.record, stored.png))
                out["tokens_key"].append(stored.record.vision_tokens or "")
                out["tokens"].append(stored.tokens or b"")
                out["error"].append("")
        return out


class PageWriter:
    """Ray actor: writes each page (and its tokens) with one atomic ``put_blobs``."""

    def __init__(self, store_url: str, tenant: str | None) -> None:
        from optical_memory.store import open_store

        self.store = open_store(store_url) if tenant is None else open_store(
            store_url, tenant=tenant
        )  # fmt: skip

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"name": [], "written": [], "error": []}
        for index, key in enumerate(batch["key"]):
            out["name"].append(str(batch["name"][index]))
            out["error"].append(str(batch["error"][index]))
            if not key:
                out["written"].append(0)
                continue
            items = {str(key): bytes(batch["value"][index])}
            if batch["tokens_key"][index]:
                items[str(batch["tokens_key"][index])] = bytes(batch["tokens"][index])
            self.store.put_blobs(items)
            out["written"].append(1)
        return out


class _Carried(Exception):
    """An error of an earlier step, already formatted, passed on to the writer."""


def _flow(value: str) -> Flow:
    return "text-born" if value == "text-born" else "image-born"
