"""The RAG front end: documents in; pages, text per page and vision tokens out.

::

    ingest(sources, store=...)          -> IngestSummary (pages, failures, seconds)
      expand_sources                    files, folders, globs, bytes -> DocumentSource
      open_document                     PDF (pypdfium2), PNG/JPEG/TIFF, HTML, Markdown, text
      pages.prepare / pages.finish      PNG, decode, read-back accuracy, vision tokens
      DocumentPageStore                 docs/<sha256>/<profile>/page/NNNNNN, manifest last
      ray_pipeline.ingest_on_ray        the same steps as a Ray Data pipeline

Example:
    >>> from optical_memory.documents import ingest
    >>> summary = ingest(["reports/", "scan.pdf"], store="sqlite:///docs.db",
    ...                  decoder="rapidocr")
    >>> [(p.source, p.page_number, p.accuracy) for p in summary.pages][:1]
    [('reports/a.pdf', 1, 0.98)]
"""

from __future__ import annotations

from optical_memory.documents.formats import Flow
from optical_memory.documents.ingestion import IngestSettings, ingest
from optical_memory.documents.page_store import DocumentPageStore, PageRecord
from optical_memory.documents.sources import DocumentSource, SourceLike
from optical_memory.documents.summary import IngestedPage, IngestFailure, IngestSummary

__all__ = [
    "DocumentPageStore",
    "DocumentSource",
    "Flow",
    "IngestFailure",
    "IngestSettings",
    "IngestSummary",
    "IngestedPage",
    "PageRecord",
    "SourceLike",
    "ingest",
]
