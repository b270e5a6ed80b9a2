"""The DeepSeek-OCR class with generation, whether or not the package has wired it yet."""

from __future__ import annotations

from optical_memory.model import DeepSeekOCR
from optical_memory.model.generation_deepseek_ocr import DeepSeekOCRGenerationMixin

if issubclass(DeepSeekOCR, DeepSeekOCRGenerationMixin):
    OCRModel = DeepSeekOCR
else:

    class OCRModel(DeepSeekOCRGenerationMixin, DeepSeekOCR):  # type: ignore[no-redef]
        """The mixin on the real model class, as the package wires it."""
