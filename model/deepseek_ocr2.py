"""DeepSeek-OCR-2 through transformers' native ``deepseek_ocr2`` classes, with the same
``encode``/``generate``/``ocr`` API as :class:`~optical_memory.model.DeepSeekOCR`.

DeepSeek-OCR-2 keeps SAM-ViT-B but replaces CLIP with a Qwen2-style encoder that reads
learned queries: 256 per 1024-pixel global view, 144 per 768-pixel tile, one separator per
image and no row newlines. Its modes here::

    mode     views                                     slots
    small    768 global view, padded                   144 + 1
    base     1024 global view, padded                  256 + 1
    gundam   1024 global view + 2-6 tiles of 768       256 + 144 n + 1   (the default)

transformers' image processor prepares the pixels; prompts, decoding, the n-gram rule,
streaming and batches are the ones DeepSeek-OCR v1 uses
(:mod:`~optical_memory.model.generation_deepseek_ocr`).

Example:
    >>> model = DeepSeekOCR2.from_pretrained("/models/DeepSeek-OCR-2", device="cuda")
    >>> model.ocr("page.png")
    '# Title ...'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.models.deepseek_ocr2 import (
    DeepseekOcr2Config,
    DeepseekOcr2ForConditionalGeneration,
)
from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
    DeepseekOcr2ImageProcessorPil,
)

from optical_memory.errors import CheckpointError, InvalidSettingError

from .generation_deepseek_ocr import EncodedImage, OCRGenerationAPI
from .image_processing_deepseek_ocr import ImageSource, load_rgb_image
from .processing_deepseek_ocr import DeepSeekOCRProcessor, SpecialTokenIds, load_tokenizer
from .transformers_compat_deepseek_ocr import cache_kwargs, returned_cache

__all__ = ["OCR2_MODES", "DeepSeekOCR2"]

# mode -> (tile the image, global view side); tiles are always 768 px.
OCR2_MODES: dict[str, tuple[bool, int]] = {
    "small": (False, 768),
    "base": (False, 1024),
    "gundam": (True, 1024),
}
_TILE = 768


class DeepSeekOCR2(OCRGenerationAPI):
    """DeepSeek-OCR-2 (``deepseek_ocr2``) for reading pages.

    Args:
        model: The transformers model, already on its device and dtype.
        processor: The tokenizer and special ids (its image processor is unused: OCR-2
            views come from ``image_processor``).
        image_processor: transformers' PIL image processor for DeepSeek-OCR-2.

    Attributes:
        model: The wrapped :class:`DeepseekOcr2ForConditionalGeneration`.
    """

    default_mode = "gundam"

    def __init__(
        self,
        model: DeepseekOcr2ForConditionalGeneration,
        processor: DeepSeekOCRProcessor,
        image_processor: DeepseekOcr2ImageProcessorPil | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.image_processor = image_processor or DeepseekOcr2ImageProcessorPil()

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> DeepSeekOCR2:
        """Load a local checkpoint directory; nothing is downloaded.

        Args:
            path: Directory with ``config.json``, the safetensors weights and
                ``tokenizer.json`` (``preprocessor_config.json`` optional).
            device: Where to run, e.g. ``"cpu"``, ``"cuda"``, ``"mps"``.
            dtype: Weight dtype; the checkpoint's own when not given.

        Returns:
            The model in eval mode.

        Raises:
            CheckpointError: A file is missing or the checkpoint is not DeepSeek-OCR-2.
        """
        directory = Path(path)
        if not (directory / "config.json").is_file():
            raise CheckpointError(f"no config.json in {os.fspath(directory)!r}")
        try:
            config = DeepseekOcr2Config.from_pretrained(directory, local_files_only=True)
            model = DeepseekOcr2ForConditionalGeneration.from_pretrained(
                directory, config=config, dtype=dtype or "auto", local_files_only=True
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"cannot load DeepSeek-OCR-2 from {os.fspath(directory)!r}: {exc}"
            ) from exc
        # Through nn.Module: transformers' wrappers of ``to`` and ``eval`` type poorly.
        nn.Module.to(model, torch.device(device))
        nn.Module.eval(model)
        image_processor = DeepseekOcr2ImageProcessorPil()
        if (directory / "preprocessor_config.json").is_file():
            try:
                image_processor = DeepseekOcr2ImageProcessorPil.from_pretrained(
                    directory, local_files_only=True
                )
            except (OSError, ValueError) as exc:
                raise CheckpointError(
                    f"cannot read preprocessor_config.json in {os.fspath(directory)!r}: {exc}"
                ) from exc
        processor = DeepSeekOCRProcessor(
            load_tokenizer(directory), special_ids=_special_ids(config)
        )
        return cls(model, processor, image_processor)

    def _ocr_processor(self) -> DeepSeekOCRProcessor:
        return self.processor

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode_images(self, images: Sequence[ImageSource], mode: str) -> list[EncodedImage]:
        if mode not in OCR2_MODES:
            raise InvalidSettingError(
                f"unknown DeepSeek-OCR-2 mode {mode!r}; known modes: {', '.join(OCR2_MODES)}"
            )
        tile, size = OCR2_MODES[mode]
        pictures = [load_rgb_image(image, index) for index, image in enumerate(images)]
        settings: dict[str, Any] = {"crop_to_patches": tile, "return_tensors": "pt"}
        if tile:
            settings.update(size={"height": size, "width": size}, tile_size=_TILE)
        else:
            # Without tiles the processor pads the global view to ``tile_size``.
            settings["tile_size"] = size
        batch = self.image_processor(pictures, **settings)
        weight = next(self.model.parameters())
        local = batch.get("pixel_values_local")
        # no_grad, not inference_mode: callers may cache and reuse these tensors freely.
        with torch.no_grad():
            features = self.model.model.get_image_features(
                pixel_values=batch["pixel_values"].to(weight.device, weight.dtype),
                pixel_values_local=None if local is None else local.to(weight.device, weight.dtype),
                num_local_patches=batch["num_local_patches"],
                return_dict=True,
            )
        return [EncodedImage(tokens, None) for tokens in features.pooler_output]

    def _decoder_forward(
        self,
        input_ids: torch.Tensor,
        vision: Sequence[torch.Tensor],
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        past_key_values: Any,
    ) -> tuple[torch.Tensor, Any]:
        embeds = self.model.get_input_embeddings()(input_ids)  # (B, L, D)
        if vision:
            # Fill the image slots ourselves so cached vision tokens need no pixels.
            slots = input_ids == self.model.config.image_token_id
            embeds = embeds.clone()
            embeds[slots] = torch.cat(list(vision)).to(embeds.device, embeds.dtype)
        output = self.model(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
            **cache_kwargs(past_key_values),
        )
        return output.logits[:, -1, :].float(), returned_cache(output)


def _special_ids(config: DeepseekOcr2Config) -> SpecialTokenIds:
    text: Any = config.text_config
    eos = text.eos_token_id
    pad = text.pad_token_id
    return SpecialTokenIds(
        bos=0 if text.bos_token_id is None else int(text.bos_token_id),
        eos=int(eos[0] if isinstance(eos, list) else (1 if eos is None else eos)),
        pad=2 if pad is None else int(pad),
        image=int(config.image_token_id),
    )
