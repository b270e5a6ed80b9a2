"""One step both ingestion paths share: pages as the document gives them -> stored pages.

The single-process loop and the Ray pipeline call the same functions, so their records,
PNG bytes and texts are identical: a page is encoded to PNG once (:func:`prepare`), the
decoder reads a batch of them, and :func:`finish` makes the records.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from PIL import Image

from optical_memory.decoders.base import Decoder
from optical_memory.documents.formats import Flow, SourcePage
from optical_memory.documents.page_store import PageRecord, tokens_key
from optical_memory.errors import DecoderRequired
from optical_memory.metrics import char_accuracy

if TYPE_CHECKING:
    from optical_memory.vision_encoder import Encoder

__all__ = ["DecoderSpec", "PreparedPage", "StoredPage", "finish", "prepare", "resolve_decoder"]

DecoderSpec: TypeAlias = Decoder | str | Callable[[], Decoder]
"""A decoder, its registry name (``"rapidocr"``), or a function making one (what a Ray
worker gets: engines do not pickle, so each worker makes its own)."""

_PNG_LEVEL = 3  # zlib level: pages are mostly white; 3 is within 2% of 9's size at 4x speed


@dataclass(frozen=True)
class PreparedPage:
    """A page ready to decode: its PNG bytes and what the document says it reads."""

    page_number: int
    png: bytes
    reference: str | None
    flow: Flow
    width: int
    height: int


@dataclass(frozen=True)
class StoredPage:
    """A finished page: its record, PNG and encoded vision tokens (or ``None``)."""

    record: PageRecord
    png: bytes
    tokens: bytes | None


def prepare(page: SourcePage) -> PreparedPage:
    """Encode ``page``'s image as PNG (the stored image; decoders read it back from it)."""
    buffer = io.BytesIO()
    image = page.image if page.image.mode in ("L", "RGB") else page.image.convert("RGB")
    image.save(buffer, format="PNG", compress_level=_PNG_LEVEL)
    return PreparedPage(page.page_number, buffer.getvalue(), page.reference, page.flow, *image.size)


def resolve_decoder(spec: DecoderSpec | None) -> Decoder | None:
    """The decoder ``spec`` names or makes."""
    if spec is None:
        return None
    if not isinstance(spec, type) and isinstance(spec, Decoder):
        return spec
    if isinstance(spec, str):
        from optical_memory.decoders import get_decoder

        return get_decoder(spec)
    return spec()


def finish(
    source: str,
    sha256: str,
    profile: str,
    pages: Sequence[PreparedPage],
    decoder: Decoder | None,
    encoder: Encoder | None = None,
) -> list[StoredPage]:
    """Decode (when there is a decoder) and encode (when there is an encoder) ``pages``.

    Raises:
        DecoderRequired: An image-only page and no decoder.
        DecoderError: The decoder failed.
    """
    if decoder is None:
        bare = next((page for page in pages if page.reference is None), None)
        if bare is not None:
            raise DecoderRequired(
                f"{source}: page {bare.page_number} is an image without text; "
                "give a decoder (e.g. decoder='rapidocr') to read it"
            )
    images = [Image.open(io.BytesIO(page.png)) for page in pages] if decoder or encoder else []
    decoded: list[str | None] = (
        list(decoder.decode(images)) if decoder is not None else [None] * len(pages)
    )
    tokens = encoder.encode(images) if encoder is not None else None
    finished = []
    for index, page in enumerate(pages):
        read = decoded[index]
        reference = page.reference
        accuracy = (
            round(char_accuracy(reference, read), 4)
            if reference is not None and read is not None
            else None
        )
        encoded: bytes | None = None
        token_key = None
        if tokens is not None:
            from optical_memory.store.codec import encode

            encoded = encode(tokens[index])
            token_key = tokens_key(sha256, profile, page.page_number)
        record = PageRecord(
            source=source,
            sha256=sha256,
            profile=profile,
            page_number=page.page_number,
            flow=page.flow,
            text=reference if reference is not None else (read or ""),
            decoded=read,
            accuracy=accuracy,
            decoder=None if decoder is None else decoder.name,
            width=page.width,
            height=page.height,
            vision_tokens=token_key,
        )
        finished.append(StoredPage(record, page.png, encoded))
    return finished
