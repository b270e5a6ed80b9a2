"""Decoders read page images back to text.

::

    Decoder (Protocol)      name, decode(images) -> list[str]
      RapidOCRDecoder       "rapidocr": PP-OCR ONNX models; best on small Latin and CJK text
      TesseractDecoder      "tesseract": the tesseract binary; fast, Latin down to ~7 px
      VLLMDecoder           "vllm": DeepSeek-OCR on a vLLM server (AsyncVLLMDecoder: async twin)
      DeepSeekOCRDecoder    "deepseek-ocr": DeepSeek-OCR in this process (the ``model`` extra)

Engines load lazily: importing this package needs neither rapidocr-onnxruntime nor
the tesseract binary; using a decoder without its engine raises
:class:`~optical_memory.errors.DecoderUnavailable` with the install command.

Example:
    >>> from optical_memory.decoders import get_decoder
    >>> with get_decoder("tesseract", lang="eng") as decoder:
    ...     texts = decoder.decode([page.image for page in pages])
"""

from __future__ import annotations

from typing import Any

from optical_memory.errors import UnknownDecoderError

from .base import Decoder, ImageInput
from .deepseek_ocr import DeepSeekOCRDecoder
from .rapidocr import RapidOCRDecoder
from .tesseract import TesseractDecoder
from .vllm import AsyncVLLMDecoder, NoRepeatNGram, VLLMDecoder

__all__ = [
    "AsyncVLLMDecoder",
    "Decoder",
    "DeepSeekOCRDecoder",
    "ImageInput",
    "NoRepeatNGram",
    "RapidOCRDecoder",
    "TesseractDecoder",
    "VLLMDecoder",
    "get_decoder",
]

_DECODERS: dict[
    str,
    type[RapidOCRDecoder] | type[TesseractDecoder] | type[VLLMDecoder] | type[DeepSeekOCRDecoder],
] = {
    RapidOCRDecoder.name: RapidOCRDecoder,
    TesseractDecoder.name: TesseractDecoder,
    VLLMDecoder.name: VLLMDecoder,
    DeepSeekOCRDecoder.name: DeepSeekOCRDecoder,
}


def get_decoder(
    name: str, **kwargs: Any
) -> RapidOCRDecoder | TesseractDecoder | VLLMDecoder | DeepSeekOCRDecoder:
    """Create a decoder by its registry name.

    Args:
        name: ``"rapidocr"``, ``"tesseract"``, ``"vllm"`` or ``"deepseek-ocr"``.
        **kwargs: Passed to the decoder's constructor.

    Returns:
        The decoder.

    Raises:
        UnknownDecoderError: ``name`` is not a known decoder; the message lists them.
    """
    try:
        decoder_class = _DECODERS[name]
    except KeyError:
        known = ", ".join(sorted(_DECODERS))
        raise UnknownDecoderError(f"unknown decoder {name!r}; known decoders: {known}") from None
    return decoder_class(**kwargs)
