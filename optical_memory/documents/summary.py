"""What an ingestion returns: its pages, its failures and its speed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optical_memory.documents.formats import Flow

__all__ = ["IngestFailure", "IngestSummary", "IngestedPage"]


@dataclass(frozen=True)
class IngestedPage:
    """One stored page of an ingested document (its image stays in the store).

    Attributes:
        source: The document's name (its path as given, or ``bytes[i]``).
        page_number: Position in the document, from 1.
        text: The page's text (see :class:`~optical_memory.documents.page_store.PageRecord`).
        accuracy: Read-back accuracy against the reference text, or ``None``.
        flow: ``"image-born"`` or ``"text-born"``.
        decoder: The decoder's name, or ``None``.
        key: The page's key in the store (``DocumentPageStore.image(key)`` gives its PNG).
        sha256: The document's content hash.
        vision_tokens: The key of its vision tokens, or ``None``.
    """

    source: str
    page_number: int
    text: str
    accuracy: float | None
    flow: Flow
    decoder: str | None
    key: str
    sha256: str
    vision_tokens: str | None = None


@dataclass(frozen=True)
class IngestFailure:
    """A document that could not be ingested (the others went on).

    Attributes:
        source: The document's name.
        reason: The error's message.
        error: The error's type name, e.g. ``"EncryptedDocument"``.
    """

    source: str
    reason: str
    error: str


@dataclass
class IngestSummary:
    """The result of :func:`~optical_memory.documents.ingest`.

    Attributes:
        pages: Every page of every document ingested, in source then page order, whether
            written by this run or found complete in the store.
        failures: The documents that failed, with their reasons.
        seconds: Wall time of the run.
        written: Pages this run made and stored (the rest were already stored).
        skipped: Documents found complete in the store (unchanged since their ingestion).
    """

    pages: list[IngestedPage] = field(default_factory=list)
    failures: list[IngestFailure] = field(default_factory=list)
    seconds: float = 0.0
    written: int = 0
    skipped: int = 0

    @property
    def pages_per_second(self) -> float:
        """Pages this run made per second of wall time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (page texts left out: they are in the store)."""
        accuracies = [page.accuracy for page in self.pages if page.accuracy is not None]
        return {
            "pages": len(self.pages),
            "written": self.written,
            "skipped_documents": self.skipped,
            "seconds": round(self.seconds, 3),
            "pages_per_second": round(self.pages_per_second, 3),
            "mean_accuracy": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
            "failures": [
                {"source": f.source, "error": f.error, "reason": f.reason} for f in self.failures
            ],
        }
