"""Greedy decoding for DeepSeek-OCR: KV cache, EOS, the n-gram no-repeat rule, streaming and
batches.

The official recipe decodes greedily to EOS (id 1) and blocks runaway repeats with an
n-gram rule over the *generated* ids (vLLM semantics): once ``n`` ids exist, the last
``n - 1`` form a prefix; every n-gram starting within the last ``window`` positions whose
first ``n - 1`` ids equal that prefix bans its last id, except whitelisted ids (``<td>``,
``</td>``: table markup repeats legitimately). Defaults: ``n = 30``, ``window = 90``.

A batch of prompts is decoded together: prompts are left-padded, masked, and given
positions that start at 0 on their first real token, so each page decodes as it would
alone; a page that reaches EOS leaves the batch (its cache rows are dropped).

:class:`OCRGenerationAPI` holds the user-facing methods (``encode``, ``generate``,
``generate_batch``, ``ocr``, ``ocr_batch``) over four small hooks;
:class:`DeepSeekOCRGenerationMixin` implements the hooks for :class:`DeepSeekOCR`, and
:class:`~optical_memory.model.deepseek_ocr2.DeepSeekOCR2` for DeepSeek-OCR-2.

Example:
    >>> text = model.ocr("page.png", mode="small")
    >>> for chunk in model.generate("<image>\\nFree OCR.", images=["page.png"], stream=True):
    ...     sys.stdout.write(chunk.text)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, cast, overload

import torch

from optical_memory.errors import CheckpointError, InvalidSettingError

from .image_processing_deepseek_ocr import DeepSeekOCRImageProcessor, ImageSource, ViewLayout
from .kv_cache_deepseek_ocr import DeepseekOcrKVCache
from .no_repeat_deepseek_ocr import NoRepeatNGram, NoRepeatNGramLogitsProcessor, ban_ids
from .processing_deepseek_ocr import DEFAULT_PROMPT, DeepSeekOCRProcessor, SpecialTokenIds

__all__ = [
    "DEFAULT_PROMPT",
    "DeepSeekOCRGenerationMixin",
    "DeepseekOcrKVCache",
    "EncodedImage",
    "GenerationResult",
    "NoRepeatNGram",
    "NoRepeatNGramLogitsProcessor",
    "OCRGenerationAPI",
    "StreamChunk",
]

DEFAULT_MAX_NEW_TOKENS = 8192
"""The official limit (the model's training sequence length)."""

DEFAULT_NO_REPEAT = NoRepeatNGram()
"""The official rule: n-grams of 30 within the last 90 generated ids, table cells exempt."""


class EncodedImage(NamedTuple):
    """Vision tokens of one image and how they were laid out.

    Attributes:
        tokens: ``(slots, hidden)`` embeddings, newlines and separator included, ready to
            fill the image's slots in a prompt.
        layout: The image's view layout (``None`` for DeepSeek-OCR-2, which has no grid).
    """

    tokens: torch.Tensor
    layout: ViewLayout | None


@dataclass(frozen=True)
class GenerationResult:
    """What one prompt generated.

    Attributes:
        token_ids: Generated ids, EOS excluded.
        text: Their text, special tokens (grounding, table tags) kept.
        finish_reason: ``"eos"`` or ``"length"`` (``max_new_tokens`` reached first).
    """

    token_ids: list[int]
    text: str
    finish_reason: Literal["eos", "length"]


@dataclass(frozen=True)
class StreamChunk:
    """One generated id while streaming.

    Attributes:
        token_id: The id (the last chunk carries EOS when generation ended there).
        text: The text it completes; empty while a character is still partial, and for EOS.
    """

    token_id: int
    text: str


@dataclass
class _Row:
    """One prompt of a batch: its ids, the vision tokens of its slots, and what it made."""

    input_ids: list[int]
    vision: torch.Tensor | None
    generated: list[int] = field(default_factory=list)
    finish_reason: Literal["eos", "length"] = "length"


class OCRGenerationAPI:
    """``encode``, ``generate``, ``ocr`` and their batch forms, over four hooks.

    Subclasses provide :meth:`_ocr_processor`, :meth:`_encode_images`,
    :meth:`_decoder_forward` and :meth:`_device`; decoding itself is shared.
    """

    default_mode = "small"

    # --- hooks -----------------------------------------------------------------------

    def _ocr_processor(self) -> DeepSeekOCRProcessor:
        raise NotImplementedError

    def _encode_images(self, images: Sequence[ImageSource], mode: str) -> list[EncodedImage]:
        raise NotImplementedError

    def _decoder_forward(
        self,
        input_ids: torch.Tensor,
        vision: Sequence[torch.Tensor],
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        past_key_values: Any,
    ) -> tuple[torch.Tensor, Any]:
        """Run the decoder on ``(B, L)`` ids whose image slots take ``vision`` in order.

        Returns:
            The last position's fp32 logits ``(B, V)`` and the updated KV cache.
        """
        raise NotImplementedError

    def _device(self) -> torch.device:
        raise NotImplementedError

    # --- public API --------------------------------------------------------------------

    def encode(self, images: Sequence[ImageSource], mode: str | None = None) -> list[EncodedImage]:
        """Turn images into vision tokens, one :class:`EncodedImage` per image.

        The tokens can be cached and passed back as ``vision_tokens`` to :meth:`generate`,
        which then skips the vision encoder.

        Args:
            images: PIL images, encoded image bytes or paths.
            mode: ``tiny``, ``small``, ``base``, ``large`` or ``gundam``.

        Returns:
            ``(tokens, layout)`` per image; ``tokens`` is ``(slots, hidden)``.

        Raises:
            InvalidImageError: An image is unusable.
            InvalidSettingError: Unknown mode.
        """
        if isinstance(images, (str, bytes, bytearray, memoryview)) or not isinstance(
            images, Sequence
        ):
            raise InvalidSettingError("images must be a sequence; wrap a single image in a list")
        if not images:
            return []
        return self._encode_images(images, mode or self.default_mode)

    @overload
    def generate(
        self,
        prompt: str,
        images: Sequence[ImageSource] | None = ...,
        vision_tokens: Sequence[torch.Tensor] | None = ...,
        *,
        mode: str | None = ...,
        max_new_tokens: int = ...,
        no_repeat: NoRepeatNGram | None = ...,
        stream: Literal[False] = ...,
    ) -> GenerationResult: ...

    @overload
    def generate(
        self,
        prompt: str,
        images: Sequence[ImageSource] | None = ...,
        vision_tokens: Sequence[torch.Tensor] | None = ...,
        *,
        mode: str | None = ...,
        max_new_tokens: int = ...,
        no_repeat: NoRepeatNGram | None = ...,
        stream: Literal[True],
    ) -> Iterator[StreamChunk]: ...

    def generate(
        self,
        prompt: str,
        images: Sequence[ImageSource] | None = None,
        vision_tokens: Sequence[torch.Tensor] | None = None,
        *,
        mode: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        no_repeat: NoRepeatNGram | None = DEFAULT_NO_REPEAT,
        stream: bool = False,
    ) -> GenerationResult | Iterator[StreamChunk]:
        """Generate greedily from a prompt with images (or their cached vision tokens).

        Args:
            prompt: Plain-template prompt with one ``<image>`` marker per image, e.g.
                ``"<image>\\nFree OCR."``.
            images: The images, in marker order.
            vision_tokens: Instead of ``images``: their tokens from :meth:`encode`.
            mode: Mode for ``images`` (``small`` by default).
            max_new_tokens: Most ids to generate (EOS included).
            no_repeat: The n-gram rule; ``None`` disables it.
            stream: Return an iterator of :class:`StreamChunk` instead of the result.

        Returns:
            The :class:`GenerationResult`, or with ``stream=True`` an iterator that yields
            each id (and its text) as soon as it is chosen.

        Raises:
            InvalidSettingError: Both ``images`` and ``vision_tokens``, markers not matching
                the images, or ``max_new_tokens`` below 1.
            InvalidImageError: An image is unusable.
        """
        row = self._prepare(
            [prompt],
            None if images is None else [images],
            None if vision_tokens is None else [vision_tokens],
            mode,
        )[0]
        _check_budget(max_new_tokens)
        if stream:
            return self._stream(row, max_new_tokens, no_repeat)
        for _ in self._decode([row], max_new_tokens, no_repeat):
            pass
        return self._result(row)

    def generate_batch(
        self,
        prompts: Sequence[str],
        images: Sequence[Sequence[ImageSource]] | None = None,
        vision_tokens: Sequence[Sequence[torch.Tensor]] | None = None,
        *,
        mode: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        no_repeat: NoRepeatNGram | None = DEFAULT_NO_REPEAT,
    ) -> list[GenerationResult]:
        """Generate for several prompts at once (left-padded, one shared decoding loop).

        Args:
            prompts: One prompt per page.
            images: Per prompt, its images in marker order.
            vision_tokens: Instead of ``images``: per prompt, its images' tokens.
            mode: Mode for ``images``.
            max_new_tokens: Most ids per prompt.
            no_repeat: The n-gram rule, applied to each prompt's own ids.

        Returns:
            One result per prompt, in order; each equals what :meth:`generate` returns
            for that prompt alone.

        Raises:
            InvalidSettingError: See :meth:`generate`.
            InvalidImageError: An image is unusable.
        """
        _check_budget(max_new_tokens)
        rows = self._prepare(list(prompts), images, vision_tokens, mode)
        if not rows:
            return []
        for _ in self._decode(rows, max_new_tokens, no_repeat):
            pass
        return [self._result(row) for row in rows]

    def ocr(
        self,
        image: ImageSource,
        mode: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        no_repeat: NoRepeatNGram | None = DEFAULT_NO_REPEAT,
    ) -> str:
        """Read one image to text with the official recipe.

        Args:
            image: A PIL image, encoded image bytes or a path.
            mode: ``tiny``, ``small``, ``base``, ``large`` or ``gundam``.
            prompt: The prompt, with one ``<image>`` marker.
            max_new_tokens: Most ids to generate.
            no_repeat: The n-gram rule; ``None`` disables it.

        Returns:
            The text, stripped of surrounding whitespace.
        """
        result = self.generate(
            prompt, [image], mode=mode, max_new_tokens=max_new_tokens, no_repeat=no_repeat
        )
        return result.text.strip()

    def ocr_batch(
        self,
        images: Sequence[ImageSource],
        mode: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        *,
        batch_size: int = 8,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        no_repeat: NoRepeatNGram | None = DEFAULT_NO_REPEAT,
    ) -> list[str]:
        """Read several images, ``batch_size`` pages per decoding batch.

        Args:
            images: The pages.
            mode: The mode for every page.
            prompt: The prompt, with one ``<image>`` marker.
            batch_size: Pages decoded together.
            max_new_tokens: Most ids per page.
            no_repeat: The n-gram rule; ``None`` disables it.

        Returns:
            One stripped text per page, in order.

        Raises:
            InvalidSettingError: ``batch_size`` below 1, or see :meth:`generate`.
        """
        if batch_size < 1:
            raise InvalidSettingError(f"batch_size must be at least 1, got {batch_size}")
        texts: list[str] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            results = self.generate_batch(
                [prompt] * len(chunk),
                [[image] for image in chunk],
                mode=mode,
                max_new_tokens=max_new_tokens,
                no_repeat=no_repeat,
            )
            texts += [result.text.strip() for result in results]
        return texts

    # --- shared machinery -----------------------------------------------------------

    def _prepare(
        self,
        prompts: list[str],
        images: Sequence[Sequence[ImageSource]] | None,
        vision_tokens: Sequence[Sequence[torch.Tensor]] | None,
        mode: str | None,
    ) -> list[_Row]:
        if images is not None and vision_tokens is not None:
            raise InvalidSettingError("pass images or vision_tokens, not both")
        per_prompt = images if images is not None else vision_tokens
        if per_prompt is not None and len(per_prompt) != len(prompts):
            raise InvalidSettingError(
                f"{len(prompts)} prompts but {len(per_prompt)} image lists were given"
            )
        if images is not None:
            flat = [image for group in images for image in group]
            encoded = self.encode(flat, mode) if flat else []
            groups: list[list[torch.Tensor]] = []
            for group in images:
                groups.append([item.tokens for item in encoded[: len(group)]])
                encoded = encoded[len(group) :]
        elif vision_tokens is not None:
            groups = [list(group) for group in vision_tokens]
        else:
            groups = [[] for _ in prompts]
        processor = self._ocr_processor()
        rows = []
        for prompt, tokens in zip(prompts, groups, strict=True):
            for item in tokens:
                if item.ndim != 2:
                    raise InvalidSettingError(
                        f"vision tokens must be (slots, hidden), got shape {tuple(item.shape)}"
                    )
            ids = processor.prompt_ids(prompt, [int(item.shape[0]) for item in tokens])
            rows.append(_Row(ids, torch.cat(tokens) if tokens else None))
        return rows

    def _stream(
        self, row: _Row, max_new_tokens: int, no_repeat: NoRepeatNGram | None
    ) -> Iterator[StreamChunk]:
        processor = self._ocr_processor()
        text = processor.text_stream()
        emitted = ""
        for _, token in self._decode([row], max_new_tokens, no_repeat):
            piece = text.push(token)
            if token == processor.special_ids.eos or len(row.generated) == max_new_tokens:
                # The last chunk also carries bytes held back for an unfinished character,
                # so the pieces always add up to the full text.
                full = self._result(row).text
                if full.startswith(emitted + piece):
                    piece = full[len(emitted) :]
            emitted += piece
            yield StreamChunk(token, piece)

    def _result(self, row: _Row) -> GenerationResult:
        ids = row.generated[:-1] if row.finish_reason == "eos" else list(row.generated)
        text = self._ocr_processor().decode(ids)
        return GenerationResult(token_ids=ids, text=text, finish_reason=row.finish_reason)

    def _decode(
        self, rows: list[_Row], max_new_tokens: int, no_repeat: NoRepeatNGram | None
    ) -> Iterator[tuple[int, int]]:
        """Greedy decoding of all rows together; yields ``(row index, id)`` as ids are chosen.

        Tensor work runs under ``torch.inference_mode`` in short blocks that never span a
        ``yield``, so a consumer of the stream keeps its own grad mode.
        """
        special = self._ocr_processor().special_ids
        with torch.inference_mode():
            logits, cache, mask, positions = self._prefill(rows, special)
        active = list(range(len(rows)))
        for step in range(max_new_tokens):
            banned = [no_repeat.banned(rows[r].generated) if no_repeat else set() for r in active]
            with torch.inference_mode():
                chosen = ban_ids(logits, banned).argmax(dim=-1).tolist()
            keep: list[int] = []
            for local, (row_index, token) in enumerate(zip(active, chosen, strict=True)):
                row = rows[row_index]
                row.generated.append(token)
                if token == special.eos:
                    row.finish_reason = "eos"
                else:
                    keep.append(local)
                yield row_index, token
            if not keep or step == max_new_tokens - 1:
                return
            with torch.inference_mode():
                if len(keep) < len(active):
                    # Finished pages leave the batch: their cache rows are dropped.
                    index = torch.tensor(keep, device=positions.device)
                    cache.batch_select_indices(index)
                    positions = positions[index]
                    mask = None if mask is None else mask[index]
                    chosen = [chosen[i] for i in keep]
                    active = [active[i] for i in keep]
                tokens = torch.tensor(chosen, device=positions.device).unsqueeze(1)  # (B, 1)
                if mask is not None:
                    mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                positions = positions + 1
                logits, cache = self._decoder_forward(tokens, (), mask, positions, cache)

    def _prefill(
        self, rows: list[_Row], special: SpecialTokenIds
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None, torch.Tensor]:
        device = self._device()
        longest = max(len(row.input_ids) for row in rows)
        ids = torch.full((len(rows), longest), special.pad, dtype=torch.long, device=device)
        real = torch.zeros((len(rows), longest), dtype=torch.long, device=device)
        for b, row in enumerate(rows):
            ids[b, longest - len(row.input_ids) :] = torch.tensor(row.input_ids, device=device)
            real[b, longest - len(row.input_ids) :] = 1
            count = row.input_ids.count(special.image)
            have = 0 if row.vision is None else int(row.vision.shape[0])
            if count != have:
                raise InvalidSettingError(
                    f"prompt {b} has {count} image slots but {have} vision tokens were given"
                )
        vision = [row.vision for row in rows if row.vision is not None]
        # Positions start at 0 on each prompt's first real token, as if it were alone.
        positions = (real.cumsum(dim=1) - 1).clamp(min=0)  # (B, L)
        mask = None if bool(real.all()) else real
        logits, cache = self._decoder_forward(ids, vision, mask, positions, DeepseekOcrKVCache())
        return logits, cache, mask, positions[:, -1:]


def _check_budget(max_new_tokens: int) -> None:
    if max_new_tokens < 1:
        raise InvalidSettingError(f"max_new_tokens must be at least 1, got {max_new_tokens}")


class _DeepSeekOCRModel(Protocol):
    """What the mixin needs of ``DeepSeekOCR`` (its own forward and vision encoder)."""

    config: Any

    def __call__(
        self,
        input_ids: torch.Tensor,
        *,
        vision_embeds: Sequence[torch.Tensor] | None,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        past_key_values: Any,
        use_cache: bool,
        logits_to_keep: int,
    ) -> Any: ...

    def encode_views(
        self,
        global_pixels: torch.Tensor,
        tile_pixels: torch.Tensor | None = None,
        tile_grid: tuple[int, int] | None = None,
    ) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


class DeepSeekOCRGenerationMixin(OCRGenerationAPI):
    """Generation for :class:`~optical_memory.model.DeepSeekOCR`.

    Mix in first: ``class DeepSeekOCR(DeepSeekOCRGenerationMixin, PreTrainedModel)``.
    The tokenizer comes from :meth:`set_processor`, or is loaded on first use from the
    directory the model was loaded from (``config.name_or_path``).
    """

    _ocr_processor_instance: DeepSeekOCRProcessor | None = None

    def set_processor(self, processor: DeepSeekOCRProcessor) -> None:
        """Attach the processor (tokenizer, image processor, special ids) to use."""
        self._ocr_processor_instance = processor

    def _ocr_processor(self) -> DeepSeekOCRProcessor:
        if self._ocr_processor_instance is None:
            config: Any = getattr(self, "config", None)
            path = str(getattr(config, "name_or_path", "") or "")
            if not path or not os.path.isdir(path):
                raise CheckpointError(
                    "no tokenizer attached: load the model with from_pretrained(<checkpoint dir>)"
                    " or call set_processor(DeepSeekOCRProcessor.from_pretrained(<dir>))"
                )
            self._ocr_processor_instance = DeepSeekOCRProcessor.from_pretrained(
                path, DeepSeekOCRImageProcessor(), self._special_ids()
            )
        return self._ocr_processor_instance

    def _special_ids(self) -> SpecialTokenIds:
        config: Any = getattr(self, "config", None)
        text = getattr(config, "text_config", None)
        pad = getattr(text, "pad_token_id", None)
        bos = getattr(text, "bos_token_id", None)
        eos = getattr(text, "eos_token_id", None)
        if isinstance(eos, list):  # the config type allows several; the first ends a page
            eos = eos[0] if eos else None
        return SpecialTokenIds(
            bos=0 if bos is None else int(bos),
            eos=1 if eos is None else int(eos),
            pad=2 if pad is None else int(pad),
            image=int(getattr(config, "image_token_id", SpecialTokenIds.image)),
        )

    def _model(self) -> _DeepSeekOCRModel:
        return cast(_DeepSeekOCRModel, self)

    def _device(self) -> torch.device:
        return next(self._model().parameters()).device

    def _encode_images(self, images: Sequence[ImageSource], mode: str) -> list[EncodedImage]:
        views = self._ocr_processor().image_processor.preprocess(images, mode)
        model = self._model()
        encoded = []
        # no_grad, not inference_mode: callers may cache and reuse these tensors freely.
        with torch.no_grad():
            for view in views:
                tiled = view.layout.num_tiles > 0
                tokens = model.encode_views(
                    view.global_view,
                    view.tiles if tiled else None,
                    view.layout.tile_grid if tiled else None,
                )
                encoded.append(EncodedImage(tokens, view.layout))
        return encoded

    def _decoder_forward(
        self,
        input_ids: torch.Tensor,
        vision: Sequence[torch.Tensor],
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        past_key_values: Any,
    ) -> tuple[torch.Tensor, Any]:
        output = self._model()(
            input_ids,
            vision_embeds=list(vision) or None,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
        return output.logits[:, -1, :], output.past_key_values
