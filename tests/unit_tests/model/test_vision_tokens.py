"""Vision-token counts and order per mode, on tiny widths with the released spatial math."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig, vision_token_layout


@pytest.fixture(scope="module")
def model() -> DeepSeekOCR:
    torch.manual_seed(0)
    return DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()


@pytest.fixture(scope="module")
def windowed_model() -> DeepSeekOCR:
    # all SAM blocks windowed: same token counts, cheap at 1024 and 1280 px
    config = DeepSeekOCRConfig.tiny()
    config.sam.global_attn_indexes = []
    torch.manual_seed(0)
    return DeepSeekOCR(config).eval()


@pytest.mark.parametrize(
    ("size", "mode", "slots"),
    [(512, "tiny", 73), (640, "small", 111), (1024, "base", 273), (1280, "large", 421)],
)
def test_single_view_slots(size: int, mode: str, slots: int) -> None:
    layout = vision_token_layout(size)
    assert (layout.mode, layout.n_slots) == (mode, slots)


@pytest.mark.parametrize(
    ("grid", "slots"), [((2, 3), 903), ((2, 2), 693), ((4, 2), 1093), ((2, 1), 483), ((3, 2), 893)]
)
def test_gundam_slots(grid: tuple[int, int], slots: int) -> None:
    layout = vision_token_layout(1024, 640, grid)
    columns, rows = grid
    assert layout.mode == "gundam"
    assert layout.n_slots == slots == 273 + (10 * columns + 1) * (10 * rows)


def test_layout_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        vision_token_layout(1024, 640)
    with pytest.raises(ValueError):
        vision_token_layout(1024, 640, (0, 2))


@pytest.mark.parametrize("size", [512, 640])
def test_encoded_tokens_fill_the_slots(model: DeepSeekOCR, size: int) -> None:
    with torch.no_grad():
        tokens = model.encode_views(torch.rand(3, size, size) * 2 - 1)
    assert tokens.shape == (model.vision_layout(size).n_slots, 64)


@pytest.mark.parametrize("size", [1024, 1280])
def test_encoded_tokens_fill_the_slots_large(windowed_model: DeepSeekOCR, size: int) -> None:
    with torch.no_grad():
        tokens = windowed_model.encode_views(torch.rand(1, 3, size, size) * 2 - 1)
    assert tokens.shape == (windowed_model.vision_layout(size).n_slots, 64)


def test_tiles_come_first_then_global_then_separator(model: DeepSeekOCR) -> None:
    # Gundam's order at smaller sizes: 640 global (10x10), 2 columns x 1 row of 512 tiles (8x8)
    inner = model.model
    global_view = torch.rand(3, 640, 640) * 2 - 1
    tiles = torch.rand(2, 3, 512, 512) * 2 - 1
    with torch.no_grad():
        tokens = model.encode_views(global_view, tiles, (2, 1))
        left, right = inner.view_features(tiles)  # (8, 8, 64) each
        whole = inner.view_features(global_view[None])[0]  # (10, 10, 64)
    assert tokens.shape[0] == vision_token_layout(640, 512, (2, 1)).n_slots == 111 + 17 * 8
    local = tokens[: 8 * 17].reshape(8, 17, 64)
    torch.testing.assert_close(local[:, :8], left)
    torch.testing.assert_close(local[:, 8:16], right)
    newline = inner.image_newline.detach()
    assert torch.equal(local[:, 16], newline.expand(8, -1))
    glob = tokens[8 * 17 : -1].reshape(10, 11, 64)
    torch.testing.assert_close(glob[:, :10], whole)
    assert torch.equal(glob[:, 10], newline.expand(10, -1))
    assert torch.equal(tokens[-1], inner.view_separator.detach())


def test_tile_arguments_are_checked(model: DeepSeekOCR) -> None:
    with pytest.raises(ValueError, match="tile_grid"):
        model.encode_views(torch.zeros(3, 512, 512), torch.zeros(2, 3, 512, 512))
    with pytest.raises(ValueError, match="2x2"):
        model.encode_views(torch.zeros(3, 512, 512), torch.zeros(3, 3, 512, 512), (2, 2))


def test_position_tables_resize_bicubic_antialiased(model: DeepSeekOCR) -> None:
    sam = model.model.vision_tower.sam_encoder
    table = sam.pos_embed.detach()  # (1, 64, 64, 32)
    assert torch.equal(sam.resized_pos_embed(64, 64), table)
    expected = F.interpolate(
        table.permute(0, 3, 1, 2),
        size=(40, 40),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    ).permute(0, 2, 3, 1)
    torch.testing.assert_close(sam.resized_pos_embed(40, 40), expected)
    # CLIP: the 16x16 grid is used as is at Base size, resized otherwise; the CLS row is kept
    clip = model.model.vision_tower.clip_encoder.embeddings
    for side in (16, 10):
        features = torch.zeros(1, 32, side, side)
        with torch.no_grad():
            embedded = clip(features)
        table = clip.position_embedding.weight.detach()
        grid = table[1:].reshape(1, 16, 16, 32).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid, size=(side, side), mode="bicubic", align_corners=False, antialias=True
        )
        torch.testing.assert_close(embedded[0, 0], clip.class_embedding.detach() + table[0])
        torch.testing.assert_close(embedded[0, 1:], grid.flatten(2).transpose(1, 2)[0])
