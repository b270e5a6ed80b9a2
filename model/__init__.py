"""DeepSeek-OCR v1 as a native PyTorch model (the ``model`` extra: torch, transformers).

``DeepSeekOCR`` encodes page images into vision tokens (DeepEncoder: SAM-ViT-B, a 16x
compressor, CLIP-L) and decodes text from them with the DeepSeek-3B-MoE decoder. It loads
the released checkpoint from a local directory and runs on CPU, CUDA or MPS.
``DeepSeekOCR2`` serves DeepSeek-OCR-2 checkpoints through transformers' own class behind
the same ``encode`` / ``generate`` / ``ocr`` API.

This package imports nothing from the core but its error types.
"""

from __future__ import annotations

from .configuration_deepseek_ocr import DeepSeekOCRConfig
from .conversion_deepseek_ocr import LoadReport
from .decode_kernels_deepseek_ocr import CompiledDecodeWarning
from .deepseek_ocr2 import DeepSeekOCR2
from .generation_deepseek_ocr import (
    EncodedImage,
    GenerationResult,
    NoRepeatNGram,
    NoRepeatNGramLogitsProcessor,
    StreamChunk,
)
from .image_processing_deepseek_ocr import DeepSeekOCRImageProcessor, DeepSeekOCRViews, ViewLayout
from .layout_deepseek_ocr import VisionTokenLayout, vision_token_layout
from .modeling_deepseek_ocr import DeepSeekOCR, ImageViews
from .processing_deepseek_ocr import DeepSeekOCRProcessor, SpecialTokenIds, load_tokenizer

__all__ = [
    "CompiledDecodeWarning",
    "DeepSeekOCR",
    "DeepSeekOCR2",
    "DeepSeekOCRConfig",
    "DeepSeekOCRImageProcessor",
    "DeepSeekOCRProcessor",
    "DeepSeekOCRViews",
    "EncodedImage",
    "GenerationResult",
    "ImageViews",
    "LoadReport",
    "NoRepeatNGram",
    "NoRepeatNGramLogitsProcessor",
    "SpecialTokenIds",
    "StreamChunk",
    "ViewLayout",
    "VisionTokenLayout",
    "load_tokenizer",
    "vision_token_layout",
]
