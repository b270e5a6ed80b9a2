"""The exceptions optical-memory raises, all under one root.

::

    OpticalMemoryError
      RenderError
        FontNotFoundError
        DecayError(RenderError, ValueError)
      DecoderError
        DecoderUnavailable
          UnknownLanguageError(DecoderUnavailable, ValueError)
        InvalidImageError(DecoderError, ValueError)
      EncodingUnavailable
        UnknownEncodingError(EncodingUnavailable, ValueError)
      InvalidSettingError(OpticalMemoryError, ValueError)
      UnknownTierError(OpticalMemoryError, ValueError)
      UnknownPresetError(OpticalMemoryError, ValueError)
      UnknownDecoderError(OpticalMemoryError, ValueError)
      UnknownReader(OpticalMemoryError, ValueError)
      InvalidMessageError(OpticalMemoryError, ValueError)
      ContextBudgetError(OpticalMemoryError, ValueError)
      NoVisionTokens(OpticalMemoryError, ValueError)
      StoreError
        StoreUnavailable
        CorruptRecord
        NotFound(StoreError, KeyError)
        InvalidRecordError(StoreError, ValueError)
          RecordTooLarge
        InvalidStoreURL(StoreError, ValueError)
      CheckpointError
        CheckpointMismatchError(CheckpointError, ValueError)
      DocumentError
        UnreadableDocument
          EncryptedDocument
          EmptyDocument
        UnsupportedDocument(DocumentError, ValueError)
        TooManyPages(DocumentError, ValueError)
        DecoderRequired(DocumentError, ValueError)

Errors that are the caller's mistake also subclass ``ValueError``. Errors of the
libraries underneath (Pillow, onnxruntime, tesseract, Playwright) are translated at
the boundary with ``raise ... from exc`` so the original stays in the traceback.
Messages name the thread, segment, key or checkpoint file concerned, and never a
password or token from a connection URL.

This module imports nothing else of the project, so ``optical_memory.renderers`` and
``optical_memory.model`` may raise these types and still stay free of the core.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "ContextBudgetError",
    "CorruptRecord",
    "DecayError",
    "DecoderError",
    "DecoderRequired",
    "DecoderUnavailable",
    "DocumentError",
    "EmptyDocument",
    "EncodingUnavailable",
    "EncryptedDocument",
    "FontNotFoundError",
    "InvalidImageError",
    "InvalidMessageError",
    "InvalidRecordError",
    "InvalidSettingError",
    "InvalidStoreURL",
    "NoVisionTokens",
    "NotFound",
    "OpticalMemoryError",
    "RecordTooLarge",
    "RenderError",
    "StoreError",
    "StoreUnavailable",
    "TooManyPages",
    "UnknownDecoderError",
    "UnknownEncodingError",
    "UnknownLanguageError",
    "UnknownPresetError",
    "UnknownReader",
    "UnknownTierError",
    "UnreadableDocument",
    "UnsupportedDocument",
]


class OpticalMemoryError(Exception):
    """Root of every error optical-memory raises."""


class RenderError(OpticalMemoryError):
    """Text or HTML could not be turned into page images."""


class FontNotFoundError(RenderError):
    """No usable font file was found; the message lists every place that was tried."""


class DecayError(RenderError, ValueError):
    """A page cannot decay to the requested tier (it is not smaller than the page)."""


class DecoderError(OpticalMemoryError):
    """A page image could not be read back to text."""


class DecoderUnavailable(DecoderError):
    """The decoder's engine is missing (a Python package or a system binary is not
    installed) or its server cannot be reached."""


class UnknownLanguageError(DecoderUnavailable, ValueError):
    """A decoder language that is unknown or not installed (e.g. a Tesseract traineddata)."""


class InvalidImageError(DecoderError, ValueError):
    """An input image is corrupt, empty, or not of a supported type."""


class EncodingUnavailable(OpticalMemoryError):
    """No genuine BPE data could be found offline for a tokenizer encoding."""


class UnknownEncodingError(EncodingUnavailable, ValueError):
    """An encoding name that tiktoken does not define."""


class InvalidSettingError(OpticalMemoryError, ValueError):
    """A constructor option out of range or of the wrong kind (workers, scales, sizes)."""


class UnknownTierError(OpticalMemoryError, ValueError):
    """A tier name that is not one of the known tiers."""


class UnknownPresetError(OpticalMemoryError, ValueError):
    """A render preset name that is not one of the known presets."""


class UnknownDecoderError(OpticalMemoryError, ValueError):
    """A decoder name that is not one of the known decoders."""


class UnknownReader(OpticalMemoryError, ValueError):
    """A reader profile name that is neither shipped nor registered; the message lists
    the known ones."""


class InvalidMessageError(OpticalMemoryError, ValueError):
    """A chat message of no supported shape; the message says which one and why."""


class ContextBudgetError(OpticalMemoryError, ValueError):
    """A context budget too small for the newest turn; the message gives both sizes."""


class NoVisionTokens(OpticalMemoryError, ValueError):
    """A context without vision tokens was asked for a DeepSeek-OCR prompt (the memory
    has no encoder, or the context was made for a reader other than DeepSeek-OCR)."""


class StoreError(OpticalMemoryError):
    """A store (SQLite or Redis) could not complete an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (server down, network blip outlasting retries, locked file)."""


class CorruptRecord(StoreError):
    """A stored value failed its checksum or could not be decoded; the message names its key."""


class NotFound(StoreError, KeyError):
    """No turn, segment, page or vision-token record exists under the given id."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class InvalidRecordError(StoreError, ValueError):
    """A value handed to a store has the wrong type or shape (nothing was written)."""


class RecordTooLarge(InvalidRecordError):
    """A value exceeds the store's documented size limit (nothing was written)."""


class InvalidStoreURL(StoreError, ValueError):
    """A store URL that cannot be parsed or names an unknown scheme."""


class CheckpointError(OpticalMemoryError):
    """A model checkpoint could not be read: a missing file, or a corrupt or foreign one."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """A checkpoint's tensors do not match the model: lists every missing, unexpected or
    misshapen key."""


class DocumentError(OpticalMemoryError):
    """A document given to :func:`optical_memory.documents.ingest` could not be ingested;
    the message names the document. Ingestion records it and goes on with the others."""


class UnreadableDocument(DocumentError):
    """A document's bytes are not a readable PDF, image or text (truncated, corrupt)."""


class EncryptedDocument(UnreadableDocument):
    """A PDF is password-protected."""


class EmptyDocument(UnreadableDocument):
    """A document has no bytes or no pages."""


class UnsupportedDocument(DocumentError, ValueError):
    """A document of a kind the RAG front end does not read (by name and content)."""


class TooManyPages(DocumentError, ValueError):
    """A document has more pages than the ingestion's page limit; nothing of it was read."""


class DecoderRequired(DocumentError, ValueError):
    """A document whose pages are images only (a scan, a photo) was given without a decoder."""
