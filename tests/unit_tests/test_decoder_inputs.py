"""Input validation shared by the decoders; no OCR engine runs here."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optical_memory.decoders import (
    Decoder,
    ImageInput,
    RapidOCRDecoder,
    TesseractDecoder,
    get_decoder,
)
from optical_memory.decoders._layout import TextLine, join_lines, restore_spaces
from optical_memory.decoders.base import load_image, load_images
from optical_memory.errors import InvalidImageError, UnknownDecoderError


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_accepts_every_supported_form(tmp_path: Path) -> None:
    gray = Image.new("L", (8, 4), 200)
    path = tmp_path / "page.png"
    gray.save(path)
    inputs: list[ImageInput] = [
        gray,
        _png(gray),
        bytearray(_png(gray)),
        path,
        str(path),
        np.full((4, 8), 200, dtype=np.uint8),
        np.full((4, 8, 3), 200, dtype=np.uint8),
    ]
    for image in load_images(inputs):
        assert image.mode == "RGB"
        assert image.size == (8, 4)
        assert image.getpixel((0, 0)) == (200, 200, 200)


def test_transparent_pixels_become_white() -> None:
    image = load_image(Image.new("RGBA", (2, 2), (0, 0, 0, 0)))
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_corrupt_bytes_name_their_index() -> None:
    good = _png(Image.new("L", (4, 4)))
    with pytest.raises(InvalidImageError, match="image 1: bytes") as caught:
        load_images([good, b"\x89PNG\r\n\x1a\nnot really a png"])
    assert caught.value.__cause__ is not None


def test_truncated_png_is_invalid() -> None:
    data = _png(Image.new("L", (64, 64), 10))
    with pytest.raises(InvalidImageError, match="image 0"):
        load_image(data[: len(data) // 2])


def test_empty_bytes_are_invalid() -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"")


def test_missing_file_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="does not exist"):
        load_images([tmp_path / "nope.png"])


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int64, bool])
def test_wrong_dtype_is_invalid(dtype: type) -> None:
    with pytest.raises(InvalidImageError, match="dtype"):
        load_image(np.zeros((4, 4), dtype=dtype), index=3)


@pytest.mark.parametrize("shape", [(4,), (4, 4, 4), (4, 4, 1), (2, 4, 4, 3)])
def test_wrong_shape_is_invalid(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match="shape"):
        load_image(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(0, 4), (4, 0, 3)])
def test_zero_sized_array_is_invalid(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(np.zeros(shape, dtype=np.uint8))


def test_zero_sized_pil_image_is_invalid() -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(Image.new("RGB", (0, 5)))


def test_unsupported_type_is_invalid() -> None:
    with pytest.raises(InvalidImageError, match="unsupported type int"):
        load_images([42])  # type: ignore[list-item]


def test_single_page_must_be_wrapped_in_a_list() -> None:
    with pytest.raises(InvalidImageError, match="wrap a single page"):
        load_images(Image.new("L", (4, 4)))  # type: ignore[arg-type]


def test_invalid_image_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_image(b"junk")


def test_rapidocr_decode_validates_before_loading_the_engine() -> None:
    with pytest.raises(InvalidImageError, match="image 0"):
        RapidOCRDecoder().decode([np.zeros((4, 4), dtype=np.float64)])


def test_unknown_decoder_name() -> None:
    with pytest.raises(UnknownDecoderError, match="rapidocr, tesseract"):
        get_decoder("easyocr")
    assert issubclass(UnknownDecoderError, ValueError)


def test_get_decoder_builds_rapidocr_without_loading_it() -> None:
    decoder = get_decoder("rapidocr", script="cjk", workers=1)
    assert isinstance(decoder, RapidOCRDecoder)
    assert isinstance(decoder, Decoder)
    assert decoder.name == "rapidocr"
    assert TesseractDecoder.name == "tesseract"


def test_rapidocr_rejects_unknown_script() -> None:
    with pytest.raises(ValueError, match="script"):
        RapidOCRDecoder(script="greek")  # type: ignore[arg-type]


def test_restore_spaces_from_character_positions() -> None:
    # Evenly pitched "ab" + a wide gap + "cd": the gap holds a space.
    assert restore_spaces("abcdef", [0, 3, 9, 12, 18, 21]) == "ab cd ef"
    # A line that kept its spaces is left alone.
    assert restore_spaces("ab cd ef", [0, 3, 6, 9, 12, 15, 18, 21]) == "ab cd ef"
    # CJK characters never get spaces between them.
    assert restore_spaces("你好世界", [0, 3, 9, 12]) == "你好世界"


def test_join_lines_reads_columns_in_order() -> None:
    lines = [
        TextLine("right 1", 300, 0, 500, 10),
        TextLine("left 2", 0, 12, 200, 22),
        TextLine("left 1b", 110, 0, 200, 10),
        TextLine("left 1a", 0, 0, 100, 10),
        TextLine("right 2", 300, 12, 500, 22),
    ]
    assert join_lines(lines) == "left 1a left 1b\nleft 2\nright 1\nright 2"
