"""Read pages back with DeepSeek-OCR (or DeepSeek-OCR-2) running in this process.

The model is the native PyTorch one from :mod:`optical_memory.model`, loaded from a local
checkpoint directory on first use (or handed in already loaded). Pages are read with the
official recipe: plain prompt ``<image>\\nFree OCR.``, greedy decoding to EOS and the
n-gram no-repeat rule (30/90, ``<td>``/``</td>`` whitelisted), a batch of pages at a time.
Cached vision tokens read back without the vision encoder (:meth:`decode_tokens`).

Example:
    >>> from optical_memory.decoders.deepseek_ocr import DeepSeekOCRDecoder
    >>> with DeepSeekOCRDecoder("/models/DeepSeek-OCR", mode="small", device="cuda") as decoder:
    ...     texts = decoder.decode(["page-0.png", "page-1.png"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from optical_memory.errors import InvalidSettingError
from optical_memory.records import VisionTokens

from .base import ImageInput, load_images
from .vllm import NoRepeatNGram

if TYPE_CHECKING:
    from optical_memory.model.generation_deepseek_ocr import NoRepeatNGram as ModelRule
    from optical_memory.model.generation_deepseek_ocr import OCRGenerationAPI
    from optical_memory.vision_encoder import DeepSeekOCREncoder

__all__ = ["DeepSeekOCRDecoder"]

_FREE_OCR = "<image>\nFree OCR."


class DeepSeekOCRDecoder:
    """DeepSeek-OCR as a :class:`~optical_memory.decoders.Decoder`.

    Args:
        model: A checkpoint directory (loaded on first use) or a loaded ``DeepSeekOCR`` /
            ``DeepSeekOCR2``.
        mode: ``tiny``, ``small``, ``base``, ``large`` or ``gundam`` (OCR-2: ``small``,
            ``base``, ``gundam``).
        prompt: The prompt, with one ``<image>`` marker.
        device: Where a model loaded from a directory runs; CPU when not given.
        dtype: Weight dtype of a model loaded from a directory (``"bfloat16"``...).
        batch_size: Pages decoded together.
        max_new_tokens: Most tokens per page.
        no_repeat: The n-gram rule (the vLLM recipe's by default); ``None`` disables it.

    Raises:
        InvalidSettingError: ``batch_size`` or ``max_new_tokens`` below 1.
    """

    name = "deepseek-ocr"

    def __init__(
        self,
        model: str | os.PathLike[str] | OCRGenerationAPI,
        *,
        mode: str = "small",
        prompt: str = _FREE_OCR,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 4,
        max_new_tokens: int = 8192,
        no_repeat: NoRepeatNGram | None = NoRepeatNGram(),  # noqa: B008 (frozen, shared)
    ) -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise InvalidSettingError(
                f"batch_size and max_new_tokens must be at least 1, not {batch_size} and "
                f"{max_new_tokens}"
            )
        # Imported here: vision_encoder imports this package's base module.
        from optical_memory.vision_encoder import DeepSeekOCREncoder

        # The encoder owns loading and the fingerprint; decoding shares its model.
        self._encoder = DeepSeekOCREncoder(model, mode=mode, device=device, dtype=dtype)
        self.mode = mode
        self.prompt = prompt
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.no_repeat = no_repeat

    @property
    def model(self) -> OCRGenerationAPI:
        """The model, loaded on first access."""
        return self._encoder.model

    @property
    def encoder(self) -> DeepSeekOCREncoder:
        """The vision encoder over the same model (for caching vision tokens)."""
        return self._encoder

    def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each page to text.

        Args:
            images: Pages as PIL images, PNG/JPEG bytes, paths or ``uint8`` arrays.

        Returns:
            One string per page, in input order, special tokens (grounding, table tags)
            kept and surrounding whitespace stripped.

        Raises:
            InvalidImageError: An input is corrupt, empty or of an unsupported type.
            DecoderUnavailable: torch or transformers is not installed.
            CheckpointError: The checkpoint cannot be loaded.
        """
        pages = load_images(images)
        return self.model.ocr_batch(
            pages,
            self.mode,
            self.prompt,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            no_repeat=self._rule(),
        )

    def decode_tokens(self, tokens: Sequence[VisionTokens]) -> list[str]:
        """Read pages back from their cached vision tokens (no vision encoder).

        Args:
            tokens: One record per page, made by this model.

        Returns:
            One string per page, in input order.

        Raises:
            CheckpointMismatchError: A record was made by another model.
        """
        from optical_memory.vision_encoder import tokens_to_tensor

        model = self.model
        fingerprint = self._encoder.fingerprint
        device = model._device()
        tensors = [tokens_to_tensor(item, fingerprint, device) for item in tokens]
        texts: list[str] = []
        for start in range(0, len(tensors), self.batch_size):
            chunk = tensors[start : start + self.batch_size]
            results = model.generate_batch(
                [self.prompt] * len(chunk),
                vision_tokens=[[tensor] for tensor in chunk],
                max_new_tokens=self.max_new_tokens,
                no_repeat=self._rule(),
            )
            texts += [result.text.strip() for result in results]
        return texts

    def _rule(self) -> ModelRule | None:
        from optical_memory.model.generation_deepseek_ocr import NoRepeatNGram as Rule

        if self.no_repeat is None:
            return None
        return Rule(
            self.no_repeat.ngram_size,
            self.no_repeat.window_size,
            tuple(self.no_repeat.whitelist_token_ids),
        )

    def close(self) -> None:
        """Nothing to release: the model is freed with the decoder."""

    def __enter__(self) -> DeepSeekOCRDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
