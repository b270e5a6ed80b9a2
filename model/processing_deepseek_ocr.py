"""Prompt assembly and the tokenizer for DeepSeek-OCR.

DeepSeek-OCR uses the "plain" template: no role tags and no system prompt, the user text
stripped of surrounding whitespace. Each ``<image>`` marker in the prompt becomes as many
image-token ids (128815) as the image fills slots in the sequence, and the ids are::

    [BOS 0] + encode(text before <image>) + [128815] * slots + encode(text after)

with no EOS and no other special tokens added by the tokenizer. A prompt may hold several
images; the markers are filled in order.

The tokenizer is the checkpoint's ``tokenizer.json``, read with the ``tokenizers`` library
from a local directory; nothing is downloaded.

Example:
    >>> processor = DeepSeekOCRProcessor.from_pretrained("/models/DeepSeek-OCR")
    >>> ids = processor.prompt_ids("<image>\\nFree OCR.", slots=[111])
    >>> len(ids), ids[0]
    (116, 0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from optical_memory.errors import CheckpointError, InvalidSettingError

from .image_processing_deepseek_ocr import (
    DeepSeekOCRImageProcessor,
    DeepSeekOCRViews,
    ImageSource,
)

__all__ = [
    "IMAGE_TOKEN",
    "DeepSeekOCRProcessor",
    "PromptInputs",
    "SpecialTokenIds",
    "TextStream",
    "load_tokenizer",
]

IMAGE_TOKEN = "<image>"
"""The marker in a prompt where an image goes."""

DEFAULT_PROMPT = "<image>\nFree OCR."
"""Plain text without layout, the prompt of the paper's compression study."""


@dataclass(frozen=True)
class SpecialTokenIds:
    """The token ids prompt assembly and generation rely on.

    Attributes:
        bos: Beginning of sequence, put in front of every prompt.
        eos: End of sequence, which ends generation.
        pad: Padding for batches (never attended to).
        image: The image-slot placeholder the vision embeddings replace.
    """

    bos: int = 0
    eos: int = 1
    pad: int = 2
    image: int = 128815


@dataclass(frozen=True)
class PromptInputs:
    """A tokenized prompt and the pixel views of its images.

    Attributes:
        input_ids: The prompt ids, image slots expanded.
        views: One entry per image, in prompt order.
    """

    input_ids: list[int]
    views: list[DeepSeekOCRViews]


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a checkpoint's ``tokenizer.json`` from a local directory or file.

    Args:
        path: The checkpoint directory, or the ``tokenizer.json`` file itself.

    Returns:
        The tokenizer.

    Raises:
        CheckpointError: The file is missing or cannot be parsed.
    """
    location = Path(path)
    file = location / "tokenizer.json" if location.is_dir() else location
    if not file.is_file():
        raise CheckpointError(f"no tokenizer.json at {os.fspath(location)!r}")
    try:
        return Tokenizer.from_file(os.fspath(file))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise CheckpointError(f"cannot read tokenizer {os.fspath(file)!r}: {exc}") from exc


class TextStream:
    """Turns generated ids into text pieces as they arrive, keeping multi-byte characters
    whole (a piece is empty while a character is still incomplete).

    Args:
        tokenizer: The tokenizer whose decoder to use.
        skip_ids: Ids that produce no text (the EOS id).
    """

    def __init__(self, tokenizer: Tokenizer, skip_ids: frozenset[int] = frozenset()) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_ids
        # Special tokens stay: grounding and table tags are part of the model's output.
        self._stream = DecodeStream(skip_special_tokens=False)

    def push(self, token_id: int) -> str:
        """Decode one more id.

        Args:
            token_id: The next generated id.

        Returns:
            The new text it completes, possibly ``""``.
        """
        if token_id in self._skip:
            return ""
        piece = self._stream.step(self._tokenizer, token_id)
        return piece or ""


class DeepSeekOCRProcessor:
    """Builds DeepSeek-OCR prompts from text and images, and decodes generated ids.

    Args:
        tokenizer: The checkpoint's tokenizer.
        image_processor: Turns images into pixel views; a default Small-mode processor
            when not given.
        special_ids: The special token ids of the checkpoint (the official ids by default).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        image_processor: DeepSeekOCRImageProcessor | None = None,
        special_ids: SpecialTokenIds | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor or DeepSeekOCRImageProcessor()
        self.special_ids = special_ids or SpecialTokenIds()

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        image_processor: DeepSeekOCRImageProcessor | None = None,
        special_ids: SpecialTokenIds | None = None,
    ) -> DeepSeekOCRProcessor:
        """Load the tokenizer of a local checkpoint directory.

        Args:
            path: The checkpoint directory (holding ``tokenizer.json``).
            image_processor: See the class arguments.
            special_ids: See the class arguments.

        Returns:
            The processor.

        Raises:
            CheckpointError: ``tokenizer.json`` is missing or malformed.
        """
        return cls(load_tokenizer(path), image_processor, special_ids)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text, without any special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def prompt_ids(self, prompt: str, slots: Sequence[int] = ()) -> list[int]:
        """Token ids of a prompt whose ``<image>`` markers take the given slot counts.

        Args:
            prompt: The prompt, e.g. ``"<image>\\nFree OCR."``; surrounding whitespace is
                stripped as the plain template does.
            slots: Slot count of each image, in marker order (see
                :attr:`ViewLayout.num_slots`, or the rows of cached vision tokens).

        Returns:
            ``[BOS] + text + image slots + text ...``, without EOS.

        Raises:
            InvalidSettingError: The number of markers differs from the number of images,
                or a slot count is not positive.
        """
        pieces = prompt.strip().split(IMAGE_TOKEN)
        if len(pieces) - 1 != len(slots):
            raise InvalidSettingError(
                f"the prompt has {len(pieces) - 1} {IMAGE_TOKEN} markers but {len(slots)} "
                "images were given"
            )
        for count in slots:
            if count < 1:
                raise InvalidSettingError(f"an image must take at least one slot, got {count}")
        ids = [self.special_ids.bos]
        for piece, count in zip(pieces, [*slots, 0], strict=True):
            ids += self.encode_text(piece)
            ids += [self.special_ids.image] * count
        return ids

    def __call__(
        self, prompt: str, images: Sequence[ImageSource] = (), mode: str | None = None
    ) -> PromptInputs:
        """Preprocess images and tokenize the prompt around them.

        Args:
            prompt: The prompt with one ``<image>`` marker per image.
            images: The images, in marker order.
            mode: The DeepSeek-OCR mode (the image processor's default when not given).

        Returns:
            The prompt ids and the images' pixel views.

        Raises:
            InvalidImageError: An image is unusable.
            InvalidSettingError: Unknown mode, or markers and images do not match.
        """
        views = self.image_processor.preprocess(images, mode)
        ids = self.prompt_ids(prompt, [view.layout.num_slots for view in views])
        return PromptInputs(input_ids=ids, views=views)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids; EOS is dropped, other special tokens are kept."""
        kept = [i for i in ids if i != self.special_ids.eos]
        return str(self.tokenizer.decode(kept, skip_special_tokens=False))

    def text_stream(self) -> TextStream:
        """A fresh incremental decoder for one generation."""
        return TextStream(self.tokenizer, frozenset({self.special_ids.eos}))
