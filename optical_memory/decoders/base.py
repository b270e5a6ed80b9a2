"""What every decoder is, and the image loading they share.

A decoder reads page images back to text. Inputs may be PIL images, encoded PNG or
JPEG bytes, file paths, or ``uint8`` numpy arrays; :func:`load_image` turns any of
them into an RGB PIL image or raises :class:`~optical_memory.errors.InvalidImageError`
naming the input's position and what is wrong with it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from optical_memory.errors import InvalidImageError, InvalidSettingError

__all__ = ["Decoder", "ImageInput", "WorkerDecoder", "load_image", "load_images"]

ImageInput: TypeAlias = (
    Image.Image | bytes | bytearray | memoryview | str | os.PathLike[str] | NDArray[np.uint8]
)
"""One page: a PIL image, PNG/JPEG bytes, a path, or an HxW / HxWx3 ``uint8`` array."""


@runtime_checkable
class Decoder(Protocol):
    """Reads page images back to text.

    Attributes:
        name: Short registry name, e.g. ``"rapidocr"``.
    """

    name: str

    def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each image to text.

        Args:
            images: Pages in any supported input form.

        Returns:
            One string per image, in input order.

        Raises:
            InvalidImageError: An input is corrupt, empty or of an unsupported type.
            DecoderUnavailable: The engine is not installed.
        """
        ...


_D = TypeVar("_D", bound="WorkerDecoder")


class WorkerDecoder:
    """What the CPU decoders share: a worker count, ``close()`` and the ``with`` form."""

    name: str
    _workers: int

    @staticmethod
    def _worker_count(workers: int | None) -> int:
        if workers is not None and workers < 1:
            raise InvalidSettingError(f"workers must be at least 1, not {workers}")
        return workers or os.cpu_count() or 1

    @property
    def workers(self) -> int:
        """How many pages a batch reads at once."""
        return self._workers

    def close(self) -> None:
        """Release the decoder's threads and engines (a no-op where there are none)."""

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _open_encoded(data: bytes | str | os.PathLike[str], index: int) -> Image.Image:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    what = "bytes" if isinstance(data, bytes) else f"file {os.fspath(data)!r}"
    try:
        image = Image.open(source)
        with image:
            image.load()
            copy: Image.Image = image.copy()
        return copy
    except FileNotFoundError as exc:
        raise InvalidImageError(f"image {index}: {what} does not exist") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow signals undecodable data with OSError (UnidentifiedImageError) or,
        # for some truncated formats, SyntaxError/ValueError.
        raise InvalidImageError(
            f"image {index}: {what} could not be decoded as an image: {exc}"
        ) from exc


def _from_array(array: NDArray[np.generic], index: int) -> Image.Image:
    if array.dtype != np.uint8:
        raise InvalidImageError(f"image {index}: array dtype is {array.dtype}, expected uint8")
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    if array.ndim == 3 and array.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB")
    raise InvalidImageError(
        f"image {index}: array shape is {array.shape}, expected (H, W) or (H, W, 3)"
    )


def load_image(image: ImageInput, index: int = 0) -> Image.Image:
    """Turn one supported input into an RGB PIL image.

    Args:
        image: A PIL image, PNG/JPEG bytes, a path, or an HxW / HxWx3 ``uint8`` array.
        index: The input's position, used in error messages.

    Returns:
        The page as an RGB image with both sides at least one pixel.

    Raises:
        InvalidImageError: The input is corrupt, empty, missing, or of an unsupported
            type, dtype or shape.
    """
    if isinstance(image, Image.Image):
        try:
            image.load()
        except (OSError, ValueError) as exc:
            raise InvalidImageError(f"image {index}: PIL image cannot be loaded: {exc}") from exc
        loaded = image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        if len(image) == 0:
            raise InvalidImageError(f"image {index}: bytes are empty")
        loaded = _open_encoded(bytes(image), index)
    elif isinstance(image, (str, os.PathLike)):
        loaded = _open_encoded(Path(image), index)
    elif isinstance(image, np.ndarray):
        loaded = _from_array(image, index)
    else:
        raise InvalidImageError(
            f"image {index}: unsupported type {type(image).__name__}; expected a PIL image,"
            " PNG/JPEG bytes, a path or a uint8 numpy array"
        )
    if loaded.width == 0 or loaded.height == 0:
        raise InvalidImageError(f"image {index}: image is empty ({loaded.width}x{loaded.height})")
    return loaded if loaded.mode == "RGB" else _to_rgb(loaded)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white paper, not black.
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, (255, 255, 255))
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    return image.convert("RGB")


def load_images(images: Sequence[ImageInput]) -> list[Image.Image]:
    """Load every input with :func:`load_image`, failing on the first bad one.

    Args:
        images: Pages in any supported input form.

    Returns:
        RGB images in input order.

    Raises:
        InvalidImageError: An input is unusable; the message names its index.
    """
    if isinstance(images, (str, bytes, Image.Image, np.ndarray)):
        raise InvalidImageError("images must be a sequence of pages; wrap a single page in a list")
    return [load_image(image, index) for index, image in enumerate(images)]
