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

Errors that are the caller's mistake also subclass ``ValueError``. Errors of the
libraries underneath (Pillow, onnxruntime, tesseract, Playwright) are translated at
the boundary with ``raise ... from exc`` so the original stays in the traceback.

This module imports nothing else of the project, so ``optical_memory.renderers`` and
``optical_memory.model`` may raise these types and still stay free of the core.
"""

from __future__ import annotations

__all__ = [
    "DecayError",
    "DecoderError",
    "DecoderUnavailable",
    "EncodingUnavailable",
    "FontNotFoundError",
    "InvalidImageError",
    "InvalidSettingError",
    "OpticalMemoryError",
    "RenderError",
    "UnknownDecoderError",
    "UnknownEncodingError",
    "UnknownLanguageError",
    "UnknownPresetError",
    "UnknownTierError",
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
    """The decoder's engine (a Python package or a system binary) is not installed."""


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
