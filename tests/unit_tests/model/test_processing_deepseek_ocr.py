"""Image views, slot counts, tokenizer loading and prompt assembly for DeepSeek-OCR."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from optical_memory.errors import CheckpointError, InvalidImageError, InvalidSettingError
from optical_memory.model.image_processing_deepseek_ocr import (
    MODES,
    DeepSeekOCRImageProcessor,
    choose_tile_grid,
    count_slots,
    load_rgb_image,
)
from optical_memory.model.processing_deepseek_ocr import (
    DeepSeekOCRProcessor,
    SpecialTokenIds,
    load_tokenizer,
)

from .tiny_tokenizer import write_tiny_tokenizer

IMAGE_ID = 1000


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --- slot counts and tiles ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "slots"), [("tiny", 73), ("small", 111), ("base", 273), ("large", 421)]
)
def test_single_view_modes_take_rows_times_q_plus_one_plus_separator(mode: str, slots: int) -> None:
    for size in [(100, 100), (1654, 2339), (3000, 200)]:
        assert count_slots(*size, mode) == slots


@pytest.mark.parametrize(
    ("size", "grid9", "slots9", "grid6", "slots6"),
    [
        ((640, 640), (0, 0), 273, (0, 0), 273),
        ((300, 600), (0, 0), 273, (0, 0), 273),
        ((1240, 1754), (2, 3), 903, (2, 3), 903),
        ((1654, 2339), (2, 3), 903, (2, 3), 903),
        ((1024, 1024), (2, 2), 693, (2, 2), 693),
        ((1920, 1080), (4, 2), 1093, (2, 1), 483),
        ((800, 600), (3, 2), 893, (3, 2), 893),
    ],
)
def test_gundam_tiles_follow_the_official_choice(
    size: tuple[int, int],
    grid9: tuple[int, int],
    slots9: int,
    grid6: tuple[int, int],
    slots6: int,
) -> None:
    assert choose_tile_grid(*size) == grid9
    assert count_slots(*size, "gundam") == slots9
    assert choose_tile_grid(*size, max_tiles=6) == grid6
    assert count_slots(*size, "gundam", max_tiles=6) == slots6


def test_gundam_exact_tie_prefers_more_tiles_only_for_large_images() -> None:
    # A square image ties (2,2) with (3,3); (3,3) wins only with more than half its pixels.
    assert choose_tile_grid(1024, 1024) == (2, 2)
    assert choose_tile_grid(1400, 1400) == (3, 3)
    assert choose_tile_grid(1400, 1400, max_tiles=6) == (2, 2)


def test_gundam_slot_formula() -> None:
    processor = DeepSeekOCRImageProcessor()
    layout = processor.layout(1920, 1080, "gundam")
    columns, rows = layout.tile_grid
    assert layout.num_slots == 273 + (10 * columns + 1) * (10 * rows)
    assert layout.num_vision_tokens == 256 + 100 * columns * rows


@pytest.mark.parametrize("size", [(100, 100), (800, 600), (1920, 1080), (1654, 2339), (3000, 300)])
def test_slot_counts_agree_with_the_model_layout(size: tuple[int, int]) -> None:
    from optical_memory.model import vision_token_layout

    processor = DeepSeekOCRImageProcessor()
    for mode in MODES:
        layout = processor.layout(*size, mode)
        grid = layout.tile_grid if layout.num_tiles else None
        model_layout = vision_token_layout(layout.global_size, 640 if grid else None, grid)
        assert layout.num_slots == model_layout.n_slots


def test_unknown_mode_and_bad_limits_are_value_errors() -> None:
    with pytest.raises(InvalidSettingError, match="unknown DeepSeek-OCR mode 'huge'"):
        count_slots(100, 100, "huge")
    with pytest.raises(ValueError, match="known modes: tiny, small, base, large, gundam"):
        DeepSeekOCRImageProcessor(mode="huge")
    with pytest.raises(InvalidSettingError):
        DeepSeekOCRImageProcessor(min_tiles=3, max_tiles=2)
    assert MODES == ("tiny", "small", "base", "large", "gundam")


# --- pixel views -----------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "side"), [("tiny", 512), ("small", 640)])
def test_small_modes_stretch_without_padding(mode: str, side: int) -> None:
    red = Image.new("RGB", (300, 100), (255, 0, 0))
    views = DeepSeekOCRImageProcessor()(red, mode)
    assert views.global_view.shape == (3, side, side)
    assert views.tiles.shape == (0, 3, 640, 640)
    # Stretched: every pixel is red, normalised to (1, -1, -1).
    assert torch.equal(views.global_view[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.equal(views.global_view[:, -1, -1], torch.tensor([1.0, -1.0, -1.0]))


@pytest.mark.parametrize(("mode", "side"), [("base", 1024), ("large", 1280)])
def test_large_modes_pad_to_a_centred_grey_square(mode: str, side: int) -> None:
    wide = Image.new("RGB", (400, 200), (255, 255, 255))
    views = DeepSeekOCRImageProcessor()(wide, mode)
    grey = (127 / 255 - 0.5) / 0.5
    assert views.global_view.shape == (3, side, side)
    assert torch.allclose(views.global_view[:, 0, side // 2], torch.full((3,), grey))
    assert torch.allclose(views.global_view[:, -1, side // 2], torch.full((3,), grey))
    assert torch.equal(views.global_view[:, side // 2, side // 2], torch.ones(3))
    assert torch.equal(views.global_view[:, side // 2, 0], torch.ones(3))
    assert views.global_view.dtype == torch.float32


def test_gundam_cuts_row_major_tiles_of_the_stretched_image() -> None:
    # 1300x700 -> 2x1 tiles; left half red, right half blue.
    image = Image.new("RGB", (1300, 700), (255, 0, 0))
    image.paste((0, 0, 255), (650, 0, 1300, 700))
    views = DeepSeekOCRImageProcessor()(image, "gundam")
    assert views.layout.tile_grid == (2, 1)
    assert views.global_view.shape == (3, 1024, 1024)
    assert views.tiles.shape == (2, 3, 640, 640)
    assert torch.equal(views.tiles[0, :, 320, 320], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.equal(views.tiles[1, :, 320, 320], torch.tensor([-1.0, -1.0, 1.0]))


def test_gundam_without_tiles_reads_like_base() -> None:
    image = Image.new("RGB", (500, 300), (10, 20, 30))
    processor = DeepSeekOCRImageProcessor()
    gundam, base = processor(image, "gundam"), processor(image, "base")
    assert gundam.layout.num_tiles == 0
    assert torch.equal(gundam.global_view, base.global_view)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    Image.new("RGB", (1400, 700), (0, 128, 0)).save(buffer, "JPEG", exif=exif)
    assert load_rgb_image(buffer.getvalue()).size == (700, 1400)
    layout = DeepSeekOCRImageProcessor()(buffer.getvalue(), "gundam").layout
    assert layout.tile_grid == (1, 2)


def test_transparent_pages_read_as_white_paper(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    path = tmp_path / "clear.png"
    clear.save(path)
    rgb = load_rgb_image(path)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((5, 5)) == (255, 255, 255)


def test_bad_images_raise_invalid_image_error(tmp_path: Path) -> None:
    processor = DeepSeekOCRImageProcessor()
    with pytest.raises(InvalidImageError, match="bytes are empty"):
        processor(b"")
    with pytest.raises(InvalidImageError, match="could not be decoded"):
        processor(b"not an image at all")
    with pytest.raises(InvalidImageError, match="could not be decoded"):
        processor(_png(Image.new("RGB", (50, 50)))[:40])
    with pytest.raises(InvalidImageError, match="does not exist"):
        processor(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="unsupported type"):
        processor(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="image 1"):
        processor.preprocess([Image.new("RGB", (8, 8)), b"junk"])
    assert issubclass(InvalidImageError, ValueError)


# --- tokenizer and prompts -------------------------------------------------------------


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> DeepSeekOCRProcessor:
    directory = tmp_path_factory.mktemp("tokenizer")
    write_tiny_tokenizer(directory, IMAGE_ID)
    return DeepSeekOCRProcessor.from_pretrained(
        directory, special_ids=SpecialTokenIds(image=IMAGE_ID)
    )


def test_prompt_is_bos_text_slots_text_without_eos(processor: DeepSeekOCRProcessor) -> None:
    ids = processor.prompt_ids("  <image>\nFree OCR.  ", [111])
    after = processor.encode_text("\nFree OCR.")
    assert ids == [0] + [IMAGE_ID] * 111 + after
    assert 1 not in ids
    assert processor.decode(after) == "\nFree OCR."


def test_several_images_fill_their_markers_in_order(processor: DeepSeekOCRProcessor) -> None:
    ids = processor.prompt_ids("Compare <image> with <image>: same?", [73, 111])
    expected = (
        [0]
        + processor.encode_text("Compare ")
        + [IMAGE_ID] * 73
        + processor.encode_text(" with ")
        + [IMAGE_ID] * 111
        + processor.encode_text(": same?")
    )
    assert ids == expected
    assert processor.prompt_ids("Just text") == [0, *processor.encode_text("Just text")]


def test_marker_and_image_counts_must_agree(processor: DeepSeekOCRProcessor) -> None:
    with pytest.raises(InvalidSettingError, match="1 <image> markers but 2 images"):
        processor.prompt_ids("<image>", [73, 73])
    with pytest.raises(ValueError, match="at least one slot"):
        processor.prompt_ids("<image>", [0])


def test_processor_call_expands_each_image_by_its_layout(processor: DeepSeekOCRProcessor) -> None:
    page = Image.new("RGB", (800, 600), "white")
    inputs = processor("<image>\nFree OCR.", [page], mode="gundam")
    assert inputs.input_ids.count(IMAGE_ID) == 893
    assert inputs.views[0].layout.tile_grid == (3, 2)


def test_decode_keeps_special_tags_and_drops_eos(processor: DeepSeekOCRProcessor) -> None:
    ids = processor.encode_text("<|ref|>title<|/ref|> <td>é</td>")
    assert IMAGE_ID + 1 in ids and IMAGE_ID + 6 in ids
    assert processor.decode([*ids, 1]) == "<|ref|>title<|/ref|> <td>é</td>"


def test_text_stream_keeps_multibyte_characters_whole(processor: DeepSeekOCRProcessor) -> None:
    ids = processor.encode_text("Grüße 中文")
    stream = processor.text_stream()
    pieces = [stream.push(token) for token in [*ids, 1]]
    assert "".join(pieces) == "Grüße 中文"
    assert "" in pieces  # a byte that does not complete a character yet
    assert pieces[-1] == ""


def test_missing_or_corrupt_tokenizer_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="cannot read tokenizer"):
        DeepSeekOCRProcessor.from_pretrained(tmp_path)
