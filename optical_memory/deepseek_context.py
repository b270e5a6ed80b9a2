"""DeepSeek-OCR over the memory: cached vision tokens for pages, and the prompt they fill.

With an encoder set, ``OpticalMemory.context(thread, reader="deepseek-ocr")`` gives every
page of the context its vision tokens: read from the store's cache, or encoded on a miss
(all misses of one mode in one ``encode`` call) and stored with ``put_vision_tokens``.
A cached set made by other weights (another fingerprint) or in another mode is a miss, so
a stale cache is encoded again, never read. A page that decays is a new page (its id is
a hash of its PNG bytes); the store drops the old page's tokens with it.

A DeepSeek-OCR v1 encoder reads each page in the mode its reader bills it in (a 640 px
page in Small, a 512 px page decayed to Tiny in Tiny), so the context's token count is
what the decoder actually gets. Other encoders read every page in their own mode.

``OpticalContext.to_deepseek()`` turns such a context into a :class:`DeepSeekPrompt`: the
plain-template prompt with one ``<image>`` marker per page, in order, and the pages'
vision tokens, which ``DeepSeekOCR.generate`` takes as they are::

    >>> memory = OpticalMemory("sqlite:///chat.db", encoder=DeepSeekOCREncoder(path))
    >>> prompt = memory.context("chat", reader="deepseek-ocr").to_deepseek()
    >>> model = memory.encoder.model
    >>> model.generate(prompt.prompt, vision_tokens=prompt.tensors()).text

torch is imported only when tensors are built: this module stays light.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from optical_memory.errors import NotFound, NoVisionTokens
from optical_memory.readers import DeepSeekOCRRule, ReaderProfile
from optical_memory.records import VisionTokens
from optical_memory.vision_encoder import DeepSeekOCREncoder, Encoder, tokens_to_tensor

if TYPE_CHECKING:
    import torch

    from optical_memory.context import OpticalContext
    from optical_memory.decoders.base import Decoder
    from optical_memory.model.generation_deepseek_ocr import GenerationResult
    from optical_memory.store.base import Store

__all__ = [
    "FINGERPRINT_KEY",
    "DeepSeekPrompt",
    "NoVisionTokens",
    "PageWant",
    "is_deepseek_reader",
    "page_tokens",
    "read_mode",
    "token_reader",
    "with_vision_tokens",
]

FINGERPRINT_KEY = "vision_fingerprint"
"""The ``OpticalContext.metadata`` key naming the encoder whose tokens its pages carry."""

TokenReader = Callable[[Sequence[VisionTokens]], list[str]]


@dataclass(frozen=True)
class DeepSeekPrompt:
    """What DeepSeek-OCR answers from: a plain-template prompt and its images' tokens.

    Attributes:
        prompt: The memory as text with one ``<image>`` marker per page, oldest first: the
            preamble, each page's label and marker, segments shown as text, the fact sheet,
            then the recent turns as ``role: text`` lines.
        vision_tokens: One record per marker, in marker order.
        fingerprint: The encoder that made the tokens.
        page_ids: The page of each marker.
    """

    prompt: str
    vision_tokens: tuple[VisionTokens, ...]
    fingerprint: str
    page_ids: tuple[str, ...] = ()

    def tensors(self, device: str | torch.device = "cpu") -> list[torch.Tensor]:
        """The vision tokens as ``(slots, hidden)`` tensors, for ``generate(vision_tokens=)``."""
        return [tokens_to_tensor(tokens, self.fingerprint, device) for tokens in self.vision_tokens]

    def generate(
        self, encoder: DeepSeekOCREncoder, *, max_new_tokens: int = 8192
    ) -> GenerationResult:
        """Generate greedily from this prompt with the encoder's model.

        Args:
            encoder: The encoder that made the tokens (its model decodes).
            max_new_tokens: Most ids to generate.

        Returns:
            The model's :class:`~optical_memory.model.GenerationResult`.

        Raises:
            CheckpointMismatchError: The encoder's weights did not make these tokens.
        """
        tensors = [tokens_to_tensor(tokens, encoder.fingerprint) for tokens in self.vision_tokens]
        return encoder.model.generate(
            self.prompt, vision_tokens=tensors, max_new_tokens=max_new_tokens
        )


class PageWant(NamedTuple):
    """A page whose vision tokens are wanted, and the mode to read it in (``None``: the
    encoder's own)."""

    page_id: str
    png: bytes
    mode: str | None


def is_deepseek_reader(profile: ReaderProfile) -> bool:
    """Whether ``profile`` bills images as DeepSeek-OCR reads them (its vision tokens)."""
    return isinstance(profile.image_rule, DeepSeekOCRRule)


def _v1_encoder(encoder: Encoder) -> DeepSeekOCREncoder | None:
    """The encoder if it runs DeepSeek-OCR v1 (whose modes follow the page size)."""
    if not isinstance(encoder, DeepSeekOCREncoder):
        return None
    from optical_memory.model.deepseek_ocr2 import DeepSeekOCR2

    return None if isinstance(encoder.model, DeepSeekOCR2) else encoder


def read_mode(
    encoder: Encoder, rule: DeepSeekOCRRule | None, width: int, height: int
) -> str | None:
    """The mode a page of this size is encoded in.

    Args:
        encoder: The memory's encoder.
        rule: The reader's image rule (``None``: downshift from the encoder's own mode).
        width, height: The page's size.

    Returns:
        The mode for a DeepSeek-OCR v1 encoder, else ``None`` (the encoder's own).
    """
    v1 = _v1_encoder(encoder)
    if v1 is None:
        return None
    return (rule or DeepSeekOCRRule(v1.mode)).read_mode(width, height)  # type: ignore[arg-type]


def _in_mode(encoder: Encoder, mode: str | None) -> Encoder:
    if mode is None or not isinstance(encoder, DeepSeekOCREncoder) or encoder.mode == mode:
        return encoder
    _ = encoder.model, encoder.fingerprint  # loaded once, here: the copy shares them
    # A shallow copy (of any subclass) in another mode: same weights, same fingerprint.
    sibling = copy.copy(encoder)
    sibling.mode = mode
    return sibling


def page_tokens(
    store: Store, encoder: Encoder, thread: str, pages: Sequence[PageWant]
) -> list[VisionTokens]:
    """Vision tokens of each page: the store's cached set when the encoder's weights made
    it in the wanted mode, else encoded now (misses of one mode in one ``encode`` call)
    and stored.

    Args:
        store: The memory's store.
        encoder: The encoder.
        thread: The thread the pages belong to.
        pages: The pages, in order (a page may repeat).

    Returns:
        One record per page, in order.

    Raises:
        StoreError: The store failed.
        DecoderUnavailable, CheckpointError, InvalidImageError: Encoding failed.
    """
    fingerprint = encoder.fingerprint
    found: dict[str, VisionTokens] = {}
    misses: dict[str | None, dict[str, bytes]] = {}
    for want in pages:
        if want.page_id in found or any(want.page_id in group for group in misses.values()):
            continue
        hit = store.get_vision_tokens(thread, want.page_id, fingerprint)
        if hit is not None and (want.mode is None or hit.mode == want.mode):
            found[want.page_id] = hit
        else:
            misses.setdefault(want.mode, {})[want.page_id] = want.png
    for mode, group in misses.items():
        records = _in_mode(encoder, mode).encode(list(group.values()))
        for page_id, tokens in zip(group, records, strict=True):
            with contextlib.suppress(NotFound):  # decayed meanwhile; this context still shows it
                store.put_vision_tokens(thread, page_id, tokens)
            found[page_id] = tokens
    return [found[want.page_id] for want in pages]


def with_vision_tokens(
    context: OpticalContext, store: Store, encoder: Encoder, profile: ReaderProfile
) -> OpticalContext:
    """``context`` with every page's vision tokens attached (see :func:`page_tokens`) and
    the encoder's fingerprint under ``metadata["vision_fingerprint"]``."""
    rule = profile.image_rule if isinstance(profile.image_rule, DeepSeekOCRRule) else None
    wants = [
        PageWant(page.page_id, page.png, read_mode(encoder, rule, page.width, page.height))
        for page in context.pages
    ]
    tokens = dict(
        zip(
            [want.page_id for want in wants],
            page_tokens(store, encoder, context.thread, wants),
            strict=True,
        )
    )
    parts = tuple(
        part
        if part.page is None
        else replace(part, page=replace(part.page, vision_tokens=tokens[part.page.page_id]))
        for part in context.parts
    )
    metadata = {**context.metadata, FINGERPRINT_KEY: encoder.fingerprint}
    return replace(context, parts=parts, metadata=metadata)


def token_reader(
    encoder: Encoder, decoder: Decoder | None, default: Decoder | None
) -> TokenReader | None:
    """How a segment is read back from its pages' vision tokens, or ``None`` to read the
    PNGs with a :class:`~optical_memory.decoders.Decoder` instead.

    Args:
        encoder: The memory's encoder.
        decoder: The decoder the caller asked for.
        default: The memory's own decoder.

    Returns:
        The asked-for decoder's ``decode_tokens`` when it reads this encoder's tokens;
        with no decoder asked for and a DeepSeek-OCR encoder, the memory's decoder's
        ``decode_tokens`` if it reads them, else the encoder's model with the official
        recipe; ``None`` otherwise.
    """
    if decoder is not None:
        return _decode_tokens(decoder, encoder)
    if not isinstance(encoder, DeepSeekOCREncoder):
        return None
    own = None if default is None else _decode_tokens(default, encoder)
    return own or (lambda tokens: _generate(encoder, tokens))


def _decode_tokens(decoder: Decoder, encoder: Encoder) -> TokenReader | None:
    """``decoder.decode_tokens`` if it is a DeepSeek-OCR decoder over the same weights."""
    decode_tokens = getattr(decoder, "decode_tokens", None)
    own_encoder = getattr(decoder, "encoder", None)
    if decode_tokens is None or getattr(own_encoder, "fingerprint", None) != encoder.fingerprint:
        return None
    reader: TokenReader = decode_tokens
    return reader


def _generate(encoder: DeepSeekOCREncoder, tokens: Sequence[VisionTokens]) -> list[str]:
    from optical_memory.model.processing_deepseek_ocr import DEFAULT_PROMPT

    tensors = [tokens_to_tensor(item, encoder.fingerprint) for item in tokens]
    results = encoder.model.generate_batch(
        [DEFAULT_PROMPT] * len(tensors), vision_tokens=[[tensor] for tensor in tensors]
    )
    return [result.text.strip() for result in results]
